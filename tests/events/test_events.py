"""Behaviour events: idempotent by key, bound to members by identity, bad rows kept."""

import pytest

from siyu.core.models import IngestRejection
from siyu.events.models import Event
from siyu.events.services import record_events
from siyu.members.models import Member
from siyu.members.services import upsert_members

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(pos):
    upsert_members(rows=[{"phone": "13800138040", "openid": "o-40"}], source="test")
    return Member.objects.get()


def test_events_land_for_members_named_by_identity_id_or_code(member):
    result = record_events(rows=[
        {"member": "openid:o-40", "kind": "check_in", "occurred_at": "2026-06-01 08:00"},
        {"member_id": member.pk, "kind": "store_visit", "store": "sh-01", "occurred_at": "2026-06-02 18:00"},
        {"member_code": member.code, "kind": "share", "occurred_at": "2026-06-03 12:00",
         "properties": {"content": "poster-1"}},
    ], source="test")

    assert result.created == 3
    assert sorted(Event.objects.values_list("kind", flat=True)) == ["check_in", "share", "store_visit"]
    assert Event.objects.get(kind="share").properties == {"content": "poster-1"}
    assert Event.objects.get(kind="store_visit").store.code == "sh-01"


def test_resending_events_creates_nothing_with_or_without_a_key(member):
    rows = [{"member": "phone:13800138040", "kind": "page_view", "occurred_at": "2026-06-01 08:00"},
            {"member": "phone:13800138040", "kind": "page_view", "occurred_at": "2026-06-01 08:00",
             "idempotency_key": "mp-123"}]
    record_events(rows=rows, source="test")

    result = record_events(rows=rows, source="test")

    assert (result.created, result.duplicates) == (0, 2)
    assert Event.objects.count() == 2


@pytest.mark.parametrize(("fields", "field", "code"), [
    ({"member": None}, "member", "missing"),
    ({"member": "openid:unknown"}, "member", "unknown_member"),
    ({"kind": "teleport"}, "kind", "invalid_choice"),
    ({"occurred_at": "soon"}, "occurred_at", "invalid_datetime"),
    ({"store": "nowhere"}, "store", "unknown_store"),
    ({"channel": "nowhere"}, "channel", "unknown_channel"),
    ({"properties": [1, 2]}, "properties", "invalid_value"),
])
def test_a_bad_event_is_rejected_and_kept(member, fields, field, code):
    row = {"member": "openid:o-40", "kind": "check_in", "occurred_at": "2026-06-01 08:00", **fields}

    result = record_events(rows=[{"member": "openid:o-40", "kind": "follow", "occurred_at": "2026-06-01"}, row],
                           source="test")

    assert result.created == 1
    assert [(r.row, r.field, r.code) for r in result.rejected] == [(2, field, code)]
    assert IngestRejection.objects.get().code == code


def test_the_latest_follow_or_unfollow_sets_reachability_even_when_events_arrive_late(member):
    record_events(rows=[{"member_id": member.pk, "kind": "follow", "occurred_at": "2026-06-01 08:00"}], source="t")
    member.refresh_from_db()
    assert member.follows_oa is True

    record_events(rows=[{"member_id": member.pk, "kind": "unfollow", "occurred_at": "2026-07-01 08:00"},
                        {"member_id": member.pk, "kind": "follow", "occurred_at": "2026-06-15 08:00"}], source="t")

    member.refresh_from_db()
    assert member.follows_oa is False
