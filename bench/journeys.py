"""Journeys: actions/s through a 3-step journey for N members entering at once, against the raw floor.

    .venv/bin/python bench/journeys.py --members 100000 [--batch 1000] [--wait-days 1]

Runs on whatever database ``SIYU_DATABASE_URL`` names, in a throwaway test database
(``test_<name>_journeys``: created, migrated, dropped), and prints JSON:

1. **data**: N members reachable by SMS with marketing consent (plain SQL), three SMS templates and
   one live journey with a manual trigger: ``send → send → send`` (with ``--wait-days D``, a wait of
   D days between the sends, run as three ticks D days apart).
2. **entry**: every member enrolled at once through ``enrol_members`` (10,000 per call).
3. **service**: ``tick(now=…)`` until every enrolment has completed: each batch is claimed with
   ``SKIP LOCKED``, every send goes through ``messaging.enqueue`` (consent, reachability,
   unsubscribes, quiet hours — the bench runs at 11:00 business time — and the outbox insert), and
   the step log and enrolment positions are written. Actions/s = 3N / tick seconds. The marketing
   frequency cap is off (``SIYU_MARKETING_CAP=off``), or the third message of each member would
   be suppressed (still an outbox row; the work would be the same).
4. **floor**: the same 3N outbox rows (same columns and values, fresh dedupe keys) inserted by
   plain SQL (``COPY`` on PostgreSQL, multi-row ``INSERT`` elsewhere) in transactions of
   ``--batch`` rows, with nothing read, decided, logged or moved.

Checks: 3N outbox rows, 3N step log rows, N completed enrolments, no dedupe key twice.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
os.environ.setdefault("SIYU_MARKETING_CAP", "off")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import SqlTimer, log
from throwaway import throwaway_database  # bench/throwaway.py: the database a run works in

STEPS = 3


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000, help="enrolments per tick batch and rows per floor "
                                                                "transaction")
    parser.add_argument("--wait-days", type=int, default=0, help="a wait of this many days between the sends")
    parser.add_argument("--sql-profile", action="store_true", help="time the tick's SQL by shape (stderr)")
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    return parser.parse_args(argv)


def make_members(n: int, now: dt.datetime) -> None:
    from django.db import connection

    from siyu.core.db import insert_rows
    from siyu.members.models import Member

    fields = [f for f in Member._meta.concrete_fields if not f.primary_key]
    names = [f.attname for f in fields]
    values = {"name": "会员", "phone": None, "joined_at": now - dt.timedelta(days=30), "status": "active",
              "sms_consent": True, "marketing_consent": True, "created_at": now, "updated_at": now}
    base = [values.get(f.attname, f.get_default()) for f in fields]
    code_at, phone_at = names.index("code"), names.index("phone")
    chunk = 50_000
    for start in range(0, n, chunk):
        rows = []
        for i in range(start, min(n, start + chunk)):
            row = list(base)
            row[code_at] = f"B{i:09d}"
            row[phone_at] = f"139{i:08d}"
            rows.append(row)
        insert_rows(Member, names, rows, chunk_size=1000)
    if connection.vendor == "postgresql":  # a member table that has been there a while has statistics
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE members_member")
    log(f"members: {n}")


def setup_journey(args, now: dt.datetime):
    from siyu.journeys import services
    from siyu.messaging.models import MessageTemplate

    templates = [MessageTemplate.objects.create(code=f"bench-{i}", name=f"bench {i}", channel="sms",
                                                body="{{ member_name }}，您好", provider_template="SMS_1")
                 for i in range(STEPS)]
    steps = []
    for i, template in enumerate(templates):
        if i and args.wait_days:
            steps.append({"key": f"w{i}", "kind": "wait", "mode": "duration", "days": args.wait_days})
        steps.append({"key": f"s{i}", "kind": "send", "template_id": template.pk})
    journey = services.create_journey(code="bench", name="bench", actor="bench", definition={
        "trigger": {"kind": "manual"}, "steps": steps})
    return services.activate_journey(journey=journey, actor="bench", now=now), templates


def enter(journey, now: dt.datetime) -> dict:
    from siyu.journeys.services import enrol_members
    from siyu.members.models import Member

    started = time.perf_counter()
    ids = list(Member.objects.order_by("pk").values_list("pk", flat=True))
    entered = 0
    for i in range(0, len(ids), 10_000):
        entered += enrol_members(journey=journey, member_ids=ids[i:i + 10_000], entry_key="bench", now=now)
    seconds = time.perf_counter() - started
    return {"entered": entered, "seconds": round(seconds, 2), "members_per_s": round(entered / seconds)}


def run_service(args, now: dt.datetime) -> dict:
    from django.db import connection

    from siyu.journeys.engine import tick

    timer = SqlTimer() if args.sql_profile else None
    ticks = [now + dt.timedelta(days=args.wait_days * i) for i in range(STEPS)] if args.wait_days else [now]
    moved = 0
    started = time.perf_counter()
    with connection.execute_wrapper(timer) if timer else contextlib.nullcontext():
        for moment in ticks:
            moved += tick(now=moment, batch_size=args.batch)
            log(f"tick at {moment:%Y-%m-%d %H:%M}: {moved} moves so far, {time.perf_counter() - started:.1f}s")
    seconds = time.perf_counter() - started
    if timer:
        log(json.dumps(timer.report(), ensure_ascii=False, indent=1))
    actions = args.members * STEPS
    return {"seconds": round(seconds, 2), "moves": moved, "actions": actions,
            "actions_per_s": round(actions / seconds)}


def check(args) -> dict:
    from django.db.models import Count

    from siyu.journeys.models import Enrolment, StepLog
    from siyu.messaging.models import OutboxMessage

    result = {"outbox": OutboxMessage.objects.count(), "queued": OutboxMessage.objects.filter(status="queued").count(),
              "step_logs": StepLog.objects.count(),
              "completed": Enrolment.objects.filter(state="completed").count(),
              "duplicate_keys": OutboxMessage.objects.values("dedupe_key").annotate(n=Count("id"))
              .filter(n__gt=1).count()}
    n = args.members
    result["ok"] = (result["outbox"] == STEPS * n and result["step_logs"] == STEPS * n and result["completed"] == n
                    and result["duplicate_keys"] == 0)
    return result


def run_floor(args) -> dict:
    """The service's outbox rows again, by plain SQL, after emptying the table."""
    from django.db import connection, transaction

    from siyu.core.db import insert_rows
    from siyu.messaging.models import OutboxMessage
    from siyu.messaging.services import _COLUMNS

    key_at, context_at = _COLUMNS.index("dedupe_key"), _COLUMNS.index("context")
    rows = []
    for row in OutboxMessage.objects.order_by("pk").values_list(*_COLUMNS).iterator(chunk_size=20_000):
        row = list(row)
        row[key_at] = "floor:" + row[key_at]
        row[context_at] = json.dumps(row[context_at])
        rows.append(tuple(row))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(OutboxMessage._meta.db_table)}")
    started = time.perf_counter()
    for i in range(0, len(rows), args.batch):
        with transaction.atomic():
            insert_rows(OutboxMessage, _COLUMNS, rows[i:i + args.batch], chunk_size=1000)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "rows": len(rows), "rows_per_s": round(len(rows) / seconds)}


