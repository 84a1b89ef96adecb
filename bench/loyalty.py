"""Loyalty: points earned during order ingestion, and the nightly tier re-evaluation, against raw floors.

    .venv/bin/python bench/loyalty.py --members 20000 --orders 100000 [--batch 1000] [--repeat 3]

Runs on whatever database ``SIYU_DATABASE_URL`` names, in a throwaway test database
(``test_<name>_loyalty``: created, migrated, dropped), and prints JSON:

1. **ingestion**: the orders of ``bench/ingest.py`` (the same generator, dates moved to the two
   years before now) through ``record_orders`` with loyalty *off* (no active program), then again
   on empty order tables with loyalty *on* (one brand program: three tiers with points
   multipliers, a weekly member day, ten excluded products, year-end expiry); order lines/s of
   each and the overhead of loyalty. With ``--repeat N`` the two passes alternate N times (each
   pair from empty order and ledger tables, the program switched off and on) and the pair with
   the median overhead is reported, every pair listed in ``pairs`` as ``[off s, on s, earning s,
   overhead %]``: one pass varies by a second or two between runs on a busy machine.
   ``earn_share_pct`` (median over the pairs) is the time earning (``start_earning`` and its
   ``finish()``; ``earn_seconds``) against the rest of the same loyalty-on pass: it does not move
   with the pass-to-pass variation of the rest of ingestion, but it leaves out what loyalty costs
   outside earning (its part of the commits), so ``overhead_pct`` stays the figure the goal is
   measured by. ``earn_work_seconds`` is the time of its ``work()``, which runs while the kept
   totals are written and is not in ``earn_seconds``. ``earn_cpu_seconds`` (in ``on``) is this
   process's CPU time in all three: the Python part of earning, which the database's share of
   the machine barely moves.
   **Floor**: the same orders and lines plus the ledger rows
   the service wrote (entries with their lots, new accounts and balance updates) by plain ``executemany``
   per batch with nothing resolved or computed; also the orders alone (``floor_orders_only``),
   so ``floor_overhead_pct`` is what the ledger rows cost at the least.
2. **tiers**: ``evaluate_tiers(program=…, now=…)`` over every member 31 days later (past the
   bench tiers' 30-day retention, so every member ends on the tier they qualify for), then again
   (nothing changes). **Floor**: one hand-written ``CREATE TEMPORARY TABLE … AS SELECT`` of each
   member's figures and qualifying tier; compared member by member with what the service wrote.
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
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest  # bench/ingest.py: data, reference rows, SQL timer, floor helpers
from ingest import SqlTimer, log
from throwaway import throwaway_database  # bench/throwaway.py: the database a run works in

EXCLUDED_PRODUCTS = 10
RETENTION_DAYS = 30


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--lines-per-order", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000, help="orders per service call and per floor transaction")
    parser.add_argument("--channels", type=int, default=12)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1,
                        help="loyalty off/on pairs, alternating; the overhead reported is the median pair's")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the loyalty-on ingestion into FILE (pstats format) "
                                                          "and print its top functions to stderr")
    parser.add_argument("--sql-profile", action="store_true",
                        help="time the SQL of the loyalty-on ingestion (all of it, and of earning "
                             "alone) and of the tier evaluation by shape, top ones to stderr")
    parser.add_argument("--skip-floor", action="store_true", help="measure the services only")
    parser.add_argument("--skip-tiers", action="store_true", help="skip the tier re-evaluation")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database (to look at query plans)")
    return parser.parse_args(argv)


# -- data ------------------------------------------------------------------------------------
def make_data(args, now: dt.datetime):
    """ingest.py's members and orders, the orders moved to the two years before ``now``."""
    members, orders = ingest.make_data(args, random.Random(args.seed))
    shift = (now - dt.timedelta(days=2 * 365)) - dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    for order in orders:
        moved = (dt.datetime.fromisoformat(order["ordered_at"]) + shift).isoformat()
        order["ordered_at"] = order["paid_at"] = moved
    return members, orders


