"""Messaging: ``enqueue`` throughput (policy decided set-based) against a raw-SQL floor.

    .venv/bin/python bench/messaging.py --members 200000 --messages 1000000 [--batch 5000]

Runs on whatever database ``SIYU_DATABASE_URL`` names, in a throwaway test database
(``test_<name>_messaging``: created, migrated, dropped), and prints JSON:

1. **enqueue**: ``--messages`` messages to random members over three templates (SMS and email
   marketing, WeCom service), in calls of ``--batch``, with the default policy (cap 2/7d, quiet
   hours 22:00–08:00, at a noon so nothing is deferred); members have mixed consent and
   reachability, some unsubscribed from SMS, so every suppression reason occurs. Messages/s and
   the outcome counts.
2. **again**: the first ``--batch`` × 10 messages enqueued again (all duplicates).
3. **floor**: the outbox rows the service wrote, copied aside, the outbox emptied, and the same
   rows inserted again batch by batch with the project's fastest plain insert (``COPY`` on
   PostgreSQL, multi-row ``INSERT`` elsewhere), one transaction per batch, no policy and no
   lookups. ``ratio`` = service messages/s ÷ floor rows/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
import zoneinfo
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throwaway import throwaway_database  # bench/throwaway.py: the database a run works in

NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai"))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000, help="messages per enqueue call and per floor transaction")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument("--sql-profile", action="store_true",
                        help="time enqueue's SQL by statement, top ones to stderr")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    return parser.parse_args(argv)


def setup(args, rng: random.Random):
    from django.db import connection, transaction

    from siyu.members.models import ContactStatus, Identity, IdentityKind, Member, WeComContact
    from siyu.messaging.models import Channel, MessageTemplate, Purpose, Unsubscribe
    from siyu.org.models import Group, Staff

    group = Group.objects.create(code="bench", name="bench")
    guides = Staff.objects.bulk_create([Staff(group=group, code=f"g{i}", name=f"导购{i}") for i in range(50)])
    started = time.perf_counter()
    with transaction.atomic():
        for start in range(0, args.members, 10_000):
            Member.objects.bulk_create([Member(
                code=f"B{i:09d}", name=f"会员{i}", phone=f"139{i:08d}" if rng.random() < 0.95 else "",
                email=f"m{i}@example.com" if rng.random() < 0.6 else "", joined_at=NOON,
                sms_consent=rng.random() < 0.85, marketing_consent=rng.random() < 0.8,
                is_wecom_friend=True) for i in range(start, min(start + 10_000, args.members))], batch_size=2000)
    ids = list(Member.objects.order_by("pk").values_list("pk", flat=True))
    with transaction.atomic():
        wecom = [pk for pk in ids if rng.random() < 0.6]
        WeComContact.objects.bulk_create([WeComContact(member_id=pk, staff=guides[pk % 50], added_at=NOON,
                                                       status_changed_at=NOON, status=ContactStatus.ACTIVE)
                                          for pk in wecom], batch_size=5000)
        Identity.objects.bulk_create([Identity(member_id=pk, kind=IdentityKind.WECOM, value=f"wm{pk}")
                                      for pk in wecom], batch_size=5000)
        Unsubscribe.objects.bulk_create([Unsubscribe(member_id=pk, channel=Channel.SMS, at=NOON, source="bench")
                                         for pk in ids if rng.random() < 0.05], batch_size=5000)
    log(f"members: {len(ids)} in {time.perf_counter() - started:.1f}s")
    if connection.vendor in ("postgresql", "mysql"):  # a live database has statistics for its tables
        with connection.cursor() as cursor:
            for model in (Member, WeComContact, Identity, Unsubscribe):
                cursor.execute(f"ANALYZE TABLE {model._meta.db_table}" if connection.vendor == "mysql"
                               else f"ANALYZE {model._meta.db_table}")
    templates = [
        MessageTemplate.objects.create(code="sms", name="sms", channel=Channel.SMS, provider_template="SMS_1",
                                       body="{{ member_name }}，您的券 {{ coupon_code }} 即将到期"),
        MessageTemplate.objects.create(code="email", name="email", channel=Channel.EMAIL, subject="会员日",
                                       body="<p>{{ member_name }}</p>"),
        MessageTemplate.objects.create(code="wecom", name="wecom", channel=Channel.WECOM,
                                       purpose=Purpose.SERVICE, body="{{ member_name }}，您的订单已发货"),
    ]
    return ids, templates


def messages(args, ids, templates, rng: random.Random):
    from siyu.messaging.services import Outgoing

    out = []
    for i in range(args.messages):
        template = templates[i % 3]
        out.append(Outgoing(member_id=rng.choice(ids), template_id=template.pk, dedupe_key=f"bench:{i}",
                            purpose="service" if template.code == "wecom" else "marketing",
                            context={"coupon_code": f"C{i}"} if template.code == "sms" else {},
                            source="bench:journey:1"))
    return out


def run_enqueue(args, batches) -> dict:
    from siyu.messaging.services import enqueue

    created = duplicates = 0
    outcomes: dict[str, int] = {}
    started = time.perf_counter()
    for part in batches:
        result = enqueue(messages=part, now=NOON)
        created += result.created
        duplicates += result.duplicates
        for e in result.by_key.values():
            key = e.reason or e.status
            outcomes[key] = outcomes.get(key, 0) + 1
    seconds = time.perf_counter() - started
    total = sum(len(p) for p in batches)
    return {"messages": total, "seconds": round(seconds, 2), "messages_per_s": round(total / seconds),
            "created": created, "duplicates": duplicates, "outcomes": dict(sorted(outcomes.items()))}


def _plain(value):
    """A value read back from the copy as the insert wants it: JSON as text, datetimes as datetimes."""
    from django.utils.dateparse import parse_datetime

    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] in " T" and value[13] == ":":
        return parse_datetime(value) or value
    return value


def run_floor(args) -> dict:
    from django.db import connection, transaction

    from siyu.core.db import insert_rows
    from siyu.messaging.models import OutboxMessage
    from siyu.messaging.services import _COLUMNS

    table = connection.ops.quote_name(OutboxMessage._meta.db_table)
    columns = [OutboxMessage._meta.get_field(f).column for f in _COLUMNS]
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE bench_outbox_copy AS SELECT id, {names} FROM {table}")
        cursor.execute(f"DELETE FROM {table}")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {table}")
    seconds = 0.0
    rows_total = 0
    last = 0
    while True:
        with connection.cursor() as cursor:  # reading the rows back is not timed
            cursor.execute(f"SELECT id, {names} FROM bench_outbox_copy WHERE id > %s ORDER BY id LIMIT %s",
                           [last, args.batch])
            rows = cursor.fetchall()
        if not rows:
            break
        last = rows[-1][0]
        values = [row[1:] for row in rows]
        values = [tuple(_plain(v) for v in row) for row in values]
        started = time.perf_counter()
        with transaction.atomic():
            insert_rows(OutboxMessage, _COLUMNS, values, chunk_size=1000)
        seconds += time.perf_counter() - started
        rows_total += len(values)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_outbox_copy")
    return {"rows": rows_total, "seconds": round(seconds, 2), "rows_per_s": round(rows_total / seconds)}


def main(argv=None) -> dict:
    args = parse_args(argv)
    import django

    django.setup()
    from django.db import connection

    with throwaway_database("messaging", keep=args.keep):
        rng = random.Random(args.seed)
        ids, templates = setup(args, rng)
        batch = messages(args, ids, templates, rng)
        batches = [batch[i:i + args.batch] for i in range(0, len(batch), args.batch)]
        log(f"enqueue {len(batch)} in calls of {args.batch} …")
        if args.sql_profile:
            timings: dict[str, list] = {}

            def timer(execute, sql, params, many, context):
                started = time.perf_counter()
                try:
                    return execute(sql, params, many, context)
                finally:
                    entry = timings.setdefault(" ".join(sql.split())[:110], [0, 0.0])
                    entry[0] += 1
                    entry[1] += time.perf_counter() - started

            with connection.execute_wrapper(timer):
                first = run_enqueue(args, batches)
            for sql, (count, spent) in sorted(timings.items(), key=lambda kv: -kv[1][1])[:12]:
                log(f"{spent:8.2f}s {count:6d}× {sql}")
        else:
            first = run_enqueue(args, batches)
        log(f"enqueue: {first['messages_per_s']}/s")
        again = run_enqueue(args, batches[:10])
        floor = None if args.skip_floor else run_floor(args)
        report = {
            "bench": "messaging",
            "database": connection.vendor,
            "database_version": ".".join(map(str, connection.get_database_version())),
            "members": args.members, "batch": args.batch, "seed": args.seed,
            "enqueue": first, "again": again, "floor": floor,
            "ratio": round(first["messages_per_s"] / floor["rows_per_s"], 3) if floor else None,
            "load": os.getloadavg(),
        }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return report


if __name__ == "__main__":
    main()
