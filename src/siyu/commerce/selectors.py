"""Commerce reads: a member's order aggregates and recent orders."""

from __future__ import annotations

from django.db.models import Prefetch

from siyu.commerce.models import MemberChannelStats, MemberStats, Order, OrderLine


def member_stats(member_id: int) -> MemberStats:
    """The member's order aggregates; an unsaved all-zero row when they have none yet."""
    return MemberStats.objects.filter(member_id=member_id).first() or MemberStats(member_id=member_id)


def member_channel_stats(member_id: int) -> list[MemberChannelStats]:
    """Per-channel aggregates, the channel with the most recent order first."""
    return list(MemberChannelStats.objects.filter(member_id=member_id).select_related("channel")
                .order_by("-last_order_at", "channel__code"))


def recent_orders(member_id: int, *, limit: int = 20) -> list[Order]:
    """The member's ``limit`` most recent orders with channel, store, guide and lines (two queries)."""
    return list(
        Order.objects.filter(member_id=member_id)
        .select_related("channel", "store", "guide")
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("line_no")))
        .order_by("-ordered_at", "-pk")[:limit]
    )