def setup_program():
    """brand ``bench``'s program: 1 point per yuan, Wednesdays ×2, year-end expiry, three tiers
    (silver ×1.2, gold ×1.5), products SKU-00000…09 excluded; rolling 365-day tier window."""
    from siyu.commerce.models import Product
    from siyu.loyalty.models import (
        Benefit,
        BenefitCategory,
        BenefitKind,
        ExpiryPolicy,
        LoyaltyProgram,
        MemberDayKind,
        ProgramScope,
        PurchaseExclusion,
        Tier,
        TierRequirement,
    )
    from siyu.org.models import Brand

    brand = Brand.objects.get(code="bench")
    program = LoyaltyProgram.objects.create(
        code="bench", name="Bench", group=brand.group, scope=ProgramScope.BRAND, brand=brand,
        time_zone="Asia/Shanghai", expiry_policy=ExpiryPolicy.YEAR_END, expiry_n=1,
        member_day_kind=MemberDayKind.WEEKLY, member_day_days=[3], member_day_multiplier=Decimal(2),
        tier_window_days=365)
    Tier.objects.create(program=program, code="normal", name="普卡", rank=0, retention_days=RETENTION_DAYS)
    silver = Tier.objects.create(program=program, code="silver", name="银卡", rank=1, min_paid_amount=Decimal(3000),
                                 min_order_count=5, retention_days=RETENTION_DAYS)
    gold = Tier.objects.create(program=program, code="gold", name="金卡", rank=2, min_paid_amount=Decimal(8000),
                               min_points_earned=9000, requires=TierRequirement.ALL, retention_days=RETENTION_DAYS)
    for tier, factor in ((silver, "1.2"), (gold, "1.5")):
        Benefit.objects.create(program=program, tier=tier, category=BenefitCategory.PRODUCT,
                               kind=BenefitKind.POINTS_MULTIPLIER, name=f"×{factor}", multiplier=Decimal(factor))
    PurchaseExclusion.objects.bulk_create(
        [PurchaseExclusion(program=program, product=p) for p in Product.objects.order_by("sku")[:EXCLUDED_PRODUCTS]])
    return program


# -- ingestion -------------------------------------------------------------------------------
def ingest_orders(args, orders, *, profile: bool) -> dict:
    """``record_orders`` over ``orders`` in batches; with ``profile`` under --profile/--sql-profile.
    Also the time spent earning: in ``start_earning`` and its ``finish()`` (and ``earn_for_orders``,
    made of them), and apart, in its ``work()``, which runs while the kept totals are written."""
    from django.db import connection

    import siyu.commerce.services as commerce
    import siyu.loyalty.earning as earning_module

    earning = [0.0, 0.0, 0.0]  # wall and this process's CPU seconds earning; wall of work()
    profiler = cProfile.Profile() if profile and args.profile else None
    timer = SqlTimer() if profile and args.sql_profile else None
    earn_timer = SqlTimer() if timer else None  # the SQL of earning alone

    def timed(step, *, work=False):
        def run(*args, **kwargs):
            started, cpu = time.perf_counter(), time.process_time()
            try:
                with connection.execute_wrapper(earn_timer) if earn_timer else contextlib.nullcontext():
                    return step(*args, **kwargs)
            finally:
                earning[2 if work else 0] += time.perf_counter() - started
                earning[1] += time.process_time() - cpu
        return run

    steps = {(commerce, "start_earning"): timed(earning_module.start_earning),
             (earning_module, "start_earning"): timed(earning_module.start_earning),
             (earning_module.OrderEarning, "work"): timed(earning_module.OrderEarning.work, work=True),
             (earning_module.OrderEarning, "finish"): timed(earning_module.OrderEarning.finish)}
    originals = {place: getattr(*place) for place in steps}
    for (owner, name), step in steps.items():
        setattr(owner, name, step)
    ingest.checkpoint()
    started = time.perf_counter()
    try:
        if profiler:
            profiler.enable()
        with connection.execute_wrapper(timer) if timer else contextlib.nullcontext():
            for i in range(0, len(orders), args.batch):
                result = commerce.record_orders(rows=orders[i:i + args.batch], source="bench")
                assert not result.rejected, result.rejected[:3]
                if i // args.batch % 20 == 0:
                    log(f"orders: {i + args.batch}/{len(orders)}")
        if profiler:
            profiler.disable()
    finally:
        for (owner, name), step in originals.items():
            setattr(owner, name, step)
    seconds = time.perf_counter() - started
    if timer:
        log("SQL of the loyalty-on ingestion, by shape:")
        log(json.dumps(timer.report(), ensure_ascii=False, indent=1))
        earn_sql = sum(seconds for _calls, seconds in earn_timer.stats.values())
        log(f"SQL of earning, by shape ({earn_sql:.2f}s of {earning[0]:.2f}s earning):")
        log(json.dumps(earn_timer.report(top=25), ensure_ascii=False, indent=1))
    if profiler:
        profiler.dump_stats(args.profile)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(50)
        log(out.getvalue())
    lines = len(orders) * args.lines_per_order
    return {"seconds": round(seconds, 2), "orders_per_s": round(len(orders) / seconds),
            "lines_per_s": round(lines / seconds), "earn_seconds": round(earning[0], 2),
            "earn_cpu_seconds": round(earning[1], 2), "earn_work_seconds": round(earning[2], 2)}


