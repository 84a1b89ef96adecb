"""Per-member order aggregates (会员消费统计), kept exact for the members a batch touched.

Ingestion, retroactive binding and merges call :func:`refresh_member_stats` for exactly the
members whose orders changed, inside their transaction: each refresh is a few set-based
statements whose cost grows with those members' orders, never with the whole table.
:func:`refresh_all_member_stats` is the same computation over everyone (nightly check, repairs).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from django.db import connection

from siyu.commerce.models import MemberChannelStats, MemberStats, Order
from siyu.core.db import chunked, id_list, upsert_select_sql
from siyu.members.models import Member

STATS_COLUMNS = ["member_id", "first_order_at", "last_order_at", "order_count", "item_count", "total_paid",
                 "total_refunded"]
CHANNEL_COLUMNS = ["member_id", "channel_id", "order_count", "total_paid", "last_order_at"]
ADD_STATS = {"first_order_at": "min", "last_order_at": "max", "order_count": "add", "item_count": "add",
             "total_paid": "add", "total_refunded": "add"}
ADD_CHANNEL = {"order_count": "add", "total_paid": "add", "last_order_at": "max"}


@functools.cache
def _statements(vendor: str) -> dict[str, str]:
    """The refresh statements for one database vendor, built once (identifier quoting differs)."""
    q = connection.ops.quote_name
    members, orders, channel_stats = (q(m._meta.db_table) for m in (Member, Order, MemberChannelStats))
    counted = f"FROM {orders} o WHERE o.is_counted = %s AND o.member_id {{ids}}"
    new = f"FROM {orders} o WHERE o.is_counted = %s AND o.member_id IS NOT NULL AND o.id {{ids}}"
    net = "ROUND(SUM(o.paid_amount) - SUM(o.refunded_amount), 2)"
    return {
        # LEFT JOIN from the members so that a member left with no counted order gets zeros.
        "stats": upsert_select_sql(
            MemberStats._meta.db_table, STATS_COLUMNS,
            f"SELECT m.id, MIN(o.ordered_at), MAX(o.ordered_at), COUNT(o.id), COALESCE(SUM(o.item_count), 0), "  # noqa: S608
            f"COALESCE({net}, 0), COALESCE(ROUND(SUM(o.refunded_amount), 2), 0) FROM {members} m "
            f"LEFT JOIN {orders} o ON o.member_id = m.id AND o.is_counted = %s WHERE m.id {{ids}} GROUP BY m.id",
            conflict=["member_id"]),
        # The incremental path: add a batch of new orders to the totals already kept.
        "add_stats": upsert_select_sql(
            MemberStats._meta.db_table, STATS_COLUMNS,
            f"SELECT o.member_id, MIN(o.ordered_at), MAX(o.ordered_at), COUNT(*), SUM(o.item_count), {net}, "
            f"ROUND(SUM(o.refunded_amount), 2) {new} GROUP BY o.member_id",
            conflict=["member_id"], merge=ADD_STATS),
        "add_channels": upsert_select_sql(
            MemberChannelStats._meta.db_table, CHANNEL_COLUMNS,
            f"SELECT o.member_id, o.channel_id, COUNT(*), {net}, MAX(o.ordered_at) {new} "
            f"GROUP BY o.member_id, o.channel_id",
            conflict=["member_id", "channel_id"], merge=ADD_CHANNEL),
        "clear_channels": f"DELETE FROM {channel_stats} WHERE member_id {{ids}}",  # noqa: S608
        "channels": (f"INSERT INTO {channel_stats} ({', '.join(q(c) for c in CHANNEL_COLUMNS)}) "
                     f"SELECT o.member_id, o.channel_id, COUNT(*), {net}, MAX(o.ordered_at) {counted} "
                     f"GROUP BY o.member_id, o.channel_id"),
    }


def refresh_member_stats(member_ids: Iterable[int | None]) -> int:
    """Recompute stats and per-channel stats for ``member_ids``; returns how many members."""
    ids = sorted({m for m in member_ids if m is not None})
    if not ids:
        return 0
    sql = _statements(connection.vendor)
    with connection.cursor() as cursor:
        for chunk in chunked(ids, 1000):
            marks, params = id_list(chunk)
            cursor.execute(sql["stats"].format(ids=marks), [True, *params])
            cursor.execute(sql["clear_channels"].format(ids=marks), params)
            cursor.execute(sql["channels"].format(ids=marks), [True, *params])
    return len(ids)


def add_new_orders_to_stats(order_ids: Iterable[int]) -> None:
    """Add freshly inserted orders to their members' totals (the common ingestion case).

    Only for orders that did not exist before this transaction; anything that changes an
    existing order, binds or moves orders goes through :func:`refresh_member_stats`.
    """
    ids = sorted(order_ids)
    if not ids:
        return
    sql = _statements(connection.vendor)
    with connection.cursor() as cursor:
        for chunk in chunked(ids, 1000):
            marks, params = id_list(chunk)
            cursor.execute(sql["add_stats"].format(ids=marks), [True, *params])
            cursor.execute(sql["add_channels"].format(ids=marks), [True, *params])


def add_statements() -> list[str]:
    """What :func:`add_new_orders_to_stats` runs, as SQL whose ``{ids}`` picks the orders and
    whose one parameter is ``True`` (for a caller that fuses the writes of new orders)."""
    sql = _statements(connection.vendor)
    return [sql["add_stats"], sql["add_channels"]]


def refresh_all_member_stats(*, chunk_size: int = 1000, progress=None) -> int:
    """Recompute every member's stats from the orders (a full, chunked pass)."""
    done = 0
    ids = list(Member.objects.order_by("pk").values_list("pk", flat=True))
    for chunk in chunked(ids, chunk_size):
        done += refresh_member_stats(chunk)
        if progress:
            progress(done, len(ids))
    return done
