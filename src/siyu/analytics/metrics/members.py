"""Member figures: online rate, new members and their first-order conversion, repurchase,
store visits, lifecycle and churn."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import (
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    Sum,
    Value,
)

from siyu.analytics.metrics.filters import Filters, Period, ratio
from siyu.analytics.models import LifecycleStage, MemberLifecycle, ModelChange
from siyu.events.models import Event, EventKind

#: The ways a member can be reached online, as member flags (channel of reach → column).
REACH = {"wecom_friend": "is_wecom_friend", "group": "in_group", "official_account": "follows_oa",
         "mini_program": "mini_program_authorized"}
#: Days after joining within which a first order counts as a conversion, by default.
CONVERSION_DAYS = 30


def online_rate(filters: Filters) -> dict:
    """Members reachable online / all members, and per channel of reach. One query."""
    reachable = Q()
    for column in REACH.values():
        reachable |= Q(**{column: True})
    counts = {name: Count("pk", filter=Q(**{column: True})) for name, column in REACH.items()}
    row = filters.members().aggregate(members=Count("pk"), reachable=Count("pk", filter=reachable), **counts)
    return {
        "members": row["members"], "reachable": row["reachable"], "rate": ratio(row["reachable"], row["members"]),
        "by_channel": {name: {"members": row[name], "rate": ratio(row[name], row["members"])} for name in REACH},
    }


def new_members(filters: Filters, period: Period | None = None, *, within_days: int = CONVERSION_DAYS) -> dict:
    """Members who joined in the period, and how many ordered within ``within_days`` of joining
    (an order matching the filters, placed at or after joining). One query."""
    start, end = (period or filters.period).bounds()
    joined = filters.members().filter(joined_at__gte=start, joined_at__lt=end)
    deadline = ExpressionWrapper(OuterRef("joined_at") + Value(dt.timedelta(days=within_days),
                                                               output_field=DurationField()),
                                 output_field=DateTimeField())
    converted = Exists(filters.orders(timed=False).filter(
        member_id=OuterRef("pk"), ordered_at__gte=OuterRef("joined_at"), ordered_at__lt=deadline))
    row = joined.aggregate(new=Count("pk"), converted=Count("pk", filter=converted))
    return {"new_members": row["new"], "converted": row["converted"], "within_days": within_days,
            "conversion_rate": ratio(row["converted"], row["new"])}


def repurchase(filters: Filters, period: Period | None = None) -> dict:
    """Members with ≥ 2 orders in the period / members with ≥ 1 (``buyers``: the period's active
    members), and the average days between a repeat buyer's consecutive orders. One query: the
    orders grouped by member, summed up in the database."""
    per_member = (filters.orders(period).filter(member_id__isnull=False).values("member_id")
                  .annotate(n=Count("pk"), first=Min("ordered_at"), last=Max("ordered_at")))
    repeat = Q(n__gte=2)
    row = per_member.aggregate(
        buyers=Count("member_id"), repeat_buyers=Count("member_id", filter=repeat),
        gaps=Sum(F("n") - 1, filter=repeat),
        elapsed=Sum(ExpressionWrapper(F("last") - F("first"), output_field=DurationField()), filter=repeat))
    elapsed = row["elapsed"] or dt.timedelta()
    micros = Decimal(elapsed // dt.timedelta(microseconds=1))
    return {
        "buyers": row["buyers"], "repeat_buyers": row["repeat_buyers"],
        "rate": ratio(row["repeat_buyers"], row["buyers"]),
        "interval_days": ratio(micros / 86_400_000_000, row["gaps"] or 0, Decimal("0.01")),
    }


def store_visits(filters: Filters, period: Period | None = None) -> dict:
    """Store-visit events / visiting members / weeks of the period. One query."""
    period = period or filters.period
    start, end = period.bounds()
    events = Event.objects.filter(kind=EventKind.STORE_VISIT, occurred_at__gte=start, occurred_at__lt=end).order_by()
    if filters.store is not None:
        events = events.filter(store_id=filters.store.pk)
    if filters.brand is not None:
        events = events.filter(store__brand_id=filters.brand.pk)
    if filters.region is not None:
        events = events.filter(store__region_id=filters.region.pk)
    if filters.channel is not None or filters.segment is not None or not filters.everyone:
        events = events.filter(member_id__in=filters.members().values("pk"))
    row = events.aggregate(visits=Count("pk"), visitors=Count("member_id", distinct=True))
    weeks = Decimal(period.days) / 7
    return {"visits": row["visits"], "visitors": row["visitors"], "weeks": weeks.quantize(Decimal("0.01")),
            "per_member_per_week": ratio(row["visits"], row["visitors"] * weeks) if row["visitors"] else None}


def lifecycle(filters: Filters, period: Period | None = None) -> dict:
    """Members per stage now, churn rate, and members who became churned / recalled in the period."""
    start, end = (period or filters.period).bounds()
    stages = MemberLifecycle.objects.order_by()
    changes = ModelChange.objects.filter(kind=ModelChange.Kind.LIFECYCLE, at__gte=start, at__lt=end).order_by()
    if filters.brand is not None:
        stages = stages.filter(brand_id=filters.brand.pk)
        changes = changes.filter(brand_id=filters.brand.pk)
    if any(getattr(filters, name) is not None for name in ("store", "region", "channel", "segment")) \
            or not filters.everyone:
        members = filters.members().values("pk")
        stages = stages.filter(member_id__in=members)
        changes = changes.filter(member_id__in=members)
    by_stage = dict.fromkeys(LifecycleStage.values, 0)
    by_stage.update(stages.values_list("stage").annotate(n=Count("pk")).values_list("stage", "n"))
    moved = dict(changes.filter(new_value__in=[LifecycleStage.CHURNED, LifecycleStage.RECALLED])
                 .values_list("new_value").annotate(n=Count("member_id", distinct=True)).values_list("new_value", "n"))
    total = sum(by_stage.values())
    return {"stages": by_stage, "members": total, "churn_rate": ratio(by_stage[LifecycleStage.CHURNED], total),
            "churned_in_period": moved.get(LifecycleStage.CHURNED, 0),
            "recalled_in_period": moved.get(LifecycleStage.RECALLED, 0)}


__all__ = ["REACH", "lifecycle", "new_members", "online_rate", "repurchase", "store_visits"]
