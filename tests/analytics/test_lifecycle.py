"""Lifecycle stages per brand (defaults: new 30 days, silent after 90, churned after 180)."""

from __future__ import annotations

import datetime as dt

import pytest

from siyu.analytics.models import LifecycleStage, MemberLifecycle, ModelChange, RfmSettings
from siyu.analytics.services import recompute_lifecycle
from siyu.commerce.models import Order
from tests.analytics.conftest import NOW, brand_of, buy
from tests.factories import make_member

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


def stage_of(member, brand=None) -> tuple[str, dt.datetime] | None:
    row = MemberLifecycle.objects.filter(member=member, **({"brand": brand} if brand else {})).first()
    return (row.stage, row.since) if row else None


@pytest.mark.parametrize(("days_ago", "stage", "since_days_ago"), [
    ([30], LifecycleStage.NEW, 30),  # first order 30 days ago: still new
    ([31], LifecycleStage.ACTIVE, 0),  # new for 30 days, active from day 31
    ([5, 40], LifecycleStage.ACTIVE, 9),
    ([90, 120], LifecycleStage.ACTIVE, 89),
    ([91, 120], LifecycleStage.SILENT, 0),  # silent from day 91 after the last order
    ([180, 200], LifecycleStage.SILENT, 89),
    ([181, 200], LifecycleStage.CHURNED, 0),  # churned from day 181
    ([10, 400], LifecycleStage.RECALLED, 10),  # bought again after a 390-day gap
    ([90, 271], LifecycleStage.RECALLED, 90),  # gap of 181 days: recalled, and not yet silent
    ([10, 190], LifecycleStage.ACTIVE, 159),  # gap of 180 days: never churned, so not recalled
    ([91, 400], LifecycleStage.SILENT, 0),  # recalled, then silent again
])
def test_each_stage_and_the_moment_it_began(shop, days_ago, stage, since_days_ago):
    member = make_member()
    for days in days_ago:
        buy(member, shop, days)

    recompute_lifecycle(now=NOW)

    # a stage's start follows from the orders: silent/churned the day after the limit, recalled at
    # the recall order, new at the first order; a member first seen active is active since the
    # end of their new period, or since the order that ended a silent, churned or recalled spell
    expected_since = {
        LifecycleStage.SILENT: NOW - min(days_ago) * DAY + 91 * DAY,
        LifecycleStage.CHURNED: NOW - min(days_ago) * DAY + 181 * DAY,
        LifecycleStage.RECALLED: NOW - min(days_ago) * DAY,
        LifecycleStage.NEW: NOW - max(days_ago) * DAY,
        LifecycleStage.ACTIVE: NOW - max(days_ago) * DAY + 31 * DAY,
    }[stage]
    assert stage_of(member) == (stage, expected_since)
    assert stage_of(member)[1] == NOW - since_days_ago * DAY


def test_a_recalled_member_who_buys_again_is_active_since_that_order(shop):
    member = make_member()
    buy(member, shop, 300)
    buy(member, shop, 20)
    recompute_lifecycle(now=NOW)
    assert stage_of(member)[0] == LifecycleStage.RECALLED

    buy(member, shop, 5)
    recompute_lifecycle(now=NOW)

    assert stage_of(member) == (LifecycleStage.ACTIVE, NOW - 5 * DAY)


def test_since_is_kept_while_the_stage_stays(shop):
    member = make_member()
    buy(member, shop, 100)
    buy(member, shop, 60)
    recompute_lifecycle(now=NOW)
    first = stage_of(member)

    buy(member, shop, 10)  # still active, with a new last order
    recompute_lifecycle(now=NOW + 3 * DAY)

    assert stage_of(member) == first == (LifecycleStage.ACTIVE, NOW - 69 * DAY)


def test_stages_follow_the_brands_own_limits(shop, other_shop):
    RfmSettings.objects.create(brand=brand_of(other_shop), new_days=7, silent_days=30, churned_days=60)
    member = make_member()
    buy(member, shop, 45)
    buy(member, other_shop, 45)

    recompute_lifecycle(now=NOW)

    assert stage_of(member, brand_of(shop))[0] == LifecycleStage.ACTIVE
    assert stage_of(member, brand_of(other_shop))[0] == LifecycleStage.SILENT


def test_only_counted_orders_at_the_brand_stage_a_member(shop, other_shop):
    buyer, closed_only, elsewhere = make_member(), make_member(), make_member()
    buy(buyer, shop, 3)
    buy(closed_only, shop, 3, counted=False)
    buy(elsewhere, other_shop, 3)

    recompute_lifecycle(brand_ids=[brand_of(shop).pk], now=NOW)

    assert list(MemberLifecycle.objects.values_list("member_id", "brand_id")) == [(buyer.pk, brand_of(shop).pk)]


def test_a_member_left_without_counted_orders_loses_the_stage(shop):
    member = make_member()
    order = buy(member, shop, 3)
    recompute_lifecycle(now=NOW)

    Order.objects.filter(pk=order.pk).update(is_counted=False)
    recompute_lifecycle(member_ids=[member.pk], now=NOW)

    assert stage_of(member) is None
    assert list(ModelChange.objects.filter(member=member).order_by("id").values_list("old_value", "new_value")) == [
        ("", "new"), ("new", "")]


def test_orders_after_now_are_ignored(shop):
    member = make_member()
    buy(member, shop, 200)
    buy(member, shop, -1)  # tomorrow, as far as ``now`` is concerned

    recompute_lifecycle(now=NOW)

    assert stage_of(member)[0] == LifecycleStage.CHURNED
