"""Sales rollups (销售汇总) kept in step with the orders, in the same transaction as every change.

:class:`~siyu.commerce.models.DailySales` counts counted orders per business day, channel and
store; :class:`~siyu.commerce.models.MemberMonth` per member and business month. Both move by
deltas: an order's contribution is added when it arrives, and an order that changes is taken
out before the change and put back after it (:func:`orders_changing`) — a new status, amount,
refund, time, store or member moves it between rows with two set-based statements per batch,
whatever the size of the tables. Merges add the merged member's months to the survivor's.

:func:`rebuild_rollups` recomputes both from the orders (after a bulk load that bypassed
ingestion, a change of ``SIYU_TIME_ZONE``, or to check them); ``siyu rebuild_rollups`` runs it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Max, Min

from siyu.commerce.models import DailySales, MemberMonth, Order
from siyu.core.db import chunked, id_list, upsert_select_sql
from siyu.core.time import business_date, business_day_sql, business_zone, start_of_day

DAILY_COLUMNS = ["day", "channel_id", "store_key", "orders", "member_orders", "amount", "member_amount", "items",
                 "member_items"]
MONTH_COLUMNS = ["member_id", "month", "orders", "amount"]


@functools.cache
def _statements(vendor: str, zone: str) -> dict[str, str]:
    """The delta statements for one vendor and business zone; ``{where}`` picks the orders,
    ``{sign}`` is ``""`` to add them or ``"-"`` to take them out. Rows are written in key order,
    so concurrent batches touching the same days (today's, above all) lock them in one order."""
    q = connection.ops.quote_name
    orders, months = q(Order._meta.db_table), q(MemberMonth._meta.db_table)
    day = business_day_sql("o.ordered_at", vendor)
    month = business_day_sql("o.ordered_at", vendor, month=True)
    net = "(o.paid_amount - o.refunded_amount)"
    members_only = "CASE WHEN o.member_id IS NOT NULL THEN {} ELSE 0 END"
    daily = upsert_select_sql(
        DailySales._meta.db_table, DAILY_COLUMNS,
        f"SELECT {day}, o.channel_id, COALESCE(o.store_id, 0), {{sign}}COUNT(*), {{sign}}COUNT(o.member_id), "  # noqa: S608
        f"{{sign}}ROUND(SUM({net}), 2), {{sign}}ROUND(SUM({members_only.format(net)}), 2), "
        f"{{sign}}SUM(o.item_count), {{sign}}SUM({members_only.format('o.item_count')}) "
        f"FROM {orders} o WHERE o.is_counted = %s AND {{where}} GROUP BY {day}, o.channel_id, COALESCE(o.store_id, 0) "
        f"ORDER BY 1, 2, 3",
        conflict=["day", "channel_id", "store_key"], merge=dict.fromkeys(DAILY_COLUMNS[3:], "add"))
    monthly = upsert_select_sql(
        MemberMonth._meta.db_table, MONTH_COLUMNS,
        f"SELECT o.member_id, {month}, {{sign}}COUNT(*), {{sign}}ROUND(SUM({net}), 2) FROM {orders} o "  # noqa: S608
        f"WHERE o.is_counted = %s AND o.member_id IS NOT NULL AND {{where}} GROUP BY o.member_id, {month} "
        f"ORDER BY 1, 2",
        conflict=["member_id", "month"], merge={"orders": "add", "amount": "add"})
    # Months left without orders go; the members are those of the orders just taken out.
    empty = (f"DELETE FROM {months} WHERE orders <= 0 AND member_id IN "  # noqa: S608
             f"(SELECT o.member_id FROM {orders} o WHERE o.member_id IS NOT NULL AND {{where}})")
    return {"daily": daily, "monthly": monthly, "empty": empty}


def _shift(where: str, params: list, *, sign: str) -> None:
    sql = _statements(connection.vendor, business_zone().key)
    with connection.cursor() as cursor:
        cursor.execute(sql["daily"].format(where=where, sign=sign), [True, *params])
        cursor.execute(sql["monthly"].format(where=where, sign=sign), [True, *params])
        if sign:
            cursor.execute(sql["empty"].format(where=where), params)


def add_orders(order_ids: Iterable[int]) -> None:
    """Add the orders' contributions (orders just inserted, or :func:`orders_changing`'s second
    half). Not counted orders contribute nothing."""
    for chunk in chunked(sorted(set(order_ids)), 1000):
        marks, params = id_list(chunk)
        _shift(f"o.id {marks}", params, sign="")


def add_statements() -> list[str]:
    """What :func:`add_orders` runs, as SQL whose ``{where}`` picks the orders and whose one
    parameter is ``True`` (for a caller that fuses the writes of new orders)."""
    sql = _statements(connection.vendor, business_zone().key)
    return [sql["daily"].replace("{sign}", ""), sql["monthly"].replace("{sign}", "")]


def remove_orders(order_ids: Iterable[int]) -> None:
    """Take the orders' contributions out, as they stand now."""
    for chunk in chunked(sorted(set(order_ids)), 1000):
        marks, params = id_list(chunk)
        _shift(f"o.id {marks}", params, sign="-")


@contextmanager
def orders_changing(order_ids: Iterable[int]) -> Iterator[None]:
    """Around any change of existing orders: their contributions come out before and go back
    in after, so the rollups follow whatever changed (status, amounts, time, store, member)."""
    ids = sorted(set(order_ids))
    remove_orders(ids)
    yield
    add_orders(ids)


def merge_member_months(survivor_id: int, merged_id: int) -> int:
    """Add the merged member's months to the survivor's (the merge moves their orders); a
    member has a few dozen months at most, so this is plain row work."""
    theirs = {row.month: row for row in MemberMonth.objects.filter(member_id=merged_id)}
    ours = list(MemberMonth.objects.filter(member_id=survivor_id, month__in=list(theirs)))
    for row in ours:
        extra = theirs[row.month]
        row.orders += extra.orders
        row.amount += extra.amount
    MemberMonth.objects.bulk_update(ours, ["orders", "amount"])
    MemberMonth.objects.filter(member_id=merged_id, month__in=[row.month for row in ours]).delete()
    return len(ours) + MemberMonth.objects.filter(member_id=merged_id).update(member_id=survivor_id)


def rebuild_rollups(*, progress: Callable[[int, int], None] | None = None) -> int:
    """Recompute both rollups from all orders, in one transaction, a business month at a time
    (no two months share a row, so each month's statements only insert); returns the number of
    daily rows. ``progress(months done, months)``."""
    with transaction.atomic():
        DailySales.objects.all().delete()
        MemberMonth.objects.all().delete()
        span = Order.objects.filter(is_counted=True).aggregate(first=Min("ordered_at"), last=Max("ordered_at"))
        if span["first"] is not None:
            month, last = business_date(span["first"]).replace(day=1), business_date(span["last"]).replace(day=1)
            months = (last.year - month.year) * 12 + last.month - month.month + 1
            for done in range(1, months + 1):
                following = (month + dt.timedelta(days=31)).replace(day=1)
                bounds = [connection.ops.adapt_datetimefield_value(start_of_day(day)) for day in (month, following)]
                _shift("o.ordered_at >= %s AND o.ordered_at < %s", bounds, sign="")
                if progress:
                    progress(done, months)
                month = following
    return DailySales.objects.count()
