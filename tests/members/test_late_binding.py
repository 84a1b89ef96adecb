"""Orders bound to a buyer after the fact: the lifecycle stage and the points follow, whichever batch binds them."""

import pytest
from django.utils import timezone

from siyu.analytics.models import MemberLifecycle
from siyu.commerce.services import record_orders
from siyu.loyalty.models import PointsAccount, PointsEntry
from siyu.members.contacts import record_wecom_contacts
from siyu.members.models import Member
from siyu.members.services import upsert_members
from tests.factories import make_program, make_staff

pytestmark = pytest.mark.django_db


def _order_by(buyer: str, days_ago: int) -> dict:
    at = timezone.now() - timezone.timedelta(days=days_ago)
    return {"channel": "tmall", "external_id": f"T-{buyer}-{days_ago}", "buyer": buyer, "paid_amount": "99.00",
            "ordered_at": at.isoformat()}


def test_a_member_batch_that_binds_waiting_orders_stages_the_buyer(tmall):
    record_orders(rows=[_order_by("nick:tb_late", 3)], source="test")
    assert not MemberLifecycle.objects.exists()  # nobody to stage yet

    upsert_members(rows=[{"phone": "13800138070", "nick": "tb_late"}], source="test")

    member = Member.objects.get()
    assert list(MemberLifecycle.objects.values_list("member_id", "stage")) == [(member.pk, "new")]


def test_a_wecom_contact_batch_that_binds_waiting_orders_stages_the_buyer(tmall):
    make_staff("wx-li")
    record_orders(rows=[_order_by("unionid:u-late", 400)], source="test")

    record_wecom_contacts(rows=[{"staff": "wx-li", "external_userid": "wmLATE", "unionid": "u-late",
                                 "added_at": "2026-06-01 09:00"}], source="wecom")

    member = Member.objects.get()
    assert list(MemberLifecycle.objects.values_list("member_id", "stage")) == [(member.pk, "churned")]



def test_orders_bound_later_earn_their_points_once(tmall):
    program = make_program(brand=tmall.store.brand)
    record_orders(rows=[_order_by("nick:tb_points", 3)], source="test")  # 99.00 yuan, nobody to credit yet

    upsert_members(rows=[{"phone": "13800138072", "nick": "tb_points"}], source="test")
    upsert_members(rows=[{"phone": "13800138072", "nick": "tb_points", "name": "again"}], source="test")

    member = Member.objects.get()
    account = PointsAccount.objects.get(program=program, member=member)
    assert account.balance == 99
    assert PointsEntry.objects.filter(account=account).count() == 1