def main(argv=None) -> dict:
    args = parse_args(argv)
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from siyu.core.time import business_date, business_zone

    with throwaway_database("journeys", keep=args.keep):
        # 11:00 business time today: outside quiet hours, so every message is queued for now.
        now = dt.datetime.combine(business_date(timezone.now()), dt.time(11), tzinfo=business_zone())
        make_members(args.members, now)
        journey, _templates = setup_journey(args, now)
        entry = enter(journey, now)
        log(f"entry: {entry}")
        service = run_service(args, now)
        log(f"service: {service}")
        checked = check(args)
        log(f"check: {checked}")
        floor = None if args.skip_floor else run_floor(args)
        if floor:
            log(f"floor: {floor}")
        report = {
            "bench": "journeys",
            "database": connection.vendor,
            "database_version": ".".join(map(str, connection.get_database_version())),
            "members": args.members, "steps": STEPS, "wait_days": args.wait_days, "batch": args.batch,
            "entry": entry,
            "service": service,
            "floor": floor,
            "ratio": round(floor["rows_per_s"] / service["actions_per_s"], 2) if floor else None,
            "goal": {"actions_per_s": 10_000, "within_floor": 3},
            "check": checked,
        }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    if not report["check"]["ok"]:
        sys.exit(1)
    return report


if __name__ == "__main__":
    main()