def overhead(off: dict, on: dict) -> float:
    """What loyalty adds to ingestion, in percent of the loyalty-off time."""
    return round(100 * (on["seconds"] - off["seconds"]) / off["seconds"], 1)


def earn_share(on: dict) -> float:
    """Time inside earning against the rest of the same loyalty-on pass, in %."""
    return round(100 * on["earn_seconds"] / (on["seconds"] - on["earn_seconds"]), 1)


def loyalty_counts(program) -> dict:
    from django.db.models import Sum

    from siyu.loyalty.models import MemberTier, PointsAccount, PointsEntry, TierChange

    return {"entries": PointsEntry.objects.filter(program=program).count(),
            "lots": PointsEntry.objects.filter(program=program, remaining__isnull=False).count(),
            "accounts": PointsAccount.objects.filter(program=program).count(),
            "points": PointsAccount.objects.filter(program=program).aggregate(s=Sum("balance"))["s"] or 0,
            "member_tiers": MemberTier.objects.filter(program=program).count(),
            "tier_changes": TierChange.objects.filter(program=program).count()}


def flush_loyalty() -> None:
    from django.core.management.color import no_style
    from django.db import connection

    from siyu.loyalty.models import (
        MemberTier,
        PointsAccount,
        PointsAllocation,
        PointsEntry,
        TierChange,
    )

    tables = [m._meta.db_table for m in (PointsAllocation, PointsEntry, PointsAccount, MemberTier, TierChange)]
    connection.ops.execute_sql_flush(connection.ops.sql_flush(no_style(), tables, allow_cascade=True))


