"""The tier bound each points account keeps: ingestion counts a member's window only when the
bound reaches a higher tier, and the bound never falls below the member's exact figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from siyu.commerce.models import Order
from siyu.commerce.services import record_orders
from siyu.loyalty.earning import earn_for_orders
from siyu.loyalty.models import PointsAccount, PointsEntry, TierChange, TierRequirement
from siyu.loyalty.selectors import current_tier
from siyu.members.merge import merge_members
from siyu.members.models import Member
from siyu.members.services import upsert_members
from tests.factories import make_brand, make_channel, make_member, make_store, make_tier
from tests.loyalty.conftest import balance, buy

pytestmark = pytest.mark.django_db


def ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


@pytest.fixture
def tiers(program):
    """普卡 (entry), 银卡 at 1,000 paid or 5 orders, 金卡 at 5,000 paid and 10 orders."""
    return (make_tier(program, "normal", 0),
            make_tier(program, "silver", 1, min_paid_amount=Decimal("1000"), min_order_count=5),
            make_tier(program, "gold", 2, min_paid_amount=Decimal("5000"), min_order_count=10,
                      requires=TierRequirement.ALL))


def bound(member, program) -> tuple[Decimal, int, int]:
    a = PointsAccount.objects.get(program=program, member=member)
    return a.tier_paid, a.tier_orders, a.tier_points


def tier_code(member, program) -> str | None:
    tier = current_tier(member.pk, program)
    return tier.code if tier else None


def counted_the_window(queries) -> bool:
    """Whether ingestion ran the window aggregate over the ledger (the tier count)."""
    return any("SUM" in q["sql"] and "loyalty_pointsentry" in q["sql"] for q in queries.captured_queries)


def test_the_first_order_starts_the_bound_and_later_orders_raise_it(program, tiers, member):
    buy(member, "600.00", when=ago(3))
    assert bound(member, program) == (Decimal("600.00"), 1, 600)

    with CaptureQueriesContext(connection) as second:
        buy(member, "100.00", when=ago(2))

    assert not counted_the_window(second)  # 700 paid, 2 orders at most: no tier above 普卡 in reach
    assert bound(member, program) == (Decimal("700.00"), 2, 700)
    assert tier_code(member, program) == "normal"


def test_a_new_account_of_a_member_with_earlier_orders_counts_them(program, tiers, member):
    program.is_active = False
    program.save()
    buy(member, "600.00", when=ago(5))  # no active program: no account yet
    program.is_active = True
    program.save()

    with CaptureQueriesContext(connection) as first:
        buy(member, "500.00", when=ago(1))

    assert counted_the_window(first)
    assert tier_code(member, program) == "silver"  # 1,100 paid in the window, 600 of it before the account
    assert bound(member, program) == (Decimal("1100.00"), 2, 500)


def test_a_member_whose_exact_figures_reach_the_next_tier_is_upgraded_at_once_without_counting(
        program, tiers, member):
    buy(member, "600.00", when=ago(3))
    buy(member, "300.00", when=ago(2))

    with CaptureQueriesContext(connection) as third:
        buy(member, "100.00", when=ago(1))

    assert not counted_the_window(third)  # only new orders and entries since the count: exact
    assert tier_code(member, program) == "silver"
    assert TierChange.objects.get().figures == {"paid": "1000.00", "orders": 3, "points": 0}
    assert bound(member, program) == (Decimal("1000.00"), 3, 1000)


def test_a_changed_order_makes_the_next_climb_count_the_window(program, tiers, member):
    first = buy(member, "300.00", when=ago(3))
    record_orders(rows=[{**first, "refunds": [{"external_id": "R1", "amount": "100.00"}]}], source="test")
    assert bound(member, program) == (Decimal("500.00"), 2, 200)  # the order counted again, net of its refund

    with CaptureQueriesContext(connection) as climb:
        buy(member, "500.00", when=ago(1))

    assert counted_the_window(climb)  # 1,000 at most, but not exact: 200 + 500 = 700 paid, no upgrade
    assert tier_code(member, program) == "normal"
    assert bound(member, program) == (Decimal("700.00"), 2, 700)
    with CaptureQueriesContext(connection) as again:
        buy(member, "300.00", when=ago(1))
    assert not counted_the_window(again)  # exact again since that count
    assert tier_code(member, program) == "silver"


def test_a_closed_order_makes_the_next_climb_count_the_window(program, tiers, member):
    first = buy(member, "600.00", when=ago(3))
    record_orders(rows=[{**first, "status": "closed"}], source="test")  # no longer counted anywhere

    with CaptureQueriesContext(connection) as climb:
        buy(member, "500.00", when=ago(1))

    assert counted_the_window(climb)  # the stored 600 is gone: 500 paid
    assert tier_code(member, program) == "normal"
    assert bound(member, program) == (Decimal("500.00"), 1, 500)


def test_a_store_moving_to_another_brand_makes_every_account_count_afresh(
        program, tiers, member, shop, django_capture_on_commit_callbacks):
    buy(member, "600.00", when=ago(3))  # at sh-01, brand-a: the program's
    other = make_channel("pos-sh-02", store=make_store("sh-02"))
    store = shop.store
    with django_capture_on_commit_callbacks(execute=True):
        store.brand = make_brand("brand-b")  # the 600 no longer counts in brand-a's program
        store.save()

    with CaptureQueriesContext(connection) as climb:
        buy(member, "500.00", when=ago(1), channel=other.code)

    assert counted_the_window(climb)
    assert tier_code(member, program) == "normal"  # 500 paid in brand-a's stores
    assert bound(member, program) == (Decimal("500.00"), 1, 1100)  # the points earned stay the program's


def test_a_brand_moving_to_another_group_touches_every_program(program, tiers, member,
                                                               django_capture_on_commit_callbacks):
    buy(member, "600.00", when=ago(3))
    before = type(program).objects.get(pk=program.pk).updated_at
    brand = member.store.brand
    with django_capture_on_commit_callbacks(execute=True):
        brand.name = "改名"  # not a move: nothing to recount
        brand.save()
    assert type(program).objects.get(pk=program.pk).updated_at == before

    with django_capture_on_commit_callbacks(execute=True):
        brand.group = type(brand.group).objects.create(code="group-b", name="集团 B")
        brand.save()

    assert type(program).objects.get(pk=program.pk).updated_at > before  # every stored figure counts afresh


def test_an_order_that_left_the_window_makes_the_next_climb_count_it(program, tiers, member):
    program.tier_window_days = 30
    program.save()
    buy(member, "600.00", when=ago(25))  # counted: exact figures from 25 days ago on

    later = timezone.now() + dt.timedelta(days=10)
    with mock.patch("django.utils.timezone.now", return_value=later), \
            CaptureQueriesContext(connection) as climb:
        buy(member, "500.00", when=later - dt.timedelta(days=1))

    assert counted_the_window(climb)  # the 600 is 35 days old now: 500 paid in the window
    assert tier_code(member, program) == "normal"
    assert not TierChange.objects.exists()


def test_a_future_dated_order_is_not_counted_by_a_climb_before_its_moment(program, tiers, member):
    buy(member, "600.00", when=timezone.now() + dt.timedelta(days=2))  # a till whose clock runs ahead

    with CaptureQueriesContext(connection) as climb:
        buy(member, "500.00", when=ago(1))

    assert counted_the_window(climb)
    assert tier_code(member, program) == "normal"  # 500 paid up to now; the 600 is not yet


def test_orders_before_the_window_leave_the_bound_alone(program, tiers, member):
    buy(member, "100.00", when=ago(3))

    buy(member, "5000.00", when=ago(400))

    assert bound(member, program) == (Decimal("100.00"), 1, 100)
    assert tier_code(member, program) == "normal"
    assert balance(member, program) == (5100, 0)


def test_a_refund_lowers_the_figures_and_the_bound_never_falls_below_them(program, tiers, member):
    row = buy(member, "600.00", when=ago(3))
    record_orders(rows=[{**row, "refunds": [{"external_id": "R1", "amount": "600.00"}]}], source="test")
    # Exact figures now: nothing. The bound keeps the refunded order's amount (an upper bound) but
    # follows the ledger exactly: the reversal took the points out.
    assert bound(member, program) == (Decimal("600.00"), 1, 0)

    buy(member, "900.00", when=ago(1))

    assert tier_code(member, program) == "normal"  # 900 paid in the window: the refunded order counts nothing
    buy(member, "100.00", when=ago(1))
    assert tier_code(member, program) == "silver"


def test_editing_the_program_makes_the_next_batch_count_afresh(program, tiers, member):
    buy(member, "600.00", when=ago(60))
    program.tier_window_days = 30
    program.save()

    with CaptureQueriesContext(connection) as after:
        buy(member, "100.00", when=ago(1))

    assert counted_the_window(after)
    assert bound(member, program) == (Decimal("100.00"), 1, 100)  # only the last 30 days


def test_a_member_merge_counts_the_survivors_window_afresh(program, tiers, member):
    other = make_member(name="王芳", store=member.store)
    buy(member, "600.00", when=ago(3))
    buy(other, "600.00", when=ago(3))

    merge_members(survivor_id=member.pk, merged_id=other.pk, actor="test")
    buy(member, "10.00", when=ago(1))

    assert tier_code(member, program) == "silver"  # 1,210 paid in the window, half of it from the merged member
    assert bound(member, program) == (Decimal("1210.00"), 3, 1210)


def test_orders_bound_to_a_member_after_ingestion_earn_and_upgrade_once(program, tiers, shop):
    upsert_members(rows=[{"phone": "13800000001", "name": "老客"}], source="test")
    member = Member.objects.get(name="老客")
    buy(member, "600.00", when=ago(3))  # the account's bound now stands at 600
    record_orders(rows=[{"channel": shop.code, "external_id": "T1", "buyer": "nick:路人", "paid_amount": "500.00",
                         "ordered_at": ago(2).isoformat()}], source="test")

    upsert_members(rows=[{"phone": "13800000001", "identities": ["nick:路人"]}], source="test")
    again = earn_for_orders(order_ids=[Order.objects.get(external_id="T1").pk])

    order = Order.objects.get(external_id="T1")
    assert order.member_id == member.pk
    assert balance(member, program) == (1100, 0)
    assert tier_code(member, program) == "silver"  # the bound saw the bound order: 1,100 paid
    assert (again.entries, again.upgrades) == (0, 0)
    assert PointsEntry.objects.filter(idempotency_key=f"order:{order.pk}").count() == 1
