"""Tiers: immediate upgrades, retention, nightly downgrades, history; paid membership."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from siyu.commerce.services import record_orders
from siyu.core.errors import Conflict, ValidationError
from siyu.loyalty.models import (
    Benefit,
    BenefitCategory,
    BenefitKind,
    MemberTier,
    PaidMembership,
    PaidMembershipPlan,
    Tier,
    TierChange,
    TierRequirement,
)
from siyu.loyalty.selectors import current_tier, member_benefits
from siyu.loyalty.tasks import run_nightly
from siyu.loyalty.tiers import Figures, buy_paid_membership, evaluate_tiers, qualifies
from tests.factories import make_member, make_tier
from tests.loyalty.conftest import balance, buy

pytestmark = pytest.mark.django_db


def ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


@pytest.fixture
def tiers(program):
    """普卡 (entry), 银卡 at 1,000 paid or 5 orders, 金卡 at 5,000 paid and 10 orders; kept 180 days."""
    return (make_tier(program, "normal", 0),
            make_tier(program, "silver", 1, min_paid_amount=Decimal("1000"), min_order_count=5, retention_days=180),
            make_tier(program, "gold", 2, min_paid_amount=Decimal("5000"), min_order_count=10,
                      requires=TierRequirement.ALL, retention_days=180))


def tier_code(member, program) -> str | None:
    tier = current_tier(member.pk, program)
    return tier.code if tier else None


def test_a_member_is_upgraded_in_the_batch_that_qualifies_them(program, tiers, member):
    buy(member, "600.00", when=ago(3))
    assert tier_code(member, program) == "normal"

    buy(member, "400.00", when=ago(1))

    assert tier_code(member, program) == "silver"
    change = TierChange.objects.get()
    assert (change.from_tier.code, change.to_tier.code, change.reason) == ("normal", "silver", "upgrade")
    assert change.figures == {"paid": "1000.00", "orders": 2, "points": 0}
    row = MemberTier.objects.get()
    assert row.retained_until - row.achieved_at == dt.timedelta(days=180)


def test_all_thresholds_must_be_met_where_the_tier_says_so(program, tiers, member):
    buy(member, "6000.00", when=ago(1))
    assert tier_code(member, program) == "silver"

    record_orders(rows=[{"channel": "pos-sh-01", "external_id": f"N{i}", "member_id": member.pk,
                         "paid_amount": "1.00", "ordered_at": ago(1).isoformat()} for i in range(9)], source="test")

    assert tier_code(member, program) == "gold"
    assert list(TierChange.objects.order_by("pk").values_list("to_tier__code", flat=True)) == ["silver", "gold"]


def test_only_orders_inside_the_window_count(program, tiers, member):
    buy(member, "900.00", when=ago(400))
    buy(member, "200.00", when=ago(1))

    assert tier_code(member, program) == "normal"


def test_fully_refunded_orders_do_not_count(program, tiers, member):
    for i in range(4):
        buy(member, "10.00", when=ago(1), external_id=f"K{i}")
    buy(member, "10.00", when=ago(1), refunds=[{"external_id": "R", "amount": "10.00"}])

    assert tier_code(member, program) == "normal"


def test_points_earned_can_qualify(program, member):
    make_tier(program, "fan", 1, min_points_earned=300)
    buy(member, "200.00", when=ago(2))
    buy(member, "150.00", when=ago(1), refunds=[{"external_id": "R", "amount": "100.00"}])
    assert tier_code(member, program) is None  # 250 net points, and no entry tier

    buy(member, "50.00", when=ago(1))

    assert tier_code(member, program) == "fan"


def test_the_tier_is_kept_during_the_retention_period_then_downgraded(program, tiers, member):
    buy(member, "1000.00", when=ago(200))
    now = timezone.now()
    MemberTier.objects.update(achieved_at=ago(200), retained_until=now + dt.timedelta(days=1))
    record_orders(rows=[{"channel": "pos-sh-01", "external_id": "old", "member_id": member.pk, "paid_amount": "1",
                         "ordered_at": ago(500).isoformat()}], source="test")

    kept = evaluate_tiers(program=program, now=now)
    assert tier_code(member, program) == "silver"
    later = now + dt.timedelta(days=170)  # the 1,000 order has left the 365-day window
    result = evaluate_tiers(program=program, now=later)
    again = evaluate_tiers(program=program, now=later)

    assert (kept.downgraded, result.downgraded, again.downgraded) == (0, 1, 0)
    assert tier_code(member, program) == "normal"
    change = TierChange.objects.get(reason="downgrade")
    assert (change.from_tier.code, change.to_tier.code, change.changed_at) == ("silver", "normal", later)


def test_a_member_who_still_qualifies_after_retention_keeps_the_tier_for_another_period(program, tiers, member):
    buy(member, "1000.00", when=ago(10))
    now = timezone.now() + dt.timedelta(days=181)
    buy(member, "1000.00", when=ago(0))

    result = evaluate_tiers(program=program, now=now)

    assert (result.renewed, result.downgraded) == (1, 0)
    assert tier_code(member, program) == "silver"
    assert MemberTier.objects.get().retained_until == now + dt.timedelta(days=180)


def test_the_nightly_evaluation_upgrades_members_ingestion_did_not_reach(shop, program, tiers, member):
    from siyu.commerce.models import Order

    Order.objects.create(channel=shop, store=shop.store, external_id="direct", member=member,
                         paid_amount=Decimal("1500"), ordered_at=ago(1))

    result = evaluate_tiers(program=program)

    assert (result.upgraded, tier_code(member, program)) == (1, "silver")


def test_the_tier_multiplier_benefit_applies_after_the_upgrade(program, tiers, member):
    Benefit.objects.create(program=program, tier=tiers[1], category=BenefitCategory.WELFARE,
                           kind=BenefitKind.POINTS_MULTIPLIER, name="双倍积分", multiplier=Decimal("2"))
    buy(member, "1000.00", when=ago(1))  # 1,000 points, then silver

    buy(member, "100.00", when=ago(0))

    assert balance(member, program) == (1200, 0)
    assert [b.name for b in member_benefits(member.pk, program)] == ["双倍积分"]


# Paid membership --------------------------------------------------------------------------------------

@pytest.fixture
def plan(program):
    plan = PaidMembershipPlan.objects.create(program=program, code="plus", name="PLUS 会员", price=Decimal("199"),
                                             duration_days=365)
    Benefit.objects.create(program=program, paid_plan=plan, category=BenefitCategory.SERVICE,
                           kind=BenefitKind.FREE_SHIPPING, name="全年包邮")
    Benefit.objects.create(program=program, paid_plan=plan, category=BenefitCategory.WELFARE,
                           kind=BenefitKind.POINTS_MULTIPLIER, name="1.5 倍积分", multiplier=Decimal("1.5"))
    return plan


def test_a_paid_membership_is_bought_once_per_key_and_renewed_back_to_back(plan, member):
    now = timezone.now()

    first = buy_paid_membership(member=member, plan=plan, idempotency_key="pay-1", now=now)
    repeat = buy_paid_membership(member=member, plan=plan, idempotency_key="pay-1", now=now)
    renewal = buy_paid_membership(member=member, plan=plan, idempotency_key="pay-2", now=now + dt.timedelta(days=300))

    assert first.pk == repeat.pk
    assert (first.starts_at, first.ends_at) == (now, now + dt.timedelta(days=365))
    assert (renewal.starts_at, renewal.ends_at) == (first.ends_at, first.ends_at + dt.timedelta(days=365))
    assert PaidMembership.objects.count() == 2


def test_a_plan_off_sale_cannot_be_bought(plan, member):
    plan.is_active = False
    plan.save()

    with pytest.raises(ValidationError) as error:
        buy_paid_membership(member=member, plan=plan, idempotency_key="pay-1")

    assert error.value.code == "plan_not_on_sale"


def test_a_key_used_by_another_member_is_refused(plan, member):
    buy_paid_membership(member=member, plan=plan, idempotency_key="pay-1")

    with pytest.raises(Conflict):
        buy_paid_membership(member=make_member(), plan=plan, idempotency_key="pay-1")


def test_paid_members_earn_with_the_plans_multiplier_while_the_period_lasts(program, plan, member):
    buy_paid_membership(member=member, plan=plan, idempotency_key="pay-1", now=ago(30))

    buy(member, "100.00", when=ago(40))
    buy(member, "100.00", when=ago(1))

    assert balance(member, program) == (250, 0)
    assert {b.name for b in member_benefits(member.pk, program)} == {"全年包邮", "1.5 倍积分"}


def test_the_nightly_run_ends_paid_periods_and_downgrades(program, tiers, plan, member):
    buy_paid_membership(member=member, plan=plan, idempotency_key="pay-1", now=ago(100))
    buy(member, "1000.00", when=ago(100))
    later = timezone.now() + dt.timedelta(days=300)  # the period ended, the order left the window

    summary = run_nightly(now=later)

    assert summary["paid_memberships_ended"] == 1
    assert summary["tiers"][program.code]["downgraded"] == 1
    assert PaidMembership.objects.get().status == "expired"
    assert member_benefits(member.pk, program, now=later) == []


@pytest.mark.parametrize(("requires", "thresholds", "figures", "reached"), [
    (TierRequirement.ANY, {}, (0, 0, 0), True),  # no thresholds: the entry tier
    (TierRequirement.ALL, {}, (0, 0, 0), True),
    (TierRequirement.ANY, {"min_paid_amount": 1000, "min_order_count": 5}, (999, 5, 0), True),
    (TierRequirement.ANY, {"min_paid_amount": 1000, "min_order_count": 5}, (999, 4, 0), False),
    (TierRequirement.ANY, {"min_points_earned": 0}, (0, 0, 0), True),  # a zero threshold is still a threshold
    (TierRequirement.ALL, {"min_paid_amount": 1000, "min_order_count": 5}, (1000, 4, 10**6), False),
    (TierRequirement.ALL, {"min_paid_amount": 1000, "min_order_count": 5, "min_points_earned": 100},
     (1000, 5, 100), True),
])
def test_a_tier_is_reached_by_any_or_every_threshold_it_sets(requires, thresholds, figures, reached):
    tier = Tier(requires=requires, **{name: Decimal(v) if name == "min_paid_amount" else v
                                      for name, v in thresholds.items()})
    paid, orders, points = figures
    assert qualifies(tier, Figures(paid=Decimal(paid), orders=orders, points=points)) is reached
