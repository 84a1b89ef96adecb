"""Every metric against a plain-Python computation over the same rows, for each kind of filter,
for May and June 2026 (boundaries a second either side of midnight Shanghai time) and for an
empty period."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from fractions import Fraction

import pytest

from siyu.analytics import metrics
from siyu.analytics.metrics.filters import resolve_filters
from siyu.analytics.metrics.sales import AMOUNT_BANDS, shapley_split
from tests.analytics.metrics_world import MAY_1, Reference, build_world

pytestmark = pytest.mark.django_db

MAY = (dt.date(2026, 5, 1), dt.date(2026, 5, 31))
JUNE = (dt.date(2026, 6, 1), dt.date(2026, 6, 30))
EMPTY = (dt.date(2025, 1, 1), dt.date(2025, 1, 31))
TODAY = dt.date(2026, 7, 15)

CASES = {
    "all": {},
    "brand": {"brand": "brand-a"},
    "region": {"region": "east"},
    "store": {"store": "sh-01"},
    "channel": {"channel": "tmall"},
    "segment": {"segment": "vip-list"},
}


@pytest.fixture
def world(db):
    return build_world()


def both(world, period, case, *, scoped=False):
    """The filters under test and the reference for the same choice."""
    first, last = period
    narrowing = CASES[case]
    if scoped:
        filters = resolve_filters(start=first, end=last, staff=world.manager, everyone=False, **narrowing)
    else:
        filters = resolve_filters(start=first, end=last, **narrowing)
    reference = Reference(start=first, end=last + dt.timedelta(days=1), scope_store="sh-01" if scoped else None,
                          **narrowing)
    return filters, reference


PERIODS = {"may": MAY, "june": JUNE, "empty": EMPTY}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("period", list(PERIODS))
def test_every_metric_matches_the_plain_python_computation(world, case, period):
    filters, ref = both(world, PERIODS[period], case)

    assert metrics.member_share(filters) == ref.member_share()
    assert metrics.contribution(filters) == ref.contribution()
    assert metrics.online_rate(filters) == ref.online_rate()
    assert metrics.new_members(filters) == ref.new_members()
    assert metrics.new_members(filters, within_days=7) == ref.new_members(within_days=7)
    assert metrics.repurchase(filters) == ref.repurchase()
    assert metrics.new_vs_returning(filters) == ref.new_vs_returning()
    assert [{k: r[k] for k in ("channel", "orders", "member_orders", "amount", "share_of_amount")}
            for r in metrics.channel_mix(filters)] == ref.channel_mix()
    assert metrics.trend(filters) == ref.trend()
    assert metrics.hours(filters) == ref.hours()
    assert metrics.geography(filters) == ref.geography()
    histogram = metrics.amount_histogram(filters)
    assert ([b["orders"] for b in histogram], [b["share"] for b in histogram]) == ref.amount_histogram()
    visits = metrics.store_visits(filters)
    assert {k: visits[k] for k in ("visits", "visitors", "per_member_per_week")} == ref.store_visits()
    assert [{k: r[k] for k in ("sku", "quantity", "amount", "orders")}
            for r in metrics.top_products(filters)] == ref.top_products()
    roles = {r["role"]: (r["quantity"], r["amount"]) for r in metrics.product_roles(filters)}
    expected_roles = ref.product_roles()
    assert {k: v for k, v in roles.items() if v[0]} == expected_roles
    assert metrics.cohort_retention(filters, today=TODAY)["cohorts"] == ref.cohorts(TODAY)
    for by in ("store", "guide"):
        league = {r["code"]: (r["members"], r["new_members"], r["orders"], r["amount"])
                  for r in metrics.league(filters, by=by)}
        expected = ref.league(by)
        from siyu.org.models import Staff, Store

        model = Store if by == "store" else Staff
        codes = dict(model.objects.values_list("pk", "code"))
        assert league == {codes[k]: v for k, v in expected.items()}


@pytest.mark.parametrize("case", ["all", "brand", "channel"])
def test_a_store_managers_figures_cover_only_the_members_of_their_store(world, case):
    filters, ref = both(world, MAY, case, scoped=True)

    assert metrics.member_share(filters) == ref.member_share()
    assert metrics.contribution(filters) == ref.contribution()
    assert metrics.online_rate(filters) == ref.online_rate()
    assert metrics.repurchase(filters) == ref.repurchase()
    assert metrics.trend(filters) == ref.trend()
    assert metrics.cohort_retention(filters, today=TODAY)["cohorts"] == ref.cohorts(TODAY)
    assert metrics.member_share(filters)["member_orders"] == metrics.member_share(filters)["orders"]


def test_the_world_has_the_edge_cases_the_metrics_must_handle(world):
    """Guard against a generator change quietly dropping an edge case."""
    from siyu.commerce.models import Order

    orders = Order.objects.all()
    assert orders.filter(member__isnull=True, is_counted=True).exists()
    assert orders.filter(is_counted=False).exists()
    assert orders.filter(refunded_amount__gt=0, refunded_amount__lt=Decimal("1") * 10**6).exclude(
        refunded_amount=models_f("paid_amount")).exists()
    assert orders.filter(refunded_amount=models_f("paid_amount"), paid_amount__gt=0).exists()
    assert orders.filter(store__isnull=True).exists()
    assert orders.filter(ordered_at=MAY_1).exists()
    assert any(not m.orders.exists() for m in world.members)


def models_f(name):
    from django.db.models import F

    return F(name)


def test_a_second_before_midnight_in_shanghai_belongs_to_the_day_before(world):
    """Order o1 at 23:59:59 on 30 April (15:59:59 UTC) is April's; o0 at 00:00 on 1 May is May's."""
    may = metrics.trend(resolve_filters(start=MAY[0], end=MAY[0]))
    april_30 = metrics.trend(resolve_filters(start=dt.date(2026, 4, 30), end=dt.date(2026, 4, 30)))
    joined = metrics.new_members(resolve_filters(start=MAY[0], end=MAY[0]))

    from siyu.commerce.models import Order

    o0, o1 = Order.objects.get(external_id="o0"), Order.objects.get(external_id="o1")
    assert may[0]["day"] == dt.date(2026, 5, 1)
    assert may[0]["orders"] >= int(o0.is_counted)
    assert Reference(start=MAY[0], end=dt.date(2026, 5, 2)).trend() == may
    assert Reference(start=dt.date(2026, 4, 30), end=MAY[0]).trend() == april_30
    assert joined["new_members"] >= 1  # member 0 joined at 00:00 on 1 May
    assert o1.ordered_at.isoformat().startswith("2026-04-30T15:59:59")


def test_an_empty_period_has_counts_of_zero_and_no_rates(world):
    filters = resolve_filters(start=EMPTY[0], end=EMPTY[1])

    share = metrics.member_share(filters)
    contribution = metrics.contribution(filters)
    assert share == {"orders": 0, "member_orders": 0, "amount": Decimal("0.00"), "member_amount": Decimal("0.00"),
                     "by_orders": None, "by_amount": None}
    assert contribution["active_members"] == 0
    assert contribution["frequency"] is None and contribution["average_order_value"] is None
    assert metrics.repurchase(filters) == {"buyers": 0, "repeat_buyers": 0, "rate": None, "interval_days": None}
    assert len(metrics.trend(filters)) == 31
    assert all(day["orders"] == 0 for day in metrics.trend(filters))
    assert [band["orders"] for band in metrics.amount_histogram(filters)] == [0] * len(AMOUNT_BANDS)


def _exact_shapley(before, after):
    """Shapley values by enumerating the six orders in which the factors can change."""
    def value(mask):
        a, f, v = (Fraction(after[i]) if mask[i] else Fraction(before[i]) for i in range(3))
        return a * f * v
    effects = [Fraction(0)] * 3
    orders = list(itertools.permutations(range(3)))
    for order in orders:
        mask = [False] * 3
        for i in order:
            was = value(mask)
            mask[i] = True
            effects[i] += value(mask) - was
    return [e / len(orders) for e in effects]


def test_the_contribution_change_splits_exactly_between_the_three_factors(world):
    filters = resolve_filters(start=JUNE[0], end=JUNE[1])
    may = Reference(start=MAY[0], end=JUNE[0]).contribution_parts()
    june = Reference(start=JUNE[0], end=dt.date(2026, 7, 1)).contribution_parts()

    change = metrics.contribution_change(filters, base=resolve_filters(start=MAY[0], end=MAY[1]).period)

    def factors(active, orders, amount, _items):
        return (Fraction(active), Fraction(orders, active), Fraction(amount) / orders)
    exact = _exact_shapley(factors(*may), factors(*june))
    got = [change["active_members_effect"], change["frequency_effect"], change["average_order_value_effect"]]
    assert change["before"] == may[2] and change["after"] == june[2]
    assert change["change"] == june[2] - may[2]
    assert sum(got) == change["change"]
    for mine, theirs in zip(got, exact, strict=True):
        assert abs(Fraction(mine) - theirs) <= Fraction(1, 100)


def test_the_shapley_split_of_a_known_change():
    # 100 members × 2 orders × ¥50 → 120 × 2 × ¥50: all of the +¥2,000 is more members
    effects = shapley_split((Decimal(100), Decimal(2), Decimal(50)), (Decimal(120), Decimal(2), Decimal(50)))
    assert effects == [Decimal(2000), Decimal(0), Decimal(0)]
    # the default base is the previous period of the same length
    filters = resolve_filters(start=dt.date(2026, 6, 1), end=dt.date(2026, 6, 30))
    assert filters.period.previous().start == dt.date(2026, 5, 2)


def test_a_refund_lowers_the_amount_but_not_the_order_count(world):
    from siyu.commerce.models import Order

    refunded = Order.objects.filter(is_counted=True, refunded_amount__gt=0, member__isnull=False).first()
    day = refunded.ordered_at.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    filters = resolve_filters(start=day, end=day)
    before = metrics.member_share(filters)

    assert before["orders"] == Reference(start=day, end=day + dt.timedelta(days=1)).member_share()["orders"]
    gross = sum((o.paid_amount for o in Order.objects.filter(pk__in=filters.orders().values("pk"))), Decimal(0))
    assert before["amount"] == gross - sum(
        (o.refunded_amount for o in Order.objects.filter(pk__in=filters.orders().values("pk"))), Decimal(0))
    assert before["amount"] < gross


@pytest.mark.parametrize("case", ["all", "brand", "store", "segment"])
def test_lifecycle_counts_each_stage_and_the_moves_into_churned_and_recalled(world, case):
    from collections import Counter

    from siyu.analytics.models import MemberLifecycle, ModelChange
    from siyu.analytics.services import recompute_models

    recompute_models(now=dt.datetime(2026, 6, 10, 4, 0, tzinfo=dt.UTC))  # the first scoring: changes in June
    recompute_models(now=dt.datetime(2026, 12, 10, 4, 0, tzinfo=dt.UTC))  # six months on: many churned
    filters, ref = both(world, JUNE, case)
    brand = CASES[case].get("brand")
    narrowed = case in ("store", "segment")
    members = {m["pk"] for m in ref.members.values() if ref.member_ok(m)}

    def keep(row) -> bool:
        if brand and row["brand__code"] != brand:
            return False
        return not narrowed or row["member_id"] in members
    stages = Counter(r["stage"] for r in MemberLifecycle.objects.values("stage", "member_id", "brand__code")
                     if keep(r))
    lo, hi = dt.datetime(2026, 5, 31, 16, tzinfo=dt.UTC), dt.datetime(2026, 6, 30, 16, tzinfo=dt.UTC)
    moves = {value: len({(r["member_id"]) for r in ModelChange.objects.filter(kind="lifecycle").values(
        "member_id", "new_value", "at", "brand__code") if keep(r) and r["new_value"] == value and lo <= r["at"] < hi})
        for value in ("churned", "recalled")}

    got = metrics.lifecycle(filters)

    assert got["stages"] == {stage: stages.get(stage, 0) for stage in got["stages"]}
    assert got["members"] == sum(stages.values()) > 0
    assert got["churn_rate"] == (Decimal(stages["churned"]) / sum(stages.values())).quantize(Decimal("0.0001"))
    assert got["churned_in_period"] == moves["churned"]
    assert got["recalled_in_period"] == moves["recalled"]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("period", ["may", "empty"])
def test_product_analysis_matches_the_plain_python_computation(world, case, period):
    from siyu.commerce.models import Product

    Product.objects.create(sku="NEVER-SOLD", name="从未售出", price="9.90")
    Product.objects.create(sku="DELISTED", name="已下架", price="9.90", is_active=False)
    filters, ref = both(world, PERIODS[period], case)

    assert metrics.co_purchase(filters) == ref.co_purchase()
    assert metrics.product_repurchase(filters) == ref.product_repurchase()
    slow = metrics.slow_movers(filters, days=10)
    assert [{"sku": r["sku"], "last_sold_at": r["last_sold_at"]} for r in slow] == ref.slow_movers(days=10)
    assert "NEVER-SOLD" in [r["sku"] for r in slow] and "DELISTED" not in [r["sku"] for r in slow]


@pytest.mark.parametrize("steps", ["join,order", "join,event:store_visit,order", "event:store_visit,order,order"])
@pytest.mark.parametrize("case", ["all", "store", "channel"])
def test_funnels_match_a_brute_force_walk(world, steps, case):
    from siyu.analytics.metrics.funnels import funnel, parse_steps

    filters, ref = both(world, MAY, case)

    got = funnel(filters, parse_steps(steps), window_days=20)

    assert got["steps"] == ref.funnel(steps.split(","), window_days=20)
    assert got["steps"][0]["members"] > 0


@pytest.mark.parametrize(("steps", "message"), [("join", "2 to 8 steps"), ("join,event:dance", "unknown funnel step"),
                                                ("join,refund", "unknown funnel step")])
def test_a_bad_funnel_is_refused_naming_the_steps(steps, message):
    from django.utils import translation

    from siyu.analytics.metrics.funnels import parse_steps
    from siyu.core.errors import ValidationError

    with translation.override("en"), pytest.raises(ValidationError) as error:
        parse_steps(steps)
    assert error.value.field == "steps" and message in str(error.value.message)
