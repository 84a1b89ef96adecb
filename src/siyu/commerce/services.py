"""Commerce writes: batch order ingestion (with lines and refunds) and retroactive binding."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Case, IntegerField, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.commerce import rollups, stats
from siyu.commerce.models import (
    COUNTED_STATUSES,
    Channel,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Refund,
)
from siyu.commerce.rollups import add_orders, orders_changing
from siyu.commerce.stats import add_new_orders_to_stats, refresh_member_stats
from siyu.core.db import among, by_code, chunked, execute_sql, ids_by, insert_rows, note_bulk_write, spare_work
from siyu.core.ingest import Batch, IngestResult, run_batch, run_batches
from siyu.core.money import ZERO
from siyu.core.rows import RowError, RowReader, unknown_reference
from siyu.core.time import business_zone
from siyu.loyalty.coupons import release_coupons_for_orders
from siyu.loyalty.earning import NewOrder, earn_for_orders, start_earning
from siyu.members.identities import Ident, parse_ref, row_identities
from siyu.members.models import Member
from siyu.members.resolution import lookup_identities
from siyu.org.models import Staff, Store

ORDER_FIELDS = ("status", "is_counted", "total_amount", "paid_amount", "item_count",
                "ordered_at", "paid_at", "store_id", "guide_id", "buyer_kind", "buyer_value")
# ORDER_FIELDS exclude channel_id: an order never moves channel.


@dataclass
class _OrderRow:
    row: int
    raw: Mapping[str, Any]
    channel_code: str
    external_id: str
    member_id: int | None
    member_code: str
    buyer: list[Ident]
    values: dict[str, Any]
    store_code: str
    guide_code: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)


def _parse_line(index: int, raw: Any) -> dict[str, Any]:
    prefix = f"lines[{index}]."
    if raw.__class__ is not dict and not isinstance(raw, Mapping):
        raise RowError(prefix.rstrip("."), "invalid_value", _("expected an object"))
    reader = RowReader(raw)
    try:
        sku = reader.text("sku", max_length=64)
        name = reader.text("name", max_length=200)
        quantity = reader.integer("quantity", default=1, minimum=1)
        unit_price = reader.money("unit_price")
        amount = reader.money("amount")
        line_no = reader.integer("line_no", default=index + 1, minimum=1)
    except RowError as error:
        raise RowError(prefix + error.field, error.code, error.message) from None
    if not sku and not name:
        raise RowError(prefix + "sku", "missing", _("a line needs a SKU or a product name"))
    if amount is None:
        amount = (unit_price or ZERO) * quantity
    if unit_price is None:
        unit_price = (amount / quantity).quantize(Decimal("0.01"))
    return {"line_no": line_no, "sku": sku, "name": name, "quantity": quantity,
            "unit_price": unit_price, "amount": amount}


def _parse_refund(index: int, raw: Any, default_at) -> dict[str, Any]:
    prefix = f"refunds[{index}]."
    if raw.__class__ is not dict and not isinstance(raw, Mapping):
        raise RowError(prefix.rstrip("."), "invalid_value", _("expected an object"))
    reader = RowReader(raw)
    try:
        amount = reader.money("amount", required=True)
        if amount == 0:
            raise RowError("amount", "out_of_range", _("a refund must be more than 0"))
        return {
            "external_id": reader.text("external_id", max_length=64) or f"refund-{index + 1}",
            "amount": amount,
            "refunded_at": reader.datetime("refunded_at") or default_at,
            "reason": reader.text("reason", max_length=200),
        }
    except RowError as error:
        raise RowError(prefix + error.field, error.code, error.message) from None


def _refund_error(paid: Decimal) -> RowError:
    return RowError("refunds", "refund_exceeds_paid",
                    _("refunds total more than the paid amount %(paid)s") % {"paid": paid})


def _parse_order(row: int, raw: Mapping[str, Any]) -> _OrderRow:
    reader = RowReader(raw)
    channel = reader.text("channel", required=True, max_length=50)
    external_id = reader.text("external_id", required=True, max_length=64)
    member_id = reader.integer("member_id", minimum=1)
    member_code = reader.text("member_code", max_length=32)
    buyer = row_identities(raw)
    if raw.get("buyer") not in (None, ""):
        buyer.insert(0, parse_ref(raw["buyer"], field="buyer"))
    status = reader.choice("status", OrderStatus, default=OrderStatus.PAID)
    paid_amount = reader.money("paid_amount", required=True)
    ordered_at = reader.datetime("ordered_at", required=True)
    paid_at = reader.datetime("paid_at")
    lines = [_parse_line(i, line) for i, line in enumerate(reader.items("lines"))]
    if len({line["line_no"] for line in lines}) != len(lines):
        raise RowError("lines", "duplicate_line", _("two lines share a line number"))
    item_count = reader.integer("item_count")
    if item_count is None:
        item_count = sum(line["quantity"] for line in lines)
    refunds = [_parse_refund(i, r, paid_at or ordered_at) for i, r in enumerate(reader.items("refunds"))]
    if len({r["external_id"] for r in refunds}) != len(refunds):
        raise RowError("refunds", "duplicate_refund", _("two refunds share an external id"))
    if sum((r["amount"] for r in refunds), ZERO) > paid_amount:
        raise _refund_error(paid_amount)
    values = {
        "status": status,
        "is_counted": status in COUNTED_STATUSES,
        "paid_amount": paid_amount,
        "total_amount": reader.money("total_amount", default=paid_amount),
        "item_count": item_count,
        "ordered_at": ordered_at,
        "paid_at": paid_at,
        "buyer_kind": buyer[0].kind if buyer else "",
        "buyer_value": buyer[0].value if buyer else "",
    }
    return _OrderRow(row, raw, channel, external_id, member_id, member_code, buyer, values,
                     reader.text("store", max_length=50), reader.text("guide", max_length=64),
                     lines, refunds)


def record_orders(*, rows: Sequence[Mapping[str, Any]], source: str, first_row: int = 1,
        row_numbers: Sequence[int] | None = None) -> IngestResult:
    """Record a batch of orders with their lines and refunds; one transaction.

    Idempotency key: ``channel`` + ``external_id``. Re-sending an order unchanged is a
    duplicate; a changed status, amount, lines or new refunds update it. The buyer is bound
    by ``member_id``, ``member_code`` or identity (``buyer: "nick:…"``, ``phone``, …); an
    unknown buyer is kept on the order and bound when that identity joins a member. Member
    stats of every touched member are refreshed in the same transaction.

    Rejects: missing channel/external_id/paid_amount/ordered_at, bad dates, negative amounts,
    unknown channel/store/guide/member, refunds over the paid amount, conflicting duplicates.
    """
    return run_batch(entity="order", rows=rows, parse=_parse_order, apply=_apply_orders, source=source,
                     first_row=first_row, row_numbers=row_numbers)


def record_order_batches(*, batches: Iterable[Sequence[Mapping[str, Any]] | Batch], source: str,
                         first_row: int = 1) -> Iterator[IngestResult]:
    """:func:`record_orders` over a stream of batches (a file, a backfill), one result per batch
    as each commits; rows are numbered on across batches from ``first_row`` (or by each
    :class:`~siyu.core.ingest.Batch`). Each batch is parsed while the one before is written: on
    PostgreSQL, during its kept-total upserts."""
    return run_batches(entity="order", batches=batches, parse=_parse_order, apply=_apply_orders, source=source,
                       first_row=first_row)


def _resolve_references(parsed: list[_OrderRow], result: IngestResult) -> list[_OrderRow]:
    # Held until the commit, as the products: an order's channel, store and guide have no
    # database constraint (Order). An order without a store code takes its channel's store.
    channels = by_code(Channel, (p.channel_code for p in parsed), hold=True)
    stores = by_code(Store, (p.store_code for p in parsed), hold=True)
    ids_by(Store, "pk", (c.store_id for c in channels.values()), hold=True)
    guides = by_code(Staff, (p.guide_code for p in parsed), hold=True)
    member_codes = ids_by(Member, "code", (p.member_code for p in parsed))
    member_ids = ids_by(Member, "pk", (p.member_id for p in parsed))
    identities = lookup_identities([i for p in parsed for i in p.buyer])
    valid = []
    for p in parsed:
        channel = channels.get(p.channel_code)
        error = None
        if channel is None:
            error = unknown_reference("channel", p.channel_code)
        elif p.store_code and p.store_code not in stores:
            error = unknown_reference("store", p.store_code)
        elif p.guide_code and p.guide_code not in guides:
            error = unknown_reference("guide", p.guide_code)
        elif p.member_id and p.member_id not in member_ids:
            error = unknown_reference("member_id", p.member_id)
        elif p.member_code and p.member_code not in member_codes:
            error = unknown_reference("member_code", p.member_code)
        if error:
            result.reject(p.row, error, p.raw)
            continue
        store = stores.get(p.store_code)
        guide = guides.get(p.guide_code)
        p.values["channel_id"] = channel.pk
        p.values["store_id"] = store.pk if store else channel.store_id
        p.values["guide_id"] = guide.pk if guide else None
        p.member_id = p.member_id or member_codes.get(p.member_code) or next(
            (identities[i] for i in p.buyer if i in identities), None)
        valid.append(p)
    return valid


def _apply_orders(parsed: list[_OrderRow], result: IngestResult) -> None:
    valid = _resolve_references(parsed, result)
    if not valid:
        return
    keys = defaultdict(set)
    for p in valid:
        keys[p.values["channel_id"]].add(p.external_id)
    # One indexed probe for the whole batch; only orders that exist are then loaded and locked.
    # .order_by(): the default newest-first ordering made SQLite scan the time index.
    probe = Q()
    for channel_id, external_ids in keys.items():
        probe |= Q(channel_id=channel_id) & Q(among("external_id", sorted(external_ids)))  # see among()
    found = list(Order.objects.filter(probe).order_by().values_list("pk", flat=True))
    existing: dict[tuple[int, str], Order] = {}
    for chunk in chunked(sorted(found), 1000):
        for order in Order.objects.select_for_update().filter(pk__in=chunk).order_by("pk"):
            existing[(order.channel_id, order.external_id)] = order
    # Held until the commit: the lines' product key has no database constraint (OrderLine.product).
    products = ids_by(Product, "sku", (line["sku"] for p in valid for line in p.lines), hold=True)

    new_rows: list[_OrderRow] = []
    seen: dict[tuple[int, str], _OrderRow] = {}
    twins: list[tuple[int, int]] = []  # (row, earlier row of the same order in this batch)
    updated: list[tuple[Order, _OrderRow]] = []
    for p in valid:
        key = (p.values["channel_id"], p.external_id)
        if key in seen:
            first = seen[key]
            same = (first.values, first.lines, first.refunds, first.member_id)
            if same == (p.values, p.lines, p.refunds, p.member_id):
                result.duplicates += 1
                twins.append((p.row, first.row))
            else:
                message = _("the batch has this order twice with different data (first at row %(row)d)")
                result.reject(p.row, RowError("external_id", "conflicting_duplicate", message % {"row": first.row}),
                              p.raw)
            continue
        seen[key] = p
        if key in existing:
            updated.append((existing[key], p))
        else:
            new_rows.append(p)

    order_ids = _insert_orders(new_rows)
    note_bulk_write(Order, len(order_ids))
    for p in new_rows:
        for line in p.lines:
            line["product_id"] = products.get(line["sku"])  # for earning too (NewOrder.lines: exclusions)
    # Points (积分) for the new orders, less their refunds: the accounts and tier rows are locked now,
    # with those of the orders this batch changes (the lock order: accounts, then the kept totals);
    # the points are decided while the kept totals are written, and written last.
    earning = start_earning(new_orders=[
        NewOrder(order_id, p.member_id, p.values["paid_amount"], p.values["is_counted"], p.values["ordered_at"],
                 p.values["paid_at"], refunded, p.values["store_id"], p.lines)
        for order_id, p, refunded in zip(order_ids, new_rows, _refunded(new_rows), strict=True)],
        hold=[pair for order, p in updated for pair in ((order.member_id, order.store_id),
                                                         (p.member_id, p.values["store_id"]))])
    lines, refunds = [], []

    def prepare() -> None:  # no database: made while the kept totals are written
        for order_id, p in zip(order_ids, new_rows, strict=True):
            lines.extend((order_id, line["line_no"], line["product_id"], line["sku"], line["name"],
                          line["quantity"], line["unit_price"], line["amount"]) for line in p.lines)
            refunds.extend((order_id, r["external_id"], r["amount"], r["refunded_at"], r["reason"])
                           for r in p.refunds)
            result.accept(p.row, order_id)
        result.created += len(order_ids)
        earning.work()

    # New orders are added to the kept totals, which read the orders alone: their lines and
    # refunds are made meanwhile and written next. Members whose existing orders changed are
    # recomputed afterwards (which also covers their new orders of this batch).
    _count_new_orders(order_ids, meanwhile=prepare)
    insert_rows(OrderLine, LINE_COLUMNS, lines)
    note_bulk_write(OrderLine, len(lines))  # the planner must see the lines of a bulk load
    insert_rows(Refund, REFUND_COLUMNS, refunds)
    touched = _apply_updates(updated, products, result)
    release_coupons_for_orders(order_ids=[o.pk for o, _ in updated])  # coupons of orders now closed
    refresh_member_stats(touched)
    result.members.update(m for m in touched if m is not None)
    result.members.update(p.member_id for p in new_rows if p.member_id is not None)
    result.buyers.update(result.members)
    for row, earlier in twins:
        if earlier in result.row_ids:
            result.accept(row, result.row_ids[earlier])
    earning.finish()
    # The changed orders earn (or give back) as they now stand; their accounts are held already.
    earn_for_orders(order_ids=[o.pk for o, _ in updated])


ORDER_COLUMNS = ["channel_id", "external_id", "member_id", *ORDER_FIELDS,
                 "refunded_amount", "created_at", "updated_at"]
LINE_COLUMNS = ["order_id", "line_no", "product_id", "sku", "name", "quantity", "unit_price", "amount"]
REFUND_COLUMNS = ["order_id", "external_id", "amount", "refunded_at", "reason"]


def _count_new_orders(order_ids: list[int], *, meanwhile: Callable[[], object]) -> None:
    """New orders into the kept totals: member stats, per-channel stats and both sales rollups.

    On PostgreSQL one statement reads the batch's orders once and feeds the four upserts as
    data-modifying CTEs; one by one, each read the orders by id again (1-2 ms a batch of 1,000)
    and paid its own round trip. Elsewhere the statements run in turn. ``meanwhile`` (no
    database) runs while PostgreSQL works, and so does the spare work offered to this batch
    (the next batch of a stream, run_batches): this is the batch's longest statement."""
    spare = spare_work()

    def work() -> None:
        meanwhile()
        if spare is not None:
            spare()

    if connection.vendor != "postgresql" or not order_ids:
        work()
        add_new_orders_to_stats(order_ids)
        add_orders(order_ids)
        return
    execute_sql(_new_orders_sql(business_zone().key), [sorted(order_ids), True, True, True, True], meanwhile=work)


