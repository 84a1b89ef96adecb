"""Per-member order aggregates (会员消费统计), kept exact for the members a batch touched.

Ingestion, retroactive binding and merges all call :func:`refresh_member_stats` for exactly the
members whose orders changed, inside their transaction: the cost grows with those members'
orders, never with the whole table. :func:`refresh_all_member_stats` is the same computation
over everyone (nightly check, repairs).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Max, Min, Sum

from siyu.commerce.models import MemberChannelStats, MemberStats, Order
from siyu.core.db import chunked, upsert
from siyu.core.money import ZERO
from siyu.members.models import Member

STATS_FIELDS = ["first_order_at", "last_order_at", "order_count", "item_count", "total_paid",
                "total_refunded"]


def refresh_member_stats(member_ids: Iterable[int | None]) -> int:
    """Recompute stats and per-channel stats for ``member_ids``; returns how many members."""
    ids = sorted({m for m in member_ids if m is not None})
    for chunk in chunked(ids, 1000):
        counted = Order.objects.filter(member_id__in=chunk, is_counted=True)
        totals = {
            row["member_id"]: row
            for row in counted.values("member_id").order_by().annotate(
                first=Min("ordered_at"), last=Max("ordered_at"), orders=Count("id"),
                items=Sum("item_count"), paid=Sum("paid_amount"), refunded=Sum("refunded_amount"),
            )
        }
        stats = []
        for member_id in chunk:
            row = totals.get(member_id)
            if row is None:
                stats.append(MemberStats(member_id=member_id))
                continue
            stats.append(MemberStats(
                member_id=member_id, first_order_at=row["first"], last_order_at=row["last"],
                order_count=row["orders"], item_count=row["items"] or 0,
                total_paid=(row["paid"] or ZERO) - (row["refunded"] or ZERO),
                total_refunded=row["refunded"] or ZERO,
            ))
        upsert(MemberStats, stats, unique_fields=["member"], update_fields=STATS_FIELDS)
        MemberChannelStats.objects.filter(member_id__in=chunk).delete()
        MemberChannelStats.objects.bulk_create([
            MemberChannelStats(
                member_id=row["member_id"], channel_id=row["channel_id"],
                order_count=row["orders"], last_order_at=row["last"],
                total_paid=(row["paid"] or ZERO) - (row["refunded"] or ZERO),
            )
            for row in counted.values("member_id", "channel_id").order_by().annotate(
                orders=Count("id"), last=Max("ordered_at"), paid=Sum("paid_amount"),
                refunded=Sum("refunded_amount"),
            )
        ])
    return len(ids)


def refresh_all_member_stats(*, chunk_size: int = 1000, progress=None) -> int:
    """Recompute every member's stats from the orders (a full, chunked pass)."""
    done = 0
    ids = list(Member.objects.order_by("pk").values_list("pk", flat=True))
    for chunk in chunked(ids, chunk_size):
        done += refresh_member_stats(chunk)
        if progress:
            progress(done, len(ids))
    return done
