"""The operator's dashboard and the cohort table, each against a hand-written SQL floor.

    .venv/bin/python bench/analytics.py --members 20000 --orders 100000 [--events N] [--runs 5] [--keep|--reuse]

Runs on whatever database ``SIYU_DATABASE_URL`` names, in a throwaway test database (created,
migrated, dropped unless ``--keep``), with the data ``bench/segments.py`` generates (the same
generator, the same rows for the same arguments), and prints JSON:

1. **dashboard**: ``siyu.console.dashboard.dashboard_context`` for a superuser and the 30 business
   days before ``now`` — every figure the console's home shows (KPIs for the period and the
   previous one, the daily trend, the channel mix, a 6-month cohort heat map, the RFM grid),
   formatting included — the first (cold) run and the median of the warm ones; against the floor:
   the same figures by hand-written SQL, one statement per figure group, no ORM (checked equal);
2. **cohorts**: ``cohort_retention`` over the 12 months before ``now`` against its floor (two
   statements: cohort sizes, distinct buyers per cohort × month; checked equal);
3. the ratios service / floor and the row counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from segments import Dialect, Loader, analyze, log, server_settings  # bench/segments.py: the data generator
from throwaway import throwaway_database  # bench/throwaway.py: the database a run works in

#: The dashboard's period: the 30 business days before ``NOW`` (2026-10-25 … 2026-11-23).
LAST_DAY = dt.date(2026, 11, 23)
FIRST_DAY = LAST_DAY - dt.timedelta(days=29)
COHORT_FIRST = dt.date(2025, 12, 1)
OFFSET = 8 * 3600  # Asia/Shanghai


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=None, help="behaviour events (default: 1 per member)")
    parser.add_argument("--runs", type=int, default=5, help="runs each (the first is the cold one)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fast-load", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse the database a --keep run left")
    args = parser.parse_args(argv)
    if args.events is None:
        args.events = args.members
    return args


def query(sql: str, params=()) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def measure(fn, runs: int) -> tuple[object, dict]:
    times, result = [], None
    for _n in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    warm = times[1:] or times
    return result, {"cold_s": round(times[0], 3), "warm_median_s": round(statistics.median(warm), 3),
                    "warm_min_s": round(min(warm), 3)}


# -- the floor ---------------------------------------------------------------------------------
class Floor:
    """The dashboard's figures in plain SQL for one vendor."""

    def __init__(self, vendor: str):
        from siyu.analytics.models import MemberRfm
        from siyu.commerce.models import Channel, MemberStats, Order
        from siyu.members.models import Member

        self.vendor = vendor
        self.o, self.m = Order._meta.db_table, Member._meta.db_table
        self.c, self.s, self.r = Channel._meta.db_table, MemberStats._meta.db_table, MemberRfm._meta.db_table

    def part(self, kind: str, column: str) -> str:
        if self.vendor == "postgresql":
            fmt = {"day": "YYYY-MM-DD", "month": "YYYY-MM"}[kind]
            return f"to_char({column} AT TIME ZONE 'Asia/Shanghai', '{fmt}')"
        if self.vendor == "mysql":
            fmt = {"day": "%%Y-%%m-%%d", "month": "%%Y-%%m"}[kind]
            return f"DATE_FORMAT({column} + INTERVAL {OFFSET} SECOND, '{fmt}')"
        return (f"date({column}, '+{OFFSET} seconds')" if kind == "day"
                else f"strftime('%%Y-%%m', {column}, '+{OFFSET} seconds')")

    def plus_days(self, column: str, days: int) -> str:
        if self.vendor == "postgresql":
            return f"{column} + INTERVAL '{days} days'"
        if self.vendor == "mysql":
            return f"{column} + INTERVAL {days} DAY"
        return f"datetime({column}, '+{days} days')"

    def seconds(self, first: str, last: str) -> str:
        if self.vendor == "postgresql":
            return f"EXTRACT(EPOCH FROM {last} - {first})"
        if self.vendor == "mysql":
            return f"TIMESTAMPDIFF(MICROSECOND, {first}, {last}) / 1000000"
        return f"((julianday({last}) - julianday({first})) * 86400)"

    @staticmethod
    def bounds(first: dt.date, end: dt.date):
        """The period's instants as the database's driver takes them (UTC)."""
        from django.db import connection

        from siyu.core.time import start_of_day

        return tuple(connection.ops.adapt_datetimefield_value(start_of_day(day).astimezone(dt.UTC))
                     for day in (first, end))

    def period(self, first: dt.date, end: dt.date) -> dict:
        lo, hi = self.bounds(first, end)
        o, m = self.o, self.m
        net = "(paid_amount - refunded_amount)"
        sales = query(
            f"SELECT COUNT(*), COUNT(member_id), COALESCE(SUM({net}), 0), "
            f"COALESCE(SUM(CASE WHEN member_id IS NOT NULL THEN {net} END), 0), COUNT(DISTINCT member_id), "
            f"COALESCE(SUM(CASE WHEN member_id IS NOT NULL THEN item_count END), 0) "
            f"FROM {o} WHERE is_counted AND ordered_at >= %s AND ordered_at < %s", [lo, hi])[0]
        new = query(
            f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM {o} x WHERE x.member_id = mm.id "
            f"AND x.is_counted AND x.ordered_at >= mm.joined_at AND x.ordered_at < {self.plus_days('mm.joined_at', 30)}"
            f") THEN 1 ELSE 0 END), 0) FROM {m} mm WHERE mm.status IN ('active', 'frozen') "
            f"AND mm.joined_at >= %s AND mm.joined_at < %s", [lo, hi])[0]
        again = query(
            f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN n >= 2 THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN n >= 2 THEN n - 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN n >= 2 THEN {self.seconds('a', 'b')} ELSE 0 END), 0) FROM ("
            f"SELECT member_id, COUNT(*) AS n, MIN(ordered_at) AS a, MAX(ordered_at) AS b FROM {o} "
            f"WHERE is_counted AND ordered_at >= %s AND ordered_at < %s AND member_id IS NOT NULL "
            f"GROUP BY member_id) t", [lo, hi])[0]
        return {"orders": sales[0], "member_orders": sales[1], "amount": Decimal(sales[2]).quantize(Decimal("0.01")),
                "member_amount": Decimal(sales[3]).quantize(Decimal("0.01")), "active": sales[4], "items": sales[5],
                "new": new[0], "converted": new[1], "buyers": again[0], "repeat": again[1]}

    def dashboard(self) -> dict:
        end = LAST_DAY + dt.timedelta(days=1)
        now = self.period(FIRST_DAY, end)
        before = self.period(FIRST_DAY - dt.timedelta(days=30), FIRST_DAY)
        lo, hi = self.bounds(FIRST_DAY, end)
        net = "(paid_amount - refunded_amount)"
        flag = "CASE WHEN {} THEN 1 ELSE 0 END"
        reach = "is_wecom_friend OR in_group OR follows_oa OR mini_program_authorized"
        online = query(f"SELECT COUNT(*), SUM({flag.format(reach)}), SUM({flag.format('is_wecom_friend')}), "
                       f"SUM({flag.format('in_group')}), SUM({flag.format('follows_oa')}), "
                       f"SUM({flag.format('mini_program_authorized')}) FROM {self.m} "
                       f"WHERE status IN ('active', 'frozen')")[0]
        trend = query(f"SELECT {self.part('day', 'ordered_at')} AS d, COUNT(*), COUNT(member_id), SUM({net}), "
                      f"SUM(CASE WHEN member_id IS NOT NULL THEN {net} END) FROM {self.o} "
                      f"WHERE is_counted AND ordered_at >= %s AND ordered_at < %s GROUP BY d", [lo, hi])
        channels = query(f"SELECT c.code, c.name, t.n, t.mn, t.amount FROM (SELECT channel_id, COUNT(*) AS n, "
                         f"COUNT(member_id) AS mn, SUM({net}) AS amount FROM {self.o} WHERE is_counted "
                         f"AND ordered_at >= %s AND ordered_at < %s GROUP BY channel_id) t "
                         f"JOIN {self.c} c ON c.id = t.channel_id", [lo, hi])
        rfm = query(f"SELECT brand_id, rfm_class, COUNT(*) FROM {self.r} GROUP BY brand_id, rfm_class")
        cohorts = self.cohorts(dt.date(2026, 6, 1))
        return {"now": now, "before": before, "online": online, "days": len(trend), "channels": len(channels),
                "rfm": rfm, "cohorts": cohorts}

    def cohorts(self, first_month: dt.date) -> dict:
        lo, hi = self.bounds(first_month, dt.date(2026, 12, 1))
        sizes = query(f"SELECT {self.part('month', 'joined_at')} AS k, COUNT(*) FROM {self.m} "
                      f"WHERE status IN ('active', 'frozen') AND joined_at >= %s AND joined_at < %s GROUP BY k",
                      [lo, hi])
        pairs = query(f"SELECT {self.part('month', 'm.joined_at')} AS k, {self.part('month', 'o.ordered_at')} AS t, "
                      f"COUNT(DISTINCT o.member_id) FROM {self.o} o JOIN {self.m} m ON m.id = o.member_id "
                      f"WHERE o.is_counted AND m.status IN ('active', 'frozen') AND m.joined_at >= %s "
                      f"AND m.joined_at < %s AND o.ordered_at >= %s GROUP BY k, t", [lo, hi, lo])
        return {"sizes": dict(sizes), "pairs": {(k, t): n for k, t, n in pairs}}


