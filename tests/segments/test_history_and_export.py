"""Membership history of tracked segments over time, and the XLSX export."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.test import Client
from openpyxl import load_workbook

from siyu.members.models import Member
from siyu.members.services import upsert_members
from siyu.segments.models import SegmentMembership
from siyu.segments.selectors import EXPORT_FIELDS
from siyu.segments.services import refresh_memberships, save_segment
from tests.factories import make_member, make_token

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)
T0 = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
JOINED_LAST_7_DAYS = {"attr": "joined_at", "op": "last_days", "value": 7}
SHANGHAI = {"attr": "city", "op": "eq", "value": "上海"}


def history(segment, member) -> list[tuple]:
    return list(SegmentMembership.objects.filter(segment=segment, member=member)
                .order_by("entered_at").values_list("entered_at", "left_at"))


def test_a_member_enters_leaves_and_reenters_with_one_row_per_stay():
    segment = save_segment(code="sh", name="上海", rule=SHANGHAI, track_membership=True)
    member = make_member(city="上海")
    refresh_memberships(member_ids=[member.pk], now=T0)

    Member.objects.filter(pk=member.pk).update(city="杭州")
    refresh_memberships(member_ids=[member.pk], now=T0 + DAY)
    refresh_memberships(member_ids=[member.pk], now=T0 + 2 * DAY)  # still out: nothing new
    Member.objects.filter(pk=member.pk).update(city="上海")
    refresh_memberships(member_ids=[member.pk], now=T0 + 3 * DAY)

    assert history(segment, member) == [(T0, T0 + DAY), (T0 + 3 * DAY, None)]


def test_the_nightly_pass_lets_members_age_out_of_time_relative_rules():
    segment = save_segment(code="new7", name="近7天入会", rule=JOINED_LAST_7_DAYS, track_membership=True)
    early = make_member(joined_at=T0 - 2 * DAY)
    late = make_member(joined_at=T0 - 6 * DAY)
    refresh_memberships(now=T0)

    result = refresh_memberships(now=T0 + 3 * DAY)  # late is now 9 days a member

    assert result == {"entered": 0, "left": 1}
    assert history(segment, early) == [(T0, None)]
    assert history(segment, late) == [(T0, T0 + 3 * DAY)]


def test_a_batch_moves_only_the_members_it_touched():
    segment = save_segment(code="sh", name="上海", rule=SHANGHAI, track_membership=True)
    upsert_members(rows=[{"phone": "13800138000", "city": "上海"}, {"phone": "13800138001", "city": "杭州"}],
                   source="test")
    inside = Member.objects.get(phone="13800138000")

    upsert_members(rows=[{"phone": "13800138001", "city": "上海"}], source="test")  # moves to Shanghai

    moved = Member.objects.get(phone="13800138001")
    assert [left for _entered, left in history(segment, inside)] == [None]
    assert [left for _entered, left in history(segment, moved)] == [None]
    upsert_members(rows=[{"phone": "13800138000", "city": "北京"}], source="test")
    assert history(segment, inside)[0][1] is not None
    assert SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).count() == 1


def test_the_xlsx_export_has_a_header_and_a_row_per_member_with_local_times():
    token = make_token("crm", "segments:write")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    members = [make_member(city="上海", name=f"会员{i}", joined_at=T0) for i in range(3)]
    make_member(city="杭州")
    client.put("/api/v1/segments/sh", {"name": "上海", "rule": SHANGHAI}, content_type="application/json")

    response = client.get("/api/v1/segments/sh/export?format=xlsx")

    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('filename="sh.xlsx"')
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == EXPORT_FIELDS
    assert [row[0] for row in rows[1:]] == [m.pk for m in members]
    assert {row[2] for row in rows[1:]} == {"会员0", "会员1", "会员2"}
    joined = rows[1][EXPORT_FIELDS.index("joined_at")]
    assert joined == dt.datetime(2026, 3, 1, 10, 0)  # Shanghai wall time of T0