@functools.cache
def _new_orders_sql(zone: str) -> str:
    """The fused statement of :func:`_count_new_orders` (per business zone, as the rollups')."""
    orders = f"FROM {connection.ops.quote_name(Order._meta.db_table)} o "
    parts = [*(sql.format(ids="IS NOT NULL") for sql in stats.add_statements()),
             *(sql.format(where="o.id IS NOT NULL") for sql in rollups.add_statements())]
    if any(part.count(orders) != 1 for part in parts):
        raise ValueError("each statement of new orders must read the orders once")
    parts = [part.replace(orders, "FROM batch o ") for part in parts]
    writes = ", ".join(f"w{i} AS ({part})" for i, part in enumerate(parts[:-1]))
    return f"WITH batch AS MATERIALIZED (SELECT * {orders}WHERE o.id = ANY(%s::bigint[])), {writes} {parts[-1]}"


def _refunded(rows: list[_OrderRow]) -> list[Decimal]:
    return [sum((r["amount"] for r in p.refunds), ZERO) for p in rows]


def _insert_orders(rows: list[_OrderRow]) -> list[int]:
    """Insert new orders as plain tuples (the ingestion hot path); returns their ids in order."""
    now = timezone.now()
    tuples = [
        (p.values["channel_id"], p.external_id, p.member_id, *(p.values[f] for f in ORDER_FIELDS), refunded, now, now)
        for p, refunded in zip(rows, _refunded(rows), strict=True)
    ]
    if connection.features.can_return_rows_from_bulk_insert:
        return insert_rows(Order, ORDER_COLUMNS, tuples, returning=True)
    insert_rows(Order, ORDER_COLUMNS, tuples)  # MySQL: no RETURNING, fetch ids by natural key
    ids: dict[tuple[int, str], int] = {}
    by_channel = defaultdict(list)
    for p in rows:
        by_channel[p.values["channel_id"]].append(p.external_id)
    for channel_id, external_ids in by_channel.items():
        for chunk in chunked(external_ids, 1000):
            for external_id, pk in Order.objects.filter(channel_id=channel_id, external_id__in=chunk).values_list(
                    "external_id", "pk"):
                ids[(channel_id, external_id)] = pk
    return [ids[(p.values["channel_id"], p.external_id)] for p in rows]