# -- the service ---------------------------------------------------------------------------------
def service_dashboard(user) -> dict:
    from django.test import RequestFactory

    from siyu.console.dashboard import dashboard_context

    request = RequestFactory().get("/console/", {"start": FIRST_DAY.isoformat(), "end": LAST_DAY.isoformat()})
    request.user = user
    return dashboard_context(request)


def service_cohorts() -> dict:
    from siyu.analytics.metrics import cohort_retention, resolve_filters

    return cohort_retention(resolve_filters(start=COHORT_FIRST, end=LAST_DAY), today=LAST_DAY)


def check_dashboard(context: dict, floor: dict) -> dict:
    """The service's raw figures against the floor's."""
    kpis = {k["key"]: k["raw"] for k in context["kpis"]}
    now = floor["now"]
    checks = {
        "amount": kpis["amount"] == str(now["amount"]),
        "active_members": kpis["active_members"] == str(now["active"]),
        "new_members": kpis["new_members"] == str(now["new"]),
        "channels": len(context["channels"]) == floor["channels"],
        "cohort_sizes": all(floor["cohorts"]["sizes"].get(row["cohort"], 0) == row["members"]
                            for row in context["cohorts"]["cohorts"]),
    }
    return {"match": all(checks.values()), **checks}


def check_cohorts(table: dict, floor: dict) -> bool:
    def index(key: str) -> int:
        return int(key[:4]) * 12 + int(key[5:7]) - 1
    for row in table["cohorts"]:
        if floor["sizes"].get(row["cohort"], 0) != row["members"]:
            return False
        for k, n in enumerate(row["buyers"]):
            month = index(row["cohort"]) + k
            key = f"{month // 12}-{month % 12 + 1:02d}"
            if floor["pairs"].get((row["cohort"], key), 0) != n:
                return False
    return True


