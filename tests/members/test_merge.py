"""Merging members keeps everything: identities, orders, events, contacts, history, stats."""

from decimal import Decimal

import pytest

from siyu.commerce.models import MemberChannelStats, MemberStats
from siyu.commerce.services import record_orders
from siyu.core.errors import Conflict
from siyu.core.models import AuditEntry
from siyu.events.models import Event
from siyu.events.services import record_events
from siyu.members.contacts import record_wecom_contacts
from siyu.members.merge import merge_members
from siyu.members.models import Member, MemberStatus, MergeCandidate, MergeRecord, MergeStatus, WeComContact
from siyu.members.services import upsert_members
from tests.factories import make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_members(tmall, pos):
    guide = make_staff("wx-guide-1")
    upsert_members(rows=[{"phone": "13800138010", "name": "陈静", "sms_consent": "true"},
                         {"nick": "tb_chen", "unionid": "un-chen", "city": "苏州", "birthday": "1992-02-29"}],
                   source="test")
    phone_member = Member.objects.get(phone="13800138010")
    nick_member = Member.objects.exclude(pk=phone_member.pk).get()
    record_orders(rows=[
        {"channel": "pos-sh-01", "external_id": "P1", "phone": "13800138010", "paid_amount": "200.00",
         "ordered_at": "2026-01-05 12:00"},
        {"channel": "tmall", "external_id": "T1", "buyer": "nick:tb_chen", "paid_amount": "99.00",
         "ordered_at": "2026-02-05 12:00", "refunds": [{"amount": "9.00"}]},
    ], source="test")
    record_events(rows=[{"member": "nick:tb_chen", "kind": "check_in", "occurred_at": "2026-02-06 08:00"}],
                  source="test")
    record_wecom_contacts(rows=[{"staff": guide.code, "external_userid": "wm-chen", "unionid": "un-chen"}],
                          source="test")
    upsert_members(rows=[{"phone": "13800138010", "nick": "tb_chen", "unionid": "un-chen"}], source="test")
    return phone_member, nick_member


def test_merge_moves_everything_to_the_survivor(two_members):
    survivor, merged = two_members
    assert MergeCandidate.objects.filter(status=MergeStatus.OPEN).count() >= 1

    record = merge_members(survivor_id=survivor.pk, merged_id=merged.pk, actor="hq-ops")

    survivor.refresh_from_db()
    merged.refresh_from_db()
    assert set(survivor.identities.values_list("kind", flat=True)) == {"phone", "nick", "unionid", "wecom"}
    assert not merged.identities.exists()
    assert survivor.orders.count() == 2 and not merged.orders.exists()
    assert Event.objects.get().member_id == survivor.pk
    assert WeComContact.objects.get().member_id == survivor.pk
    assert survivor.is_wecom_friend and survivor.sms_consent
    assert (survivor.city, str(survivor.birthday)) == ("苏州", "1992-02-29")  # blanks filled
    assert (merged.status, merged.merged_into_id) == (MemberStatus.MERGED, survivor.pk)
    stats = MemberStats.objects.get(member=survivor)
    assert (stats.order_count, stats.total_paid, stats.total_refunded) == (2, Decimal("290.00"), Decimal("9.00"))
    assert MemberStats.objects.get(member=merged).order_count == 0
    assert MemberChannelStats.objects.filter(member=survivor).count() == 2
    assert not MemberChannelStats.objects.filter(member=merged).exists()
    assert record.snapshot["city"] == "苏州" and record.moved["commerce.order"] == 1
    assert MergeRecord.objects.count() == 1
    assert AuditEntry.objects.get(action="member.merge").actor == "hq-ops"
    assert not MergeCandidate.objects.filter(status=MergeStatus.OPEN).exists()


def test_a_merged_member_cannot_be_merged_again(two_members):
    survivor, merged = two_members
    merge_members(survivor_id=survivor.pk, merged_id=merged.pk, actor="hq-ops")

    with pytest.raises(Conflict):
        merge_members(survivor_id=survivor.pk, merged_id=merged.pk, actor="hq-ops")

    assert MergeRecord.objects.count() == 1
