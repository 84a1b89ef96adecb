"""WeCom contact relations: creation, ownership, deletions and reachability."""

import pytest

from siyu.members.contacts import record_wecom_contacts
from siyu.members.models import ContactStatus, Member, OwnershipChange, WeComContact
from siyu.members.services import upsert_members
from tests.factories import make_staff, make_store

pytestmark = pytest.mark.django_db


def test_a_new_contact_becomes_a_member_owned_by_the_guide():
    store = make_store("gz-01", city="广州")
    guide = make_staff("wx-li", store=store)

    result = record_wecom_contacts(rows=[{
        "staff": "wx-li", "external_userid": "wmABC", "name": "小周", "add_way": "1",
        "state": "poster-618", "added_at": "2026-06-01 09:30:00",
    }], source="wecom")

    assert result.created == 1
    member = Member.objects.get()
    assert (member.guide_id, member.store_id, member.is_wecom_friend, member.source_channel) == (
        guide.pk, store.pk, True, "wecom")
    contact = WeComContact.objects.get()
    assert (contact.add_way, contact.state, contact.status) == ("scan", "poster-618", "active")
    assert OwnershipChange.objects.get().reason == "wecom_added"


def test_deletion_by_the_customer_clears_reachability_and_keeps_the_time():
    make_staff("wx-li")
    record_wecom_contacts(rows=[{"staff": "wx-li", "external_userid": "wmA", "added_at": "2026-06-01 09:00"}],
                          source="wecom")

    result = record_wecom_contacts(rows=[{
        "staff": "wx-li", "external_userid": "wmA", "status": "deleted_by_customer",
        "status_changed_at": "2026-07-01 10:00",
    }], source="wecom")

    assert result.updated == 1
    contact = WeComContact.objects.get()
    assert contact.status == ContactStatus.DELETED_BY_CUSTOMER
    assert contact.status_changed_at.isoformat() == "2026-07-01T02:00:00+00:00"
    assert Member.objects.get().is_wecom_friend is False


def test_an_out_of_order_status_change_is_ignored():
    make_staff("wx-li")
    record_wecom_contacts(rows=[{"staff": "wx-li", "external_userid": "wmA", "status": "deleted_by_staff",
                                 "added_at": "2026-06-01 09:00", "status_changed_at": "2026-07-01 10:00"}],
                          source="wecom")

    result = record_wecom_contacts(rows=[{"staff": "wx-li", "external_userid": "wmA", "status": "active",
                                          "status_changed_at": "2026-06-15 10:00"}], source="wecom")

    assert result.duplicates == 1
    assert WeComContact.objects.get().status == ContactStatus.DELETED_BY_STAFF


def test_a_known_member_keeps_their_guide_when_another_adds_them():
    first, second = make_staff("wx-a"), make_staff("wx-b")
    upsert_members(rows=[{"phone": "13800138020", "unionid": "un-1", "guide": "wx-a"}], source="test")

    record_wecom_contacts(rows=[{"staff": "wx-b", "external_userid": "wm-1", "unionid": "un-1"}], source="wecom")

    member = Member.objects.get()
    assert member.guide_id == first.pk
    assert WeComContact.objects.get().staff_id == second.pk
    assert member.identities.filter(kind="wecom", value="wm-1").exists()


def test_unknown_staff_is_rejected():
    result = record_wecom_contacts(rows=[{"staff": "ghost", "external_userid": "wm-1"}], source="wecom")

    assert [(r.field, r.code) for r in result.rejected] == [("guide", "unknown_guide")]
    assert not Member.objects.exists()