def main(argv=None) -> dict:
    args = parse_args(argv)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    with throwaway_database("analytics", keep=args.keep, reuse=args.reuse):
        from siyu.commerce.models import Order
        from siyu.members.models import Member

        if args.reuse and Member.objects.exists():
            load = {"reused": True}
        else:
            load = Loader(args, Dialect(connection.vendor, args.seed)).run()
            # the loader writes the orders by COPY, past ingestion: build the rollups it keeps
            from siyu.commerce.rollups import rebuild_rollups

            started = time.perf_counter()
            rebuild_rollups(progress=lambda done, total: log(f"rollups: {done}/{total} months"))
            load["rollups"] = round(time.perf_counter() - started, 1)
            analyze()  # as autovacuum would, for the new rows
        user = get_user_model().objects.filter(username="bench").first() or \
            get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-pw-1")
        floor = Floor(connection.vendor)
        log("dashboard …")
        context, service = measure(lambda: service_dashboard(user), args.runs)
        floor_result, floor_time = measure(floor.dashboard, args.runs)
        log("cohorts …")
        table, cohort_service = measure(service_cohorts, args.runs)
        cohort_floor_result, cohort_floor = measure(lambda: floor.cohorts(COHORT_FIRST), args.runs)
        report = {
            "bench": "analytics",
            "database": connection.vendor,
            "database_version": ".".join(map(str, connection.get_database_version())),
            "members": Member.objects.count(), "orders": Order.objects.count(), "seed": args.seed,
            "server": server_settings(),
            "period": [FIRST_DAY.isoformat(), LAST_DAY.isoformat()],
            "load_seconds": load,
            "dashboard": {"service": service, "floor": floor_time,
                          "ratio": round(service["warm_median_s"] / floor_time["warm_median_s"], 2),
                          "check": check_dashboard(context, floor_result)},
            "cohorts": {"months": len(table["cohorts"]), "service": cohort_service, "floor": cohort_floor,
                        "ratio": round(cohort_service["warm_median_s"] / cohort_floor["warm_median_s"], 2),
                        "check": check_cohorts(table, cohort_floor_result)},
            "loadavg": os.getloadavg(),
        }
    print(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    return report


if __name__ == "__main__":
    main()
