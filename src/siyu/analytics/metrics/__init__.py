"""Analytics metrics (KPIs) as selectors, each narrowed by :class:`Filters` and defined in
:mod:`.definitions`. Reads only: facts and maintained aggregates, never a write."""

from siyu.analytics.metrics.cohorts import cohort_retention
from siyu.analytics.metrics.definitions import DEFINITIONS, definition
from siyu.analytics.metrics.filters import Filters, Period, default_period, resolve_filters
from siyu.analytics.metrics.members import lifecycle, new_members, online_rate, repurchase, store_visits
from siyu.analytics.metrics.products import (
    co_purchase,
    league,
    product_repurchase,
    product_roles,
    slow_movers,
    top_products,
)
from siyu.analytics.metrics.sales import (
    amount_histogram,
    channel_mix,
    contribution,
    contribution_change,
    geography,
    hours,
    member_share,
    new_vs_returning,
    trend,
)

__all__ = [
    "DEFINITIONS",
    "Filters",
    "Period",
    "amount_histogram",
    "channel_mix",
    "co_purchase",
    "cohort_retention",
    "contribution",
    "contribution_change",
    "default_period",
    "definition",
    "geography",
    "hours",
    "league",
    "lifecycle",
    "member_share",
    "new_members",
    "new_vs_returning",
    "online_rate",
    "product_repurchase",
    "product_roles",
    "repurchase",
    "resolve_filters",
    "slow_movers",
    "store_visits",
    "top_products",
    "trend",
]