def ledger_rows(args, orders):
    """The entries (with their lots) and accounts the service wrote, per floor batch (by the order's position)."""
    from django.db import connection

    from siyu.commerce.models import Order
    from siyu.loyalty.models import PointsAccount, PointsEntry

    position = {ext: n for n, ext in enumerate(o["external_id"] for o in orders)}
    order_at = {pk: position[ext] for pk, ext in Order.objects.values_list("pk", "external_id")}
    adapt = connection.ops.adapt_datetimefield_value
    adapt_date = connection.ops.adapt_datefield_value
    member_of = dict(PointsAccount.objects.values_list("pk", "member_id"))
    program_of = dict(PointsAccount.objects.values_list("pk", "program_id"))
    batches = {}
    for row in PointsEntry.objects.order_by("pk").values_list(
            "pk", "program_id", "account_id", "kind", "amount", "debt_delta", "reason", "source_type", "source_id",
            "idempotency_key", "occurred_at", "business_date", "actor", "created_at", "remaining", "expires_at"):
        assert row[7] == "order", row  # the bench's orders earn and nothing else
        n = order_at[int(row[8])]
        batch = batches.setdefault(n // args.batch, {"entries": []})
        batch["entries"].append((*row[:10], adapt(row[10]), adapt_date(row[11]), row[12], adapt(row[13]), row[14],
                                 adapt(row[15])))
    return batches, member_of, program_of


def run_floor(args, orders, with_ledger) -> dict:
    """ingest.py's executemany floor, plus (``with_ledger``) the entries (with their lots) and account writes."""
    from django.db import connection, transaction
    from django.utils import timezone

    from siyu.commerce.models import Channel, Order, OrderLine, Product
    from siyu.loyalty.models import PointsAccount, PointsEntry
    from siyu.members.models import Identity

    ledger, member_of, program_of = with_ledger or ({}, {}, {})
    ingest.flush_orders()
    flush_loyalty()
    ids = {f"{k}:{v}": m for k, v, m in Identity.objects.values_list("kind", "value", "member_id")}
    channel_of = dict(Channel.objects.values_list("code", "pk"))
    store_of = dict(Channel.objects.values_list("pk", "store_id"))
    product_of = dict(Product.objects.values_list("sku", "pk"))
    order_rows, line_rows = ingest.floor_rows(args, orders, ids, channel_of, store_of, product_of)
    quote = connection.ops.quote_name

    def insert_sql(model, fields):
        columns = [model._meta.get_field(f).column for f in fields]
        return (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "
                f"VALUES ({', '.join(['%s'] * len(columns))})")

    order_sql = insert_sql(Order, ["id", "channel", "external_id", "member", "buyer_kind", "buyer_value", "status",
                                   "is_counted", "total_amount", "paid_amount", "refunded_amount", "item_count",
                                   "ordered_at", "paid_at", "store", "guide", "created_at", "updated_at"])
    line_sql = insert_sql(OrderLine, ["order", "line_no", "product", "sku", "name", "quantity", "unit_price",
                                      "amount"])
    entry_sql = insert_sql(PointsEntry, ["id", "program", "account", "kind", "amount", "debt_delta", "reason",
                                         "source_type", "source_id", "idempotency_key", "occurred_at",
                                         "business_date", "actor", "created_at", "remaining", "expires_at"])
    account_sql = insert_sql(PointsAccount, ["id", "program", "member", "balance", "debt", "tier_paid", "tier_orders",
                                             "tier_points", "tier_figures_exact", "updated_at"])
    table = quote(PointsAccount._meta.db_table)
    balance_sql = f"UPDATE {table} SET {quote('balance')} = {quote('balance')} + %s, {quote('updated_at')} = %s " \
                  f"WHERE {quote('id')} = %s"
    adapt = connection.ops.adapt_datetimefield_value
    existing = set()
    lines = sum(len(group) for group in line_rows)
    ingest.checkpoint()
    started = time.perf_counter()
    for number, i in enumerate(range(0, len(order_rows), args.batch)):
        with transaction.atomic(), floor_cursor() as cursor:
            cursor.executemany(order_sql, order_rows[i:i + args.batch])
            cursor.executemany(line_sql, [line for group in line_rows[i:i + args.batch] for line in group])
            batch = ledger.get(number)
            if not batch:
                continue
            moved = {}
            for entry in batch["entries"]:
                moved[entry[2]] = moved.get(entry[2], 0) + entry[4]
            now = adapt(timezone.now())
            new = sorted(a for a in moved if a not in existing)
            cursor.executemany(account_sql, [(a, program_of[a], member_of[a], moved[a], 0, 0, 0, 0, False, now)
                                             for a in new])
            existing.update(new)
            cursor.executemany(balance_sql, [(moved[a], now, a) for a in sorted(moved) if a not in new])
            cursor.executemany(entry_sql, batch["entries"])
    seconds = time.perf_counter() - started
    assert Order.objects.count() == len(order_rows) and OrderLine.objects.count() == lines
    return {"seconds": round(seconds, 2), "orders_per_s": round(len(order_rows) / seconds),
            "lines_per_s": round(lines / seconds)}


def floor_cursor():
    """A plain DB-API cursor; on PostgreSQL a server-side-binding psycopg cursor (see ingest.py)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        import psycopg

        connection.ensure_connection()
        return psycopg.Cursor(connection.connection)
    return connection.cursor()


# -- tiers -----------------------------------------------------------------------------------
def tier_floor_sql(program, tiers, now: dt.datetime) -> tuple[str, list]:
    """Each member's figures over the window and the highest tier they reach, into a temporary table."""
    from django.db import connection

    from siyu.commerce.models import Order
    from siyu.loyalty.models import PointsAccount, PointsEntry
    from siyu.members.models import Member
    from siyu.org.models import Store

    q = connection.ops.quote_name
    adapt = connection.ops.adapt_datetimefield_value
    since = now - dt.timedelta(days=program.tier_window_days)

    def qualifies(tier) -> str:
        tests = []
        if tier.min_paid_amount is not None:
            tests.append(f"COALESCE(o.paid, 0) >= {tier.min_paid_amount}")
        if tier.min_order_count is not None:
            tests.append(f"COALESCE(o.n, 0) >= {tier.min_order_count}")
        if tier.min_points_earned is not None:
            tests.append(f"COALESCE(p.points, 0) >= {tier.min_points_earned}")
        return f" {'AND' if tier.requires == 'all' else 'OR'} ".join(tests) or "1 = 1"

    ranked = sorted(tiers, key=lambda t: -t.rank)
    case = " ".join(f"WHEN {qualifies(t)} THEN {t.pk}" for t in ranked if t.thresholds)
    entry = next((t.pk for t in tiers if not t.thresholds), None)
    sql = f"""
        CREATE TEMPORARY TABLE bench_tier_floor AS
        SELECT m.id AS member_id, o.paid, o.n, p.points,
               CASE {case} ELSE {entry if entry is not None else 'NULL'} END AS tier_id
        FROM {q(Member._meta.db_table)} m
        LEFT JOIN (SELECT o.member_id, SUM(o.paid_amount - o.refunded_amount) AS paid,
                          SUM(CASE WHEN o.refunded_amount < o.paid_amount THEN 1 ELSE 0 END) AS n
                   FROM {q(Order._meta.db_table)} o JOIN {q(Store._meta.db_table)} s ON s.id = o.store_id
                   WHERE s.brand_id = %s AND o.is_counted = %s AND o.ordered_at >= %s AND o.ordered_at <= %s
                   GROUP BY o.member_id) o ON o.member_id = m.id
        LEFT JOIN (SELECT a.member_id, SUM(e.amount - e.debt_delta) AS points
                   FROM {q(PointsEntry._meta.db_table)} e JOIN {q(PointsAccount._meta.db_table)} a
                        ON a.id = e.account_id
                   WHERE e.program_id = %s AND e.kind IN ('earn', 'reverse')
                     AND e.occurred_at >= %s AND e.occurred_at <= %s
                   GROUP BY a.member_id) p ON p.member_id = m.id
        WHERE o.member_id IS NOT NULL OR p.member_id IS NOT NULL"""
    return sql, [program.brand_id, True, adapt(since), adapt(now), program.pk, adapt(since), adapt(now)]


def bench_tiers(args, program, now: dt.datetime) -> dict:
    from django.db import connection

    from siyu.loyalty.models import MemberTier, Tier, TierChange
    from siyu.loyalty.tiers import evaluate_tiers

    runs = []
    for run in ("first", "again"):
        before = TierChange.objects.filter(program=program).count()
        timer = SqlTimer() if args.sql_profile else None
        started = time.perf_counter()
        with connection.execute_wrapper(timer) if timer else contextlib.nullcontext():
            result = evaluate_tiers(program=program, now=now)
        seconds = time.perf_counter() - started
        if timer:
            log(f"SQL of evaluate_tiers ({run}), by shape:")
            log(json.dumps(timer.report(), ensure_ascii=False, indent=1))
        runs.append({"run": run, "seconds": round(seconds, 2), **result.as_dict(),
                     "changes": TierChange.objects.filter(program=program).count() - before})
        log(f"evaluate_tiers {run}: {seconds:.2f}s {result.as_dict()}")
    tiers = list(Tier.objects.filter(program=program).order_by("rank"))
    sql, params = tier_floor_sql(program, tiers, now)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_tier_floor")
        started = time.perf_counter()
        cursor.execute(sql, params)
        floor_seconds = time.perf_counter() - started
        cursor.execute("SELECT member_id, tier_id FROM bench_tier_floor")
        floor = dict(cursor.fetchall())
        cursor.execute("DROP TABLE bench_tier_floor")
    entry = next((t.pk for t in tiers if not t.thresholds), None)
    service = dict(MemberTier.objects.filter(program=program).values_list("member_id", "tier_id"))
    members = set(floor) | set(service)
    differ = sorted(m for m in members if service.get(m, entry) != floor.get(m, entry))
    by_tier = {t.code: sum(1 for m in members if floor.get(m, entry) == t.pk) for t in tiers}
    log(f"tier floor: {floor_seconds:.2f}s")
    return {"now": now.isoformat(), "members_with_figures": len(floor), "tiers": by_tier, "runs": runs,
            "floor_seconds": round(floor_seconds, 3),
            "ratio": round(runs[0]["seconds"] / floor_seconds, 1) if floor_seconds else None,
            "check": {"match": not differ, "differ": len(differ), "sample": differ[:5]}}


def check_ledger() -> dict:
    """``siyu loyalty_check`` on the bench's ledger: every balance, debt and lot against its entries."""
    from siyu.loyalty.ledger import verify_ledger

    accounts, mismatches = verify_ledger()
    log(f"ledger check: {accounts} accounts, {len(mismatches)} mismatches")
    return {"accounts": accounts, "mismatches": len(mismatches), "sample": [str(m) for m in mismatches[:5]]}


# -- main ------------------------------------------------------------------------------------
def main(argv=None) -> dict:
    args = parse_args(argv)
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    exit_code = 0
    with throwaway_database("loyalty", keep=args.keep):
        from siyu.members.services import upsert_members

        now = timezone.now().replace(microsecond=0)
        members, orders = make_data(args, now)
        ingest.setup_reference(args)
        gc.freeze()  # the generated rows stay to the end: no collector pass needs to scan them again
        started = time.perf_counter()
        for i in range(0, len(members), args.batch):
            assert not upsert_members(rows=members[i:i + args.batch], source="bench").rejected
        log(f"members: {len(members)} in {time.perf_counter() - started:.1f}s")

        program, pairs = None, []
        for n in range(args.repeat):
            if n:  # the next pair starts where the first did: no orders, no ledger, the program off
                ingest.flush_orders()
                flush_loyalty()
                program.is_active = False
                program.save()
            log(f"loyalty off ({n + 1}/{args.repeat}) …")
            off = ingest_orders(args, orders, profile=False)
            log(f"loyalty off: {off}")
            ingest.flush_orders()
            if program is None:
                program = setup_program()
            else:
                program.is_active = True
                program.save()
            log(f"loyalty on ({n + 1}/{args.repeat}) …")
            on = ingest_orders(args, orders, profile=n == args.repeat - 1)
            log(f"loyalty on: {on}")
            pairs.append({"off": off, "on": on, "overhead_pct": overhead(off, on)})
        median = sorted(pairs, key=lambda pair: pair["overhead_pct"])[len(pairs) // 2]
        off, on = median["off"], median["on"]
        written = loyalty_counts(program)
        log(f"written: {written}")
        tiers = None if args.skip_tiers else bench_tiers(args, program, now + dt.timedelta(days=RETENTION_DAYS + 1))
        if tiers and not tiers["check"]["match"]:
            exit_code = 1
        ledger_check = check_ledger()
        if ledger_check["mismatches"]:
            exit_code = 1
        floor = floor_orders = None
        if not args.skip_floor:
            ledger = ledger_rows(args, orders)
            floor = run_floor(args, orders, ledger)
            log(f"floor (orders + ledger): {floor['seconds']}s")
            floor_orders = run_floor(args, orders, None)
            log(f"floor (orders only): {floor_orders['seconds']}s")
        report = {
            "bench": "loyalty",
            "database": connection.vendor,
            "database_version": ".".join(map(str, connection.get_database_version())),
            "members": args.members, "orders": args.orders, "lines_per_order": args.lines_per_order,
            "order_lines": args.orders * args.lines_per_order, "batch": args.batch, "seed": args.seed,
            "ingest": {
                "off": off, "on": on,
                "overhead_pct": overhead(off, on),
                "pairs": [[pair["off"]["seconds"], pair["on"]["seconds"], pair["on"]["earn_seconds"],
                           pair["overhead_pct"]] for pair in pairs] if len(pairs) > 1 else None,
                "earn_share_pct": round(statistics.median(earn_share(pair["on"]) for pair in pairs), 1),
                "floor": floor, "floor_orders_only": floor_orders,
                "floor_overhead_pct": round(100 * (floor["seconds"] - floor_orders["seconds"])
                                            / floor_orders["seconds"], 1) if floor else None,
                "ratio": round(on["lines_per_s"] / floor["lines_per_s"], 3) if floor else None,
                "written": written,
            },
            "tiers": tiers,
            "ledger_check": ledger_check,
        }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    if exit_code:
        log("the service's tiers differ from the floor's (tiers.check) or the ledger does not add up (ledger_check)")
        sys.exit(exit_code)
    return report


if __name__ == "__main__":
    main()
