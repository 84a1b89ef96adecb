"""Every metric by name, with its definition: what the API and the exports serve."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from siyu.analytics.metrics import cohorts, funnels, loyalty, members, products, sales
from siyu.analytics.metrics.definitions import definition
from siyu.analytics.metrics.filters import Filters


@dataclass(frozen=True)
class Options:
    """Per-metric knobs: the conversion window, the cohort basis, a league's owner, row limits."""

    within_days: int = members.CONVERSION_DAYS
    basis: str = "joined"
    by: str = "store"
    limit: int = 20
    steps: str = "join,order"


def _rfm(filters: Filters, options: Options) -> dict:
    from siyu.analytics.selectors import distribution

    counts = distribution(brand_id=filters.brand.pk if filters.brand else None)
    return {"brands": [{"brand": row["code"], "name": row["name"], "rfm": row["rfm"]} for row in counts.values()]}


METRICS: dict[str, Callable[[Filters, Options], object]] = {
    "member_share": lambda f, o: sales.member_share(f),
    "online_rate": lambda f, o: members.online_rate(f),
    "contribution": lambda f, o: sales.contribution(f),
    "contribution_change": lambda f, o: sales.contribution_change(f),
    "new_members": lambda f, o: members.new_members(f, within_days=o.within_days),
    "repurchase": lambda f, o: members.repurchase(f),
    "new_vs_returning": lambda f, o: sales.new_vs_returning(f),
    "store_visits": lambda f, o: members.store_visits(f),
    "lifecycle": lambda f, o: members.lifecycle(f),
    "channel_mix": lambda f, o: sales.channel_mix(f),
    "trend": lambda f, o: sales.trend(f),
    "hours": lambda f, o: sales.hours(f),
    "geography": lambda f, o: sales.geography(f),
    "amount_histogram": lambda f, o: sales.amount_histogram(f),
    "cohorts": lambda f, o: cohorts.cohort_retention(f, basis=o.basis),
    "top_products": lambda f, o: products.top_products(f, limit=o.limit),
    "product_roles": lambda f, o: products.product_roles(f),
    "co_purchase": lambda f, o: products.co_purchase(f, limit=o.limit),
    "product_repurchase": lambda f, o: products.product_repurchase(f, limit=o.limit),
    "slow_movers": lambda f, o: products.slow_movers(f, days=o.within_days, limit=o.limit),
    "league": lambda f, o: products.league(f, by=o.by, limit=o.limit),
    "funnel": lambda f, o: funnels.funnel(f, funnels.parse_steps(o.steps), window_days=o.within_days),
    "rfm": _rfm,
    "loyalty_points": lambda f, o: {**loyalty.points(f), "now": loyalty.balances(f)},
    "loyalty_coupons": lambda f, o: {**loyalty.coupons(f), "sales": loyalty.coupon_sales(f)},
    "loyalty_tiers": lambda f, o: loyalty.tiers(f),
}


def compute(name: str, filters: Filters, options: Options | None = None) -> dict:
    """``{"metric", "title", "definition", "conventions", "filters", "value"}`` for one metric."""
    value = METRICS[name](filters, options or Options())
    return {**definition(name), "filters": filters.applied(), "value": value}
