"""Cohort retention: members by joining (or first-order) month × months since, the share still
ordering. Two queries: cohort sizes, and buyers per (cohort month, order month) — from the
maintained member months, or from the orders when a store, brand, region or channel narrows them."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, F

from siyu.analytics.metrics.filters import Filters, local_month, ratio
from siyu.core.time import business_date, start_of_day

BASES = ("joined", "first_order")
#: The most cohort months one table shows.
MAX_COHORTS = 36


def month_index(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def month_of(index: int) -> dt.date:
    return dt.date(index // 12, index % 12 + 1, 1)


def _month(value: str | dt.date) -> dt.date:
    """'2026-05' (or any day of it) → 1 May 2026."""
    if isinstance(value, dt.date):
        return value.replace(day=1)
    return dt.date(int(value[:4]), int(value[5:7]), 1)


def cohort_retention(filters: Filters, *, basis: str = "joined", today: dt.date | None = None) -> dict:
    """Cohorts are the months the period touches; each row's ``retention[k]`` is the share of the
    cohort with an order (matching the filters) in its k-th month after the cohort month (k = 0
    is the cohort month itself), up to the current month.

    ``basis="joined"`` groups members by the month they joined; ``"first_order"`` by the month
    of their first order ever (members' maintained stats).
    """
    if basis not in BASES:
        raise ValueError(basis)
    today = today or business_date()
    first = month_index(filters.period.start)
    last = min(month_index(filters.period.end - dt.timedelta(days=1)), month_index(today))
    first = max(first, last - MAX_COHORTS + 1)

    lo, hi = start_of_day(month_of(first)), start_of_day(month_of(last + 1))
    column = "joined_at" if basis == "joined" else "stats__first_order_at"
    members = filters.members().filter(**{f"{column}__gte": lo, f"{column}__lt": hi})
    sizes = {_month(m): n for m, n in members.annotate(cohort=local_month(column))
        .values("cohort").annotate(n=Count("pk")).values_list("cohort", "n")}
    if filters.by_order_attributes:  # only the orders know their store and channel
        member_column = "member__joined_at" if basis == "joined" else "member__stats__first_order_at"
        pairs = (filters.orders(timed=False).filter(member_id__in=members.values("pk"), ordered_at__gte=lo)
                 .values(cohort=local_month(member_column), month=local_month("ordered_at"))
                 .annotate(n=Count("member_id", distinct=True)))
    else:  # the members' maintained months (segment and scope narrow the members already)
        pairs = (members.filter(months__month__gte=month_of(first))
                 .values(cohort=local_month(column), month=F("months__month")).annotate(n=Count("pk")))
    pairs = pairs.values_list("cohort", "month", "n")
    buyers: dict[tuple[int, int], int] = {}
    for cohort, month, n in pairs:
        k = month_index(_month(month)) - month_index(_month(cohort))
        if k >= 0:
            buyers[(month_index(_month(cohort)), k)] = n
    current = month_index(today)
    rows = []
    for index in range(first, last + 1):
        size = sizes.get(month_of(index), 0)
        months = current - index + 1
        counts = [buyers.get((index, k), 0) for k in range(months)]
        rows.append({"cohort": month_of(index).strftime("%Y-%m"), "members": size, "buyers": counts,
                     "retention": [ratio(n, size) for n in counts]})
    return {"basis": basis, "months": max((len(r["buyers"]) for r in rows), default=0), "cohorts": rows}