def _apply_updates(updated: list[tuple[Order, _OrderRow]], products: dict[str, int],
                   result: IngestResult) -> set[int | None]:
    """Apply re-sent orders: unchanged ones are duplicates; changes update the order."""
    if not updated:
        return set()
    order_ids = [o.pk for o, _ in updated]
    current_lines = defaultdict(list)
    for line in OrderLine.objects.filter(order_id__in=order_ids).order_by("line_no"):
        current_lines[line.order_id].append(
            {"line_no": line.line_no, "sku": line.sku, "name": line.name, "quantity": line.quantity,
             "unit_price": line.unit_price, "amount": line.amount})
    current_refunds = defaultdict(dict)
    for refund in Refund.objects.filter(order_id__in=order_ids):
        current_refunds[refund.order_id][refund.external_id] = refund
    touched: set[int | None] = set()
    now = timezone.now()
    changed_orders, replace_lines, new_refunds, changed_refunds = [], [], [], []
    for order, p in updated:
        changed = [f for f in ORDER_FIELDS if getattr(order, f) != p.values[f]]
        before_member = order.member_id
        if order.member_id is None and p.member_id is not None:
            order.member_id = p.member_id
            changed.append("member_id")
        for f in changed:
            if f != "member_id":
                setattr(order, f, p.values[f])
        lines = sorted(p.lines, key=lambda line: line["line_no"])
        lines_changed = bool(p.lines) and lines != current_lines[order.pk]
        refunds = current_refunds[order.pk]
        added, amended = [], []
        for r in p.refunds:
            old = refunds.get(r["external_id"])
            if old is None:
                added.append(Refund(order_id=order.pk, **r))
            elif old.amount != r["amount"] or old.reason != r["reason"]:
                old.amount, old.reason = r["amount"], r["reason"]
                amended.append(old)
        resent = {r["external_id"] for r in p.refunds}
        refunded = sum((r["amount"] for r in p.refunds), ZERO) + sum(
            (old.amount for ext, old in refunds.items() if ext not in resent), ZERO)
        if refunded > order.paid_amount:
            result.reject(p.row, _refund_error(order.paid_amount), p.raw)
            continue
        new_refunds.extend(added)
        changed_refunds.extend(amended)
        if lines_changed:
            replace_lines.append(order.pk)
        if refunded != order.refunded_amount:
            order.refunded_amount = refunded
            changed.append("refunded_amount")
        if changed or lines_changed or added or amended:
            order.updated_at = now
            changed_orders.append((order, p))
            touched.update({before_member, order.member_id})
            result.updated += 1
        else:
            result.duplicates += 1
        result.accept(p.row, order.pk)
    if changed_orders:
        with orders_changing([o.pk for o, _ in changed_orders]):  # the sales rollups follow
            Order.objects.bulk_update([o for o, _ in changed_orders],
                                      [*ORDER_FIELDS, "member_id", "refunded_amount", "updated_at"], batch_size=500)
    if replace_lines:
        OrderLine.objects.filter(order_id__in=replace_lines).delete()
        OrderLine.objects.bulk_create([
            OrderLine(order_id=o.pk, product_id=products.get(line["sku"]), **line)
            for o, p in changed_orders if o.pk in set(replace_lines) for line in p.lines
        ], batch_size=2000)
    Refund.objects.bulk_create(new_refunds, batch_size=1000)
    if changed_refunds:
        Refund.objects.bulk_update(changed_refunds, ["amount", "reason"], batch_size=500)
    return touched


