"""Order ingestion throughput: ``record_order_batches`` and ``record_orders`` against the raw SQL floor.

    .venv/bin/python bench/ingest.py --members 20000 --orders 100000 [--lines-per-order 3] [--batch 1000]

Runs on whatever database ``SIYU_DATABASE_URL`` names, in a throwaway test database (created,
migrated, dropped), and prints JSON: order lines per second through the service (members
created first with ``upsert_members``, buyers named by identity so resolution runs, member stats
maintained; the orders sent as one stream of batches, then again one call per batch), the same
orders and lines written by plain ``executemany`` INSERTs through the same connection with no
domain logic (the floor), and the ratio service / floor.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import gc
import io
import json
import os
import pstats
import random
import re
import sys
import time
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throwaway import throwaway_database  # bench/throwaway.py: the database a run works in


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--lines-per-order", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000, help="rows per service call and per floor transaction")
    parser.add_argument("--channels", type=int, default=12)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the service run into FILE (pstats format) "
                                                          "and print its top functions to stderr")
    parser.add_argument("--sql-profile", action="store_true",
                        help="time the service's SQL statements by shape and print the top ones to stderr")
    parser.add_argument("--floor-methods", default="executemany",
                        help="comma-separated: executemany (one parameterised INSERT per row, batched by the "
                             "driver), multirow (INSERT … VALUES (…), (…) of up to 30,000 parameters); the "
                             "fastest is the floor")
    parser.add_argument("--server-side-binding", action="store_true",
                        help="PostgreSQL what-if: run with psycopg server-side binding "
                             "(DATABASES OPTIONS server_side_binding) instead of Django's client-side default")
    parser.add_argument("--calls", choices=["both", "stream", "batch"], default="both",
                        help="stream: the orders through record_order_batches, as siyu import sends a file "
                             "(each batch parsed while the one before is written); batch: one record_orders "
                             "call per batch, as API requests come; both (the default): the stream is the "
                             "service figure, then the orders again one call per batch (service_per_call)")
    parser.add_argument("--skip-floor", action="store_true", help="measure the service only")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- data ------------------------------------------------------------------------------------
def make_data(args, rng: random.Random):
    """Members (raw rows) and orders (raw rows as the API would receive them)."""
    phones = rng.sample(range(10**8), args.members)
    members = [{"member_code": f"B{i:09d}", "phone": f"139{phones[i]:08d}", "unionid": f"ou_{i:024d}",
                "name": f"会员{i}"} for i in range(args.members)]
    zone = dt.timezone(dt.timedelta(hours=8))
    start = dt.datetime(2024, 1, 1, tzinfo=zone)
    prices = [Decimal(rng.randrange(990, 99_900)) / 100 for _ in range(args.products)]
    orders = []
    for n in range(args.orders):
        m = rng.randrange(args.members)
        buyer = f"phone:{members[m]['phone']}" if n % 2 else f"unionid:{members[m]['unionid']}"
        lines, total = [], Decimal(0)
        for line_no in range(1, args.lines_per_order + 1):
            p = rng.randrange(args.products)
            quantity = 1 + (rng.random() < 0.2)
            amount = prices[p] * quantity
            total += amount
            lines.append({"line_no": line_no, "sku": f"SKU-{p:05d}", "quantity": quantity,
                          "unit_price": str(prices[p]), "amount": str(amount)})
        at = start + dt.timedelta(seconds=rng.randrange(2 * 365 * 86400))
        orders.append({"channel": f"ch-{n % args.channels:02d}", "external_id": f"E{n:010d}", "buyer": buyer,
                       "status": "completed", "paid_amount": str(total), "total_amount": str(total),
                       "ordered_at": at.isoformat(), "paid_at": at.isoformat(), "lines": lines})
    return members, orders


def setup_reference(args) -> None:
    from siyu.commerce.models import Channel, ChannelKind, Product
    from siyu.org.models import Brand, Group, Store

    group = Group.objects.create(code="bench", name="Bench")
    brand = Brand.objects.create(group=group, code="bench", name="Bench")
    for c in range(args.channels):
        store = Store.objects.create(brand=brand, code=f"st-{c:02d}", name=f"Store {c}")
        Channel.objects.create(code=f"ch-{c:02d}", name=f"Channel {c}", kind=ChannelKind.STORE, store=store)
    Product.objects.bulk_create([Product(sku=f"SKU-{p:05d}", name=f"Product {p}") for p in range(args.products)])


# -- service ---------------------------------------------------------------------------------
class SqlTimer:
    """A Django execute wrapper summing time and calls per statement shape."""

    def __init__(self):
        self.stats: dict[str, list] = {}

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = re.sub(r"\s+", " ", re.sub(r"\d+", "N", sql))
            shape = re.sub(r"(N|%s|\?)(, *(N|%s|\?))+", "…", shape)[:160]
            entry = self.stats.setdefault(shape, [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    def report(self, top: int = 15) -> list[dict]:
        rows = sorted(self.stats.items(), key=lambda kv: -kv[1][1])[:top]
        return [{"sql": shape, "calls": calls, "seconds": round(seconds, 2)} for shape, (calls, seconds) in rows]


def run_members(args, members) -> dict:
    from siyu.members.services import upsert_members

    started = time.perf_counter()
    for i in range(0, len(members), args.batch):
        result = upsert_members(rows=members[i:i + args.batch], source="bench")
        assert not result.rejected, result.rejected[:3]
    member_seconds = time.perf_counter() - started
    log(f"members: {len(members)} in {member_seconds:.1f}s")
    return {"member_seconds": round(member_seconds, 2), "members_per_s": round(len(members) / member_seconds)}


def run_orders(args, orders, *, stream: bool) -> dict:
    """The orders through the service: as one stream (``record_order_batches``, as ``siyu import``
    sends a file) or one ``record_orders`` call per batch (as API requests come)."""
    from django.db import connection

    from siyu.commerce.services import record_order_batches, record_orders

    profiler = cProfile.Profile() if args.profile else None
    timer = SqlTimer() if args.sql_profile else None
    checkpoint()
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    with connection.execute_wrapper(timer) if timer else contextlib.nullcontext():
        batches = [orders[i:i + args.batch] for i in range(0, len(orders), args.batch)]
        results = (record_order_batches(batches=batches, source="bench") if stream
                   else (record_orders(rows=rows, source="bench") for rows in batches))
        for n, result in enumerate(results):
            assert not result.rejected, result.rejected[:3]
            if n % 20 == 0:
                log(f"orders: {(n + 1) * args.batch}/{len(orders)}")
    if profiler:
        profiler.disable()
    order_seconds = time.perf_counter() - started
    if timer:
        log(json.dumps(timer.report(), ensure_ascii=False, indent=1))
    if profiler:
        profiler.dump_stats(args.profile)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        log(out.getvalue())
    lines = len(orders) * args.lines_per_order
    return {
        "seconds": round(order_seconds, 2),
        "orders_per_s": round(len(orders) / order_seconds),
        "lines_per_s": round(lines / order_seconds),
    }


def counts() -> dict:
    from siyu.commerce.models import MemberStats, Order, OrderLine
    from siyu.members.models import Identity, Member

    return {"members": Member.objects.count(), "identities": Identity.objects.count(),
            "orders": Order.objects.count(), "order_lines": OrderLine.objects.count(),
            "orders_bound": Order.objects.filter(member__isnull=False).count(),
            "member_stats": MemberStats.objects.filter(order_count__gt=0).count()}


# -- floor -----------------------------------------------------------------------------------
def checkpoint() -> None:
    """PostgreSQL: write out the dirty pages the previous pass left, so that each timed pass starts
    from the same state and does not pay for its predecessor's checkpoint (a pass of 100,000
    orders dirties most of ``shared_buffers``). Skipped where the role may not (PostgreSQL 15 wants
    a superuser or ``pg_checkpoint``); other databases flush on their own terms."""
    from django.db import DatabaseError, connection, transaction

    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError as error:
        log(f"no checkpoint before the pass: {error}")


def flush_orders() -> None:
    """Empty the order tables and everything ingestion derives from orders (stats, sales rollups,
    lifecycle stages and their history and tags), so that a second pass starts where the first did."""
    from django.core.management.color import no_style
    from django.db import connection

    from siyu.analytics.models import MemberLifecycle, MemberRfm, ModelChange
    from siyu.commerce.models import (
        DailySales,
        MemberChannelStats,
        MemberMonth,
        MemberStats,
        Order,
        OrderLine,
        Refund,
    )
    from siyu.tags.models import MemberTag, MemberTagChange

    tables = [m._meta.db_table for m in (OrderLine, Refund, MemberChannelStats, MemberStats, Order, DailySales,
                                         MemberMonth, MemberLifecycle, MemberRfm, ModelChange, MemberTag,
                                         MemberTagChange)]
    connection.ops.execute_sql_flush(connection.ops.sql_flush(no_style(), tables, allow_cascade=True))
    # The service's planner-statistics bookkeeping (core.db.note_bulk_write) starts over too, as on a
    # fresh database: otherwise it would wait for the first pass's table sizes before analysing again.
    from siyu.core import db

    db._written.clear()
    db._threshold.clear()


def floor_rows(args, orders, member_of: dict, channel_of: dict, store_of: dict, product_of: dict):
    """The same orders and lines as plain tuples (values already resolved: no domain logic)."""
    from django.db import connection

    from siyu.core.rows import parse_moment

    adapt = connection.ops.adapt_datetimefield_value
    now = adapt(dt.datetime.now(dt.UTC))
    order_rows, line_rows = [], []
    for number, o in enumerate(orders, start=1):
        kind, value = o["buyer"].split(":", 1)
        at = adapt(parse_moment(o["ordered_at"]))
        channel = channel_of[o["channel"]]
        order_rows.append((number, channel, o["external_id"], member_of[o["buyer"]], kind, value, o["status"], True,
                           Decimal(o["total_amount"]), Decimal(o["paid_amount"]), Decimal(0),
                           sum(line["quantity"] for line in o["lines"]), at, at, store_of[channel], None, now, now))
        line_rows.append([(number, line["line_no"], product_of[line["sku"]], line["sku"], "", line["quantity"],
                           Decimal(line["unit_price"]), Decimal(line["amount"])) for line in o["lines"]])
    return order_rows, line_rows


def run_floor(args, orders) -> dict:
    from django.db import connection, transaction

    from siyu.commerce.models import Channel, Order, OrderLine, Product
    from siyu.members.models import Identity

    member_of = {f"{k}:{v}": m for k, v, m in Identity.objects.values_list("kind", "value", "member_id")}
    channel_of = dict(Channel.objects.values_list("code", "pk"))
    store_of = dict(Channel.objects.values_list("pk", "store_id"))
    product_of = dict(Product.objects.values_list("sku", "pk"))
    order_rows, line_rows = floor_rows(args, orders, member_of, channel_of, store_of, product_of)

    quote = connection.ops.quote_name

    def floor_cursor():
        """A plain DB-API cursor on the same connection. On PostgreSQL a server-side-binding
        psycopg cursor: Django's default ClientCursor interpolates every parameter into the SQL
        text, which would make a slow floor."""
        if connection.vendor == "postgresql":
            import psycopg

            connection.ensure_connection()
            return psycopg.Cursor(connection.connection)
        return connection.cursor()

    def insert_sql(model, fields, rows=1):
        columns = [model._meta.get_field(f).column for f in fields]
        one = f"({', '.join(['%s'] * len(columns))})"
        return (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "
                f"VALUES {', '.join([one] * rows)}")

    order_fields = ["id", "channel", "external_id", "member", "buyer_kind", "buyer_value", "status", "is_counted",
                    "total_amount", "paid_amount", "refunded_amount", "item_count", "ordered_at", "paid_at", "store",
                    "guide", "created_at", "updated_at"]
    line_fields = ["order", "line_no", "product", "sku", "name", "quantity", "unit_price", "amount"]
    lines = sum(len(group) for group in line_rows)
    results = {}
    for method in args.floor_methods.split(","):
        flush_orders()
        checkpoint()
        started = time.perf_counter()
        for i in range(0, len(order_rows), args.batch):
            batch_orders = order_rows[i:i + args.batch]
            batch_lines = [line for group in line_rows[i:i + args.batch] for line in group]
            with transaction.atomic(), floor_cursor() as cursor:
                if method == "executemany":
                    cursor.executemany(insert_sql(Order, order_fields), batch_orders)
                    cursor.executemany(insert_sql(OrderLine, line_fields), batch_lines)
                    continue
                # multi-row INSERT … VALUES (…), (…): at most ~30,000 parameters per statement
                for model, fields, rows in ((Order, order_fields, batch_orders), (OrderLine, line_fields, batch_lines)):
                    step = 30_000 // len(fields)
                    for j in range(0, len(rows), step):
                        part = rows[j:j + step]
                        cursor.execute(insert_sql(model, fields, len(part)), [v for row in part for v in row])
        seconds = time.perf_counter() - started
        assert Order.objects.count() == len(order_rows) and OrderLine.objects.count() == lines
        results[method] = {"seconds": round(seconds, 2), "orders_per_s": round(len(order_rows) / seconds),
                           "lines_per_s": round(lines / seconds)}
        log(f"floor {method}: {seconds:.1f}s")
    best = max(results, key=lambda m: results[m]["lines_per_s"])
    return {**results[best], "method": best, "methods": results}


# -- main ------------------------------------------------------------------------------------
def main(argv=None) -> dict:
    args = parse_args(argv)
    import django

    django.setup()
    from django.db import connection

    if args.server_side_binding and connection.vendor == "postgresql":
        connection.settings_dict.setdefault("OPTIONS", {})["server_side_binding"] = True
    with throwaway_database("ingest"):
        rng = random.Random(args.seed)
        members, orders = make_data(args, rng)
        setup_reference(args)
        gc.freeze()  # the generated rows stay to the end: no collector pass needs to scan them again
        service = run_members(args, members)
        service.update(run_orders(args, orders, stream=args.calls != "batch"))
        after_service = counts()
        per_call = None
        if args.calls == "both":
            flush_orders()
            per_call = run_orders(args, orders, stream=False)
        floor = None if args.skip_floor else run_floor(args, orders)
        report = {
            "bench": "ingest",
            "database": connection.vendor,
            "database_version": ".".join(map(str, connection.get_database_version())),
            "members": args.members,
            "orders": args.orders,
            "lines_per_order": args.lines_per_order,
            "order_lines": args.orders * args.lines_per_order,
            "batch": args.batch,
            "server_side_binding": bool(connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")),
            "calls": args.calls,
            "service": service,
            "service_per_call": per_call,
            "floor": floor,
            "ratio": round(service["lines_per_s"] / floor["lines_per_s"], 3) if floor else None,
            "counts": after_service,
        }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return report


if __name__ == "__main__":
    main()