def bind_orders_to_identities(*, identities: Sequence[tuple[Ident, int]]) -> int:
    """Bind orders waiting for a buyer identity to the member that identity now belongs to.

    Called whenever identities are linked to members; refreshes the stats of the members that
    gained orders and gives them the points those orders earn (as if the orders had arrived
    now with their member). Returns the number of orders bound.
    """
    by_kind: dict[str, dict[str, int]] = defaultdict(dict)
    for ident, member_id in identities:
        by_kind[ident.kind][ident.value] = member_id
    waiting: list[tuple[int, int, int | None]] = []  # (order, member, store), the orders locked
    for kind, owners in by_kind.items():
        for chunk in chunked(sorted(owners), 500):
            waiting.extend((pk, owners[value], store_id) for pk, value, store_id in Order.objects.select_for_update()
                           .filter(member__isnull=True, buyer_kind=kind, buyer_value__in=chunk)
                           .order_by("pk").values_list("pk", "buyer_value", "store_id"))
    if not waiting:
        return 0
    # The points accounts first (the lock order: accounts, then the kept totals), as order batches.
    start_earning(hold=[(member_id, store_id) for _pk, member_id, store_id in waiting]).finish()
    waiting.sort()
    for chunk in chunked(waiting, 500):
        ids, owned = [], defaultdict(list)
        for pk, member_id, _s in chunk:
            ids.append(pk)
            owned[member_id].append(pk)
        with orders_changing(ids):  # members' share of the sales rollups
            Order.objects.filter(pk__in=ids).update(member_id=Case(
                *[When(pk__in=pks, then=Value(member_id)) for member_id, pks in sorted(owned.items())],
                output_field=IntegerField()))
    refresh_member_stats({member_id for _pk, member_id, _s in waiting})
    earn_for_orders(order_ids=[pk for pk, _m, _s in waiting])  # 积分 for the orders now known to be theirs
    return len(waiting)
