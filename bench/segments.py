"""Segment preview count and the RFM + lifecycle recompute, each against a hand-written SQL floor.

    .venv/bin/python bench/segments.py --members 20000 --orders 100000 [--events N] [--runs 5] [--profile-sql]

Runs on whatever database ``SIYU_DATABASE_URL`` names, in a throwaway test database (created,
migrated, dropped), and prints JSON:

1. **segment count**: a five-condition rule (brand and city attributes, a tag, an order count in
   a window, an event in a window) parsed by ``parse_rule``, compiled by ``compile_rule`` and
   counted with ``Member.objects.filter(q).count()`` — the first (cold) run and the median of the
   warm runs — against a hand-written SQL count (the floor, asserted to return the same number);
2. **RFM + lifecycle**: ``recompute_models()`` over everyone (first run on empty tables, then the
   next day's run) against one hand-written ``CREATE TEMP TABLE … AS SELECT`` computing the same
   scores, classes and stages (checked row by row against what the service wrote);
3. the ratios service / floor and the row counts.

The data is generated inside the database by set-based ``INSERT … SELECT`` over a number
sequence (``generate_series`` on PostgreSQL, a numbers table elsewhere) with deterministic
pseudo-random values (an arithmetic hash of the row number), so every vendor gets the same data
for the same arguments. On PostgreSQL, large loads drop the secondary indexes and skip the
foreign-key triggers while loading, rebuild the indexes afterwards and then ``VACUUM ANALYZE``
(what autovacuum would have done on a live system).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import SqlTimer  # bench/ingest.py: SQL time by statement shape
from throwaway import throwaway_database  # bench/throwaway.py: the database a run works in

#: The instant the benchmark runs "at": orders span the two years before it, events the year before.
NOW = dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)  # 2026-11-24 00:00 in Asia/Shanghai
ORDER_DAYS, EVENT_DAYS, MEMBER_DAYS = 730, 365, 5 * 365

RULE = {"all": [
    {"attr": "brand", "op": "eq", "value": "brand-a"},
    {"attr": "city", "op": "eq", "value": "上海"},
    {"tags": "any", "value": ["mother-baby"]},
    {"orders": {"window": {"last_days": 180}}, "measure": "count", "op": "gte", "value": 2},
    {"events": {"kind": "check_in", "window": {"last_days": 30}}, "op": "gte", "value": 1},
]}

# Reference data: 2 brands × (9 physical stores + 1 mini-program mall), one POS/mall channel per
# store, 3 guides per store. Index i of STORE_CITIES is store i; brand = i // 10; i % 10 == 9 is the mall.
STORE_CITIES = ["上海", "上海", "北京", "杭州", "南京", "苏州", "广州", "深圳", "成都", "",
                "上海", "北京", "北京", "杭州", "武汉", "西安", "重庆", "天津", "宁波", ""]
STORES, GUIDES_PER_STORE = len(STORE_CITIES), 3
#: Where members live when not in their store's city: (city, share in percent).
CITIES = [("上海", 18), ("北京", 12), ("杭州", 10), ("广州", 8), ("深圳", 8), ("南京", 7), ("苏州", 6),
          ("成都", 7), ("武汉", 6), ("西安", 5), ("重庆", 5), ("天津", 4), ("宁波", 4)]
#: Tags: (code, holders per thousand members).
TAGS = [("mother-baby", 100), ("pet-owner", 150), ("coffee-lover", 200), ("high-value", 50)]
#: Event kinds with their share in percent.
EVENT_KINDS = [("check_in", 35), ("page_view", 25), ("content_view", 15), ("share", 8), ("store_visit", 7),
               ("group_message", 5), ("coupon_receive", 5)]
#: Order statuses with their share in percent (paid, shipped and completed count as sales).
ORDER_STATUSES = [("completed", 90), ("paid", 3), ("shipped", 2), ("closed", 2), ("pending", 3)]
BUYER_SHARE, EVENT_MEMBER_SHARE = 0.7, 0.4

P = 2_147_483_647  # 2^31 - 1: every intermediate value of the hash stays below 2^63


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=None, help="behaviour events (default: 3 per member)")
    parser.add_argument("--runs", type=int, default=5, help="segment count runs each (the first is the cold one)")
    parser.add_argument("--seed", type=int, default=1, help="other data (the same seed gives the same data)")
    parser.add_argument("--fast-load", choices=("auto", "on", "off"), default="auto",
                        help="PostgreSQL: drop secondary indexes and skip FK triggers while loading "
                             "(auto: when there are over a million orders)")
    parser.add_argument("--skip-rfm", action="store_true", help="segment count only")
    parser.add_argument("--keep", action="store_true",
                        help="keep the benchmark database afterwards (to poke at with psql; drop it yourself)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the database a --keep run left (no data generation; the sizes are the kept ones)")
    parser.add_argument("--profile-sql", action="store_true",
                        help="EXPLAIN (ANALYZE, BUFFERS) the service's and the floor's count queries (PostgreSQL; "
                             "a plain EXPLAIN elsewhere) and time the recompute's statements, to stderr")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def execute(sql: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def scalar(sql: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def table(model) -> str:
    from django.db import connection

    return connection.ops.quote_name(model._meta.db_table)


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


# -- SQL dialect -----------------------------------------------------------------------------
class Dialect:
    """The few expressions the generator and the floors write differently per vendor. The
    generator's statements carry no parameters, so ``%`` is the modulo operator there."""

    def __init__(self, vendor: str, seed: int):
        self.vendor = vendor
        self.seed = seed

    def hash(self, x: str, salt: int) -> str:
        """A pseudo-random integer in [0, 2^31 - 1) from the integer ``x`` (a column name)."""
        salt += 1000 * self.seed
        t = f"((({x}) * {1_103_515_245 + 2_654_435 * (salt % 300)} + {12_345 + 97 * salt}) % {P})"
        u = f"(({t} * {t} + {7 * salt + 1}) % {P})"
        v = f"(({u} * 48271 + {salt}) % {P})"
        return f"(({v} * {v}) % {P})"

    def idiv(self, a: str, b: int | str) -> str:
        return f"(({a}) DIV ({b}))" if self.vendor == "mysql" else f"(({a}) / ({b}))"

    def concat(self, *parts: str) -> str:
        if self.vendor == "sqlite":
            return "(" + " || ".join(f"({p})" for p in parts) + ")"
        return f"CONCAT({', '.join(parts)})"

    def at(self, base: dt.datetime, seconds: str) -> str:
        """The instant ``base`` + ``seconds`` (an integer expression), as the DateTimeField stores it."""
        utc = base.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        if self.vendor == "postgresql":
            return f"(TIMESTAMPTZ '{utc}+00' + ({seconds}) * INTERVAL '1 second')"
        if self.vendor == "mysql":
            return f"TIMESTAMPADD(SECOND, {seconds}, '{utc}')"
        return f"datetime('{utc}', ({seconds}) || ' seconds')"

    def day(self, base: dt.date, days: str) -> str:
        if self.vendor == "postgresql":
            return f"(DATE '{base.isoformat()}' + CAST({days} AS INTEGER))"
        if self.vendor == "mysql":
            return f"(DATE '{base.isoformat()}' + INTERVAL ({days}) DAY)"
        return f"date('{base.isoformat()}', ({days}) || ' days')"

    def money(self, cents: str) -> str:
        if self.vendor == "postgresql":
            return f"(CAST({cents} AS NUMERIC) / 100)"
        if self.vendor == "mysql":
            return f"(CAST({cents} AS DECIMAL(14, 2)) / 100)"
        return f"(({cents}) / 100.0)"

    def empty_json(self) -> str:
        return "CAST('{}' AS JSONB)" if self.vendor == "postgresql" else "'{}'"

    def fence(self) -> str:
        """Keeps PostgreSQL from pulling a subquery up (and so evaluating its hashes repeatedly)."""
        return " OFFSET 0" if self.vendor == "postgresql" else ""

    def seq(self, lo: int, hi: int) -> str:
        """A FROM item with one row per integer ``g`` in ``lo … hi``."""
        if self.vendor == "postgresql":
            return f"generate_series(CAST({lo} AS BIGINT), {hi}) AS s(g)"
        return f"(SELECT n + {lo} AS g FROM bench_seq WHERE n <= {hi - lo}) s"

    def whole_days(self, start: str, end: str) -> str:
        """Whole days from ``start`` to ``end``, floored (for statements with parameters)."""
        if self.vendor == "postgresql":
            return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({end}) - ({start})) / 86400) AS INTEGER)"
        if self.vendor == "mysql":
            return f"TIMESTAMPDIFF(DAY, {start}, {end})"
        return f"((CAST(strftime('%%s', {end}) AS INTEGER) - CAST(strftime('%%s', {start}) AS INTEGER)) / 86400)"


def case(expr: str, pairs: list[tuple[int, str]], default: str = "NULL") -> str:
    whens = " ".join(f"WHEN {value} THEN {result}" for value, result in pairs)
    return f"CASE {expr} {whens} ELSE {default} END"


def shares(bucket: str, items: list[tuple[str, int]]) -> str:
    """``CASE`` picking item by ``bucket`` (0–99) according to the percent shares."""
    whens, upto = [], 0
    for value, share in items[:-1]:
        upto += share
        whens.append(f"WHEN {bucket} < {upto} THEN '{value}'")
    return f"CASE {' '.join(whens)} ELSE '{items[-1][0]}' END"


def coprime_near(n: int, fraction: float) -> int:
    """A multiplier that permutes 0 … n-1 (``rank * p % n``) and scatters neighbouring ranks."""
    p = max(3, int(n * fraction)) | 1
    while math.gcd(p, n) != 1:
        p += 2
    return p


# -- data ------------------------------------------------------------------------------------
class Loader:
    def __init__(self, args, d: Dialect):
        self.args, self.d = args, d
        self.members, self.orders = args.members, args.orders
        self.events = args.events if args.events is not None else 3 * args.members
        self.vendor = d.vendor
        self.chunk = 1_000_000 if self.vendor == "postgresql" else 100_000
        self.timings: dict[str, float] = {}

    # reference rows through the ORM (a handful)
    def reference(self) -> None:
        from siyu.commerce.models import Channel, ChannelKind
        from siyu.org.models import Brand, Group, Role, Staff, Store, StoreKind
        from siyu.tags.models import Tag, TagCategory, TagGroup

        group = Group.objects.create(code="bench", name="Bench 集团")
        brands = [Brand.objects.create(group=group, code=f"brand-{c}", name=f"品牌 {c.upper()}") for c in "ab"]
        stores = Store.objects.bulk_create([
            Store(brand=brands[i // 10], code=f"st-{i:02d}", name=f"门店 {i:02d}", city=city,
                  kind=StoreKind.MINI_PROGRAM_MALL if i % 10 == 9 else StoreKind.PHYSICAL)
            for i, city in enumerate(STORE_CITIES)])
        stores = list(Store.objects.order_by("pk"))
        Channel.objects.bulk_create([
            Channel(code=f"ch-{s.code}", name=s.name, store=s,
                    kind=ChannelKind.MINI_PROGRAM if s.kind != StoreKind.PHYSICAL else ChannelKind.STORE)
            for s in stores])
        Staff.objects.bulk_create([Staff(group=group, code=f"g-{s.code}-{k}", name=f"导购 {s.code}-{k}",
                                         role=Role.GUIDE, store=s) for s in stores for k in range(GUIDES_PER_STORE)])
        tag_group = TagGroup.objects.create(code="bench", name="Bench", category=TagCategory.PERSONAL)
        Tag.objects.bulk_create([Tag(group=tag_group, code=code, name=code) for code, _ in TAGS])
        # The generator addresses stores, channels and guides by position: their ids must be contiguous.
        self.store0 = self.first_id(Store, STORES)
        self.channel0 = self.first_id(Channel, STORES, order="store_id")
        self.guide0 = self.first_id(Staff, STORES * GUIDES_PER_STORE)
        self.tag_ids = dict(Tag.objects.values_list("code", "pk"))

    @staticmethod
    def first_id(model, n: int, order: str = "pk") -> int:
        ids = list(model.objects.order_by(order).values_list("pk", flat=True))
        assert ids == list(range(ids[0], ids[0] + n)), f"{model.__name__} ids are not contiguous: {ids}"
        return ids[0]

    def insert(self, model, columns: dict[str, str], select_from: str, where: str = "") -> int:
        """``INSERT INTO model (columns) SELECT expressions FROM …``, checking that every column
        without a default is given (the models may have grown since this was written)."""
        from django.db import connection

        missing = [f.column for f in model._meta.concrete_fields
                   if f.column not in columns and not f.null and not f.has_default() and not f.primary_key]
        assert not missing, f"{model.__name__}: the generator gives no value for {missing}"
        qn = connection.ops.quote_name
        sql = (f"INSERT INTO {table(model)} ({', '.join(qn(c) for c in columns)}) "
               f"SELECT {', '.join(columns.values())} FROM {select_from}{' WHERE ' + where if where else ''}")
        return execute(sql)

    def chunks(self, total: int):
        for lo in range(1, total + 1, self.chunk):
            yield lo, min(lo + self.chunk - 1, total)

    def member_store(self, m: str) -> str:
        """The store index (0–19) that owns member ``m``; the orders use it too."""
        return f"({self.d.hash(m, 101)} % {STORES})"

    def member_guide(self, store_index: str, guide_hash: str) -> str:
        """80 % of members have an owning guide, one of their store's three."""
        return (f"CASE WHEN {guide_hash} % 10 < 8 THEN {self.guide0} + ({store_index}) * {GUIDES_PER_STORE} "
                f"+ {self.d.idiv(guide_hash, 10)} % {GUIDES_PER_STORE} ELSE NULL END")

    def load_members(self) -> None:
        from siyu.members.models import Member

        d, n = self.d, self.members
        city_pairs = [(i, f"'{c}'") for i, c in enumerate(STORE_CITIES) if c]
        joined = d.at(NOW - dt.timedelta(days=MEMBER_DAYS),
                      f"{d.idiv(f'(a.g - 1) * {MEMBER_DAYS * 86400 - 3600}', n)} + a.hj % 3600")
        born = d.day(dt.date(1955, 1, 1), f"{d.idiv('a.hb', 100)} % 18250")
        community = d.concat("'小区'", f"{d.idiv('a.hx', 100)} % 500")
        elsewhere = shares(f"{d.idiv('a.hc', 100)} % 100", CITIES)
        columns = {
            "id": "a.g",
            "code": d.concat("'M'", "a.g"),
            "name": d.concat("'会员'", "a.g"),
            "gender": shares("a.hx % 100", [("female", 55), ("male", 35), ("unknown", 10)]),
            "birthday": f"CASE WHEN a.hb % 100 < 75 THEN {born} ELSE NULL END",
            "phone": d.concat("''", "13000000000 + a.g"),
            "email": "''",
            "city": f"CASE WHEN a.hc % 100 < 80 AND a.st % 10 <> 9 THEN {case('a.st', city_pairs)} "
                    f"ELSE {elsewhere} END",
            "community": f"CASE WHEN a.hx % 2 = 0 THEN '' ELSE {community} END",
            "house_number": "''",
            "occupation": "''",
            "joined_at": joined,
            "source_channel": shares("a.hs % 100", [("store", 60), ("mini_program", 25), ("tmall", 15)]),
            "store_id": f"{self.store0} + a.st",
            "guide_id": self.member_guide("a.st", "a.hg"),
            "status": "CASE WHEN a.hs % 1000 < 5 THEN 'frozen' ELSE 'active' END",
            "merged_into_id": "NULL",
            "is_wecom_friend": "(a.hf % 10 < 6)",
            "in_group": f"({d.idiv('a.hf', 10)} % 10 < 3)",
            "follows_oa": f"({d.idiv('a.hf', 100)} % 10 < 4)",
            "mini_program_authorized": f"({d.idiv('a.hf', 1000)} % 10 < 5)",
            "sms_consent": f"({d.idiv('a.hf', 10000)} % 10 < 7)",
            "marketing_consent": f"({d.idiv('a.hf', 100000)} % 10 < 5)",
            "created_at": joined,
            "updated_at": joined,
        }
        for lo, hi in self.chunks(n):
            inner = (f"(SELECT s.g, {self.member_store('s.g')} AS st, {d.hash('s.g', 104)} AS hg, "
                     f"{d.hash('s.g', 102)} AS hc, {d.hash('s.g', 103)} AS hb, {d.hash('s.g', 105)} AS hx, "
                     f"{d.hash('s.g', 106)} AS hs, {d.hash('s.g', 107)} AS hf, {d.hash('s.g', 108)} AS hj "
                     f"FROM {d.seq(lo, hi)}{d.fence()}) a")
            self.insert(Member, columns, inner)
            log(f"members: {hi:,}/{n:,}")

    def load_orders(self) -> None:
        from siyu.commerce.models import Order

        d, n, m = self.d, self.members, self.orders
        buyers = max(1, int(n * BUYER_SHARE))
        perm = coprime_near(n, 0.618)
        # A skewed buyer: the product of two uniform draws (density ln(1/x)) ranks the buyer pool,
        # a permutation spreads the ranks over member ids: regulars with a hundred or two orders,
        # a long tail of occasional and one-off buyers, about 40 % of the members without any.
        rank = d.idiv(f"(1 + b.h1 % 100000) * (1 + b.h2 % 100000) * {buyers}", 10_000_000_001)
        member = f"1 + (({rank}) * {perm}) % {n}"
        at = d.at(NOW - dt.timedelta(days=ORDER_DAYS),
                  f"{d.idiv(f'(c.g - 1) * {ORDER_DAYS * 86400 - 3600}', m)} + c.hj % 3600")
        where = "c.hw % 100"  # 70 % the member's store, 18 % the mall of its brand, else any store
        store = (f"CASE WHEN {where} < 70 THEN c.mst WHEN {where} < 88 THEN {d.idiv('c.mst', 10)} * 10 + 9 "
                 f"ELSE {d.idiv('c.hw', 100)} % {STORES} END")
        status = "c.hz % 100"
        counted = f"({status} < 95)"
        cents = "(1990 + (c.ha % 200) * (c.hb % 200) * 2)"
        refunded = f"CASE WHEN {counted} AND {d.idiv('c.ha', 200)} % 25 = 0 THEN {d.idiv(cents, 2)} ELSE 0 END"
        columns = {
            "id": "c.g",
            "channel_id": f"{self.channel0} + {store}",
            "external_id": d.concat("'O'", "c.g"),
            "member_id": "c.m",
            "buyer_kind": "'phone'",
            "buyer_value": d.concat("''", "13000000000 + c.m"),
            "status": shares(status, ORDER_STATUSES),
            "is_counted": counted,
            "total_amount": d.money(cents),
            "paid_amount": f"CASE WHEN {counted} THEN {d.money(cents)} ELSE 0 END",
            "refunded_amount": d.money(refunded),
            "item_count": f"1 + {d.idiv('c.hb', 200)} % 4",
            "ordered_at": at,
            "paid_at": f"CASE WHEN {counted} THEN {at} ELSE NULL END",
            "store_id": f"{self.store0} + {store}",
            "guide_id": f"CASE WHEN {where} < 70 THEN {self.member_guide('c.mst', 'c.mg')} ELSE NULL END",
            "created_at": at,
            "updated_at": at,
        }
        for lo, hi in self.chunks(m):
            hashes = ", ".join(f"{d.hash('s.g', 200 + i)} AS {name}"
                               for i, name in enumerate(("h1", "h2", "hw", "hz", "ha", "hb", "hj")))
            level1 = f"(SELECT s.g, {hashes} FROM {d.seq(lo, hi)}{d.fence()}) b"
            level2 = f"(SELECT b.*, {member} AS m FROM {level1}{d.fence()}) b2"
            level3 = (f"(SELECT b2.*, {self.member_store('b2.m')} AS mst, {d.hash('b2.m', 104)} AS mg "
                      f"FROM {level2}{d.fence()}) c")
            self.insert(Order, columns, level3)
            log(f"orders: {hi:,}/{m:,}")

    def load_events(self) -> None:
        from siyu.events.models import Event

        d, n, e = self.d, self.members, self.events
        if not e:
            return
        pool = max(1, int(n * EVENT_MEMBER_SHARE))
        perm = coprime_near(n, 0.382)
        rank = d.idiv(f"(1 + b.h1 % 100000) * (1 + b.h2 % 100000) * {pool}", 10_000_000_001)
        at = d.at(NOW - dt.timedelta(days=EVENT_DAYS),
                  f"{d.idiv(f'(b.g - 1) * {EVENT_DAYS * 86400 - 3600}', e)} + b.hj % 3600")
        columns = {
            "id": "b.g",
            "member_id": f"1 + (({rank}) * {perm}) % {n}",
            "kind": shares("b.hk % 100", EVENT_KINDS),
            "occurred_at": at,
            "store_id": "NULL",
            "channel_id": "NULL",
            "properties": d.empty_json(),
            "idempotency_key": d.concat("'ev-'", "b.g"),
            "received_at": at,
        }
        for lo, hi in self.chunks(e):
            hashes = ", ".join(f"{d.hash('s.g', 300 + i)} AS {name}" for i, name in enumerate(("h1", "h2", "hk", "hj")))
            self.insert(Event, columns, f"(SELECT s.g, {hashes} FROM {d.seq(lo, hi)}{d.fence()}) b")
            log(f"events: {hi:,}/{e:,}")

    def load_tags(self) -> None:
        from siyu.tags.models import MemberTag

        d = self.d
        for number, (code, per_mille) in enumerate(TAGS):
            # 1 in 20 holders' tag expired yesterday, 1 in 20 expires in a month, the rest never.
            columns = {
                "member_id": "a.g", "tag_id": str(self.tag_ids[code]), "source": "'manual'",
                "applied_by_id": "NULL", "actor": "'bench'",
                "applied_at": d.at(NOW, f"-86400 * (1 + {d.idiv('a.h', 1000)} % 700)"),
                "expires_at": f"CASE {d.idiv('a.h', 1000)} % 20 WHEN 0 THEN {d.at(NOW, '-86400')} "
                              f"WHEN 1 THEN {d.at(NOW, str(30 * 86400))} ELSE NULL END",
            }
            for lo, hi in self.chunks(self.members):
                inner = f"(SELECT s.g, {d.hash('s.g', 400 + number)} AS h FROM {d.seq(lo, hi)}{d.fence()}) a"
                self.insert(MemberTag, columns, inner, where=f"a.h % 1000 < {per_mille}")
        log("member tags done")

    def load_member_stats(self) -> None:
        from siyu.commerce.models import MemberStats, Order

        execute(f"INSERT INTO {table(MemberStats)} (member_id, first_order_at, last_order_at, order_count, "
                f"item_count, total_paid, total_refunded) "
                f"SELECT o.member_id, MIN(o.ordered_at), MAX(o.ordered_at), COUNT(*), SUM(o.item_count), "
                f"SUM(o.paid_amount) - SUM(o.refunded_amount), SUM(o.refunded_amount) FROM {table(Order)} o "
                f"WHERE o.is_counted = TRUE AND o.member_id IS NOT NULL GROUP BY o.member_id")
        log("member stats done")

    def seq_table(self) -> None:
        from django.db import connection, transaction

        if self.vendor == "postgresql":
            return
        execute("CREATE TABLE bench_seq (n BIGINT PRIMARY KEY)")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany("INSERT INTO bench_seq (n) VALUES (%s)", [(i,) for i in range(self.chunk)])

    def run(self) -> dict:
        from django.core.management.color import no_style
        from django.db import connection

        from siyu.commerce.models import Order
        from siyu.events.models import Event
        from siyu.members.models import Member
        from siyu.tags.models import MemberTag

        started = time.perf_counter()
        self.reference()
        self.seq_table()
        fast = self.vendor == "postgresql" and (
            self.args.fast_load == "on" or (self.args.fast_load == "auto" and self.orders > 1_000_000))
        big = [Member, Order, Event, MemberTag]
        rebuild = pg_drop_indexes(big) if fast else []
        if fast:
            execute("SET session_replication_role = replica")  # no FK triggers: the generator is consistent
        if self.vendor == "mysql":
            execute("SET SESSION optimizer_switch = 'derived_merge=off'")
        for name, step in (("members", self.load_members), ("orders", self.load_orders),
                           ("events", self.load_events), ("member_tags", self.load_tags)):
            self.timings[name] = round(timed(step)[1], 1)
        if fast:
            execute("SET session_replication_role = origin")
            execute("SET maintenance_work_mem = '1GB'")
            _, self.timings["indexes"] = timed(lambda: [execute(sql) for sql in rebuild])
            self.timings["indexes"] = round(self.timings["indexes"], 1)
            execute("RESET maintenance_work_mem")
            log(f"{len(rebuild)} indexes rebuilt in {self.timings['indexes']}s")
        if self.vendor == "mysql":
            execute("SET SESSION optimizer_switch = 'derived_merge=on'")
        for sql in connection.ops.sequence_reset_sql(no_style(), big):
            execute(sql)
        self.timings["member_stats"] = round(timed(self.load_member_stats)[1], 1)
        if self.vendor != "postgresql":
            execute("DROP TABLE bench_seq")
        self.timings["analyze"] = round(timed(analyze)[1], 1)
        self.timings["total"] = round(time.perf_counter() - started, 1)
        return {"fast_load": fast, **self.timings}


def pg_drop_indexes(models) -> list[str]:
    """Drop the secondary indexes and unique constraints of ``models``' tables (primary keys,
    checks and foreign keys stay); return the statements that rebuild them."""
    rebuild, drop = [], []
    for model in models:
        name = model._meta.db_table
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                           "WHERE conrelid = %s::regclass AND contype = 'u'", [name])
            for conname, definition in cursor.fetchall():
                drop.append(f'ALTER TABLE "{name}" DROP CONSTRAINT "{conname}"')
                rebuild.append(f'ALTER TABLE "{name}" ADD CONSTRAINT "{conname}" {definition}')
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                           "AND tablename = %s AND indexname NOT IN (SELECT conname FROM pg_constraint "
                           "WHERE conrelid = %s::regclass)", [name, name])
            for indexname, definition in cursor.fetchall():
                drop.append(f'DROP INDEX "{indexname}"')
                rebuild.append(definition)
    for sql in drop:
        execute(sql)
    log(f"dropped {len(drop)} indexes and unique constraints for the load")
    return rebuild


def analyze() -> None:
    """Planner statistics, as a live deployment has them (PostgreSQL: autovacuum's VACUUM ANALYZE,
    which also sets the visibility map index-only scans rely on)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        execute("VACUUM ANALYZE")
    elif connection.vendor == "mysql":
        from django.apps import apps

        tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in apps.get_models())
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE TABLE {tables}")
            cursor.fetchall()
    else:
        execute("ANALYZE")
    log("analyzed")


# -- segment count ---------------------------------------------------------------------------
def service_count() -> int:
    from siyu.members.models import Member
    from siyu.segments.compiler import compile_rule
    from siyu.segments.rules import parse_rule

    return Member.objects.filter(compile_rule(parse_rule(RULE), now=NOW)).count()


def floor_count_sql() -> tuple[str, list]:
    """The same count written by hand: the tag holders and the members with a check-in in the
    window intersected as two id sets (hash operations, no per-member probes), then the
    members' own filters by primary key, then the orders index probed for the few left,
    stopping at the second order."""
    from django.db import connection

    from siyu.commerce.models import Order
    from siyu.events.models import Event
    from siyu.members.models import Member
    from siyu.org.models import Brand, Store
    from siyu.tags.models import MemberTag, Tag

    adapt = connection.ops.adapt_datetimefield_value
    conditions = {c.get("attr") or next(iter(c)): c for c in RULE["all"]}
    order_rule, event_rule = conditions["orders"], conditions["events"]
    orders_since = adapt(NOW - dt.timedelta(days=order_rule["orders"]["window"]["last_days"]))
    events_since = adapt(NOW - dt.timedelta(days=event_rule["events"]["window"]["last_days"]))
    need = int(order_rule["value"])
    tags = conditions["tags"]["value"]
    counted = f"FROM {table(Order)} o WHERE o.member_id = m.id AND o.is_counted = TRUE AND o.ordered_at >= %s"
    orders = f"EXISTS (SELECT 1 {counted} LIMIT 1 OFFSET {need - 1})"  # an order number ``need`` exists
    sql = (f"SELECT COUNT(*) FROM {table(Member)} m "
           f"JOIN (SELECT t.member_id FROM {table(MemberTag)} t JOIN {table(Tag)} tg ON tg.id = t.tag_id "
           f"WHERE tg.code IN ({', '.join(['%s'] * len(tags))}) AND (t.expires_at IS NULL OR t.expires_at > %s) "
           f"INTERSECT SELECT e.member_id FROM {table(Event)} e WHERE e.kind = %s AND e.occurred_at >= %s) c "
           f"ON c.member_id = m.id "
           f"WHERE m.city = %s "
           f"AND m.store_id IN (SELECT s.id FROM {table(Store)} s JOIN {table(Brand)} b ON b.id = s.brand_id "
           f"WHERE b.code = %s) "
           f"AND {orders}")
    params = [*tags, adapt(NOW), event_rule["events"]["kind"], events_since,
              conditions["city"]["value"], conditions["brand"]["value"], orders_since]
    return sql, params


def floor_count() -> int:
    sql, params = floor_count_sql()
    return scalar(sql, params)


def measure(fn, runs: int) -> tuple[int, dict]:
    values, seconds = set(), []
    for _ in range(runs):
        value, took = timed(fn)
        values.add(value)
        seconds.append(took)
    assert len(values) == 1, values
    warm = seconds[1:] or seconds
    return values.pop(), {"cold_s": round(seconds[0], 4), "warm_median_s": round(statistics.median(warm), 4),
                          "runs": [round(s, 4) for s in seconds]}


def explain(sql: str, params=None) -> str:
    from django.db import connection

    prefix = {"postgresql": "EXPLAIN (ANALYZE, BUFFERS) ", "sqlite": "EXPLAIN QUERY PLAN "}.get(connection.vendor,
                                                                                                 "EXPLAIN ")
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql, params)
        return "\n".join(" | ".join(str(v) for v in row) for row in cursor.fetchall())


def service_count_sql() -> str:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        service_count()
    return captured.captured_queries[-1]["sql"]


def bench_segment(args) -> dict:
    from django.db import connection

    log("segment count: service …")
    count, service = measure(service_count, args.runs)
    log(f"segment count: {count} members, service warm median {service['warm_median_s']}s; floor …")
    floor_value, floor = measure(floor_count, args.runs)
    assert floor_value == count, f"the floor counts {floor_value}, the service {count}"
    result = {"rule": RULE, "count": count, **compare(service, floor)}
    if connection.vendor == "postgresql" and scalar("SHOW jit") == "on":
        # JIT compilation (jit_above_cost) costs 0.1–0.5 s on these sub-second queries: without it
        execute("SET jit = off")
        _, service_nojit = measure(service_count, args.runs)
        _, floor_nojit = measure(floor_count, args.runs)
        execute("RESET jit")
        result["jit_off"] = compare(service_nojit, floor_nojit)
        log(f"segment count without JIT: service {service_nojit['warm_median_s']}s, "
            f"floor {floor_nojit['warm_median_s']}s")
    if args.profile_sql:
        sql = service_count_sql()
        log("service count query:\n" + sql)
        log("EXPLAIN of the service's count:\n" + explain(sql))
        log("EXPLAIN of the floor's count:\n" + explain(*floor_count_sql()))
    return result


def compare(service: dict, floor: dict) -> dict:
    return {"service": service, "floor": floor,
            "ratio": round(service["warm_median_s"] / floor["warm_median_s"], 2) if floor["warm_median_s"] else None,
            "ratio_cold": round(service["cold_s"] / floor["cold_s"], 2) if floor["cold_s"] else None}


# -- RFM + lifecycle -------------------------------------------------------------------------
FLOOR_TABLE = "bench_floor_models"
RFM_CLASSES = {  # (R, F, M each high: score ≥ 3) → class; the textbook table
    (True, True, True): "important_value", (True, False, True): "important_develop",
    (False, True, True): "important_keep", (False, False, True): "important_retain",
    (True, True, False): "general_value", (True, False, False): "general_develop",
    (False, True, False): "general_keep", (False, False, False): "general_retain",
}


def floor_models(now: dt.datetime) -> float:
    """RFM scores and classes and lifecycle stages of every (brand, buyer) into a temporary table,
    in one statement with one pass over each brand's orders (no per-member lookups); returns the
    seconds it took."""
    from django.db import connection, transaction

    from siyu.analytics.models import RfmSettings
    from siyu.commerce.models import Order
    from siyu.org.models import Store

    d = Dialect(connection.vendor, 0)
    s = RfmSettings()  # the defaults every brand runs with here
    adapt = connection.ops.adapt_datetimefield_value
    start = now - dt.timedelta(days=s.window_days)
    in_window = "o.ordered_at >= %(start)s"
    klass = " ".join(f"WHEN b.r_score {'>=' if r else '<'} 3 AND b.f_score {'>=' if f else '<'} 3 "
                     f"AND b.m_score {'>=' if m else '<'} 3 THEN '{name}'" for (r, f, m), name in RFM_CLASSES.items())
    # The order before the last one matters only when the last is at most silent_days old: then,
    # with "recent" = after now − (silent_days + 2) days, it is the latest non-recent order if the
    # last is the first recent one (otherwise the gap is below silent_days + 2 ≤ churned_days).
    assert s.silent_days + 2 <= s.churned_days + 1
    recent = "o.ordered_at > %(recent)s"
    stores_of: dict[int, list[int]] = {}
    for store_id, brand_id in Store.objects.order_by("pk").values_list("pk", "brand_id"):
        stores_of.setdefault(brand_id, []).append(store_id)
    # One aggregate per brand (by member alone, over the brand's stores) is cheaper than one
    # aggregate by (brand, member) over a join with the stores.
    per_brand = [
        f"SELECT {int(brand)} AS brand_id, o.member_id, MIN(o.ordered_at) AS first_at, MAX(o.ordered_at) AS last_at, "
        f"COUNT(CASE WHEN {in_window} THEN 1 END) AS frequency, "
        f"MAX(CASE WHEN {in_window} THEN o.ordered_at END) AS last_in_window, "
        f"ROUND(SUM(CASE WHEN {in_window} THEN o.paid_amount END) "
        f"- SUM(CASE WHEN {in_window} THEN o.refunded_amount END), 2) AS monetary, "
        f"MIN(CASE WHEN {recent} THEN o.ordered_at END) AS first_recent, "
        f"MAX(CASE WHEN NOT {recent} THEN o.ordered_at END) AS before_recent "
        f"FROM {table(Order)} o WHERE o.store_id IN ({', '.join(str(int(i)) for i in ids)}) "
        f"AND o.is_counted = TRUE AND o.member_id IS NOT NULL AND o.ordered_at <= %(now)s GROUP BY o.member_id"
        for brand, ids in stores_of.items()]
    ntile = "CASE WHEN a.frequency > 0 THEN NTILE(5) OVER (PARTITION BY a.brand_id, a.frequency > 0 ORDER BY {} END"
    sql = (
        f"CREATE TEMPORARY TABLE {FLOOR_TABLE} AS "
        f"SELECT b.brand_id, b.member_id, b.recency_days, b.frequency, b.monetary, b.r_score, b.f_score, b.m_score, "
        f"CASE WHEN b.frequency = 0 THEN NULL {klass} END AS rfm_class, "
        f"CASE WHEN b.first_days <= {int(s.new_days)} THEN 'new' WHEN b.last_days > {int(s.churned_days)} "
        f"THEN 'churned' WHEN b.last_days > {int(s.silent_days)} THEN 'silent' "
        f"WHEN b.first_recent = b.last_at AND {d.whole_days('b.before_recent', 'b.last_at')} > {int(s.churned_days)} "
        f"THEN 'recalled' "
        f"ELSE 'active' END AS stage "
        f"FROM (SELECT a.*, "
        f"{ntile.format('a.recency_days DESC, a.member_id)')} AS r_score, "
        f"{ntile.format('a.frequency, a.member_id)')} AS f_score, "
        f"{ntile.format('a.monetary, a.member_id)')} AS m_score "
        f"FROM (SELECT g.*, {d.whole_days('g.last_in_window', '%(now)s')} AS recency_days, "
        f"{d.whole_days('g.first_at', '%(now)s')} AS first_days, {d.whole_days('g.last_at', '%(now)s')} AS last_days "
        f"FROM ({' UNION ALL '.join(per_brand)}) g) a) b")
    execute(f"DROP {'TEMPORARY ' if connection.vendor == 'mysql' else ''}TABLE IF EXISTS {FLOOR_TABLE}")
    params = {"now": adapt(now), "start": adapt(start),
              "recent": adapt(now - dt.timedelta(days=int(s.silent_days) + 2))}

    def run():
        with transaction.atomic():
            if connection.vendor == "postgresql":  # what the service gives itself (analytics.sql)
                execute("SET LOCAL jit = off")
                execute("SET LOCAL work_mem = '64MB'")
            execute(sql, params)

    return timed(run)[1]


def compare_models(now) -> dict:
    """Rows of the floor's table that the service wrote identically, and what differs."""
    from django.db import connection

    from siyu.analytics.models import MemberLifecycle, MemberRfm

    collate = " COLLATE utf8mb4_bin" if connection.vendor == "mysql" else ""
    recency = Dialect(connection.vendor, 0).whole_days("r.last_order_at", "%(now)s")
    at = {"now": connection.ops.adapt_datetimefield_value(now)}
    rfm_same = scalar(
        f"SELECT COUNT(*) FROM {FLOOR_TABLE} f JOIN {table(MemberRfm)} r ON r.member_id = f.member_id "
        f"AND r.brand_id = f.brand_id WHERE {recency} = f.recency_days AND r.frequency = f.frequency "
        f"AND ABS(r.monetary - f.monetary) < 0.005 AND r.r_score = f.r_score AND r.f_score = f.f_score "
        f"AND r.m_score = f.m_score AND r.rfm_class = f.rfm_class{collate}", at)
    stage_same = scalar(
        f"SELECT COUNT(*) FROM {FLOOR_TABLE} f JOIN {table(MemberLifecycle)} l ON l.member_id = f.member_id "
        f"AND l.brand_id = f.brand_id WHERE l.stage = f.stage{collate}")
    rfm_floor = scalar(f"SELECT COUNT(*) FROM {FLOOR_TABLE} WHERE frequency > 0")
    stage_floor = scalar(f"SELECT COUNT(*) FROM {FLOOR_TABLE}")
    result = {"rfm_rows": rfm_floor, "lifecycle_rows": stage_floor,
              "rfm_service_rows": MemberRfm.objects.count(), "lifecycle_service_rows": MemberLifecycle.objects.count(),
              "rfm_same": rfm_same, "lifecycle_same": stage_same}
    result["match"] = (rfm_same == rfm_floor == result["rfm_service_rows"]
                       and stage_same == stage_floor == result["lifecycle_service_rows"])
    if not result["match"]:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT f.brand_id, f.member_id, f.recency_days, f.frequency, f.monetary, f.r_score, "
                           f"f.f_score, f.m_score, f.rfm_class, r.last_order_at, r.frequency, r.monetary, r.r_score, "
                           f"r.f_score, r.m_score, r.rfm_class FROM {FLOOR_TABLE} f LEFT JOIN {table(MemberRfm)} r "
                           f"ON r.member_id = f.member_id AND r.brand_id = f.brand_id WHERE f.frequency > 0 AND "
                           f"(r.member_id IS NULL OR r.r_score <> f.r_score OR r.f_score <> f.f_score OR "
                           f"r.m_score <> f.m_score OR ABS(r.monetary - f.monetary) >= 0.005) LIMIT 5")
            result["rfm_examples"] = [[str(v) for v in row] for row in cursor.fetchall()]
            cursor.execute(f"SELECT f.brand_id, f.member_id, f.stage, l.stage FROM {FLOOR_TABLE} f "
                           f"LEFT JOIN {table(MemberLifecycle)} l ON l.member_id = f.member_id "
                           f"AND l.brand_id = f.brand_id WHERE l.stage IS NULL OR l.stage <> f.stage{collate} LIMIT 5")
            result["lifecycle_examples"] = [[str(v) for v in row] for row in cursor.fetchall()]
    return result


class CommitTimer:
    """Time the connection's commits (deferred foreign-key checks run there, unseen by SqlTimer)."""

    def __init__(self, connection):
        self.connection, self.calls, self.seconds = connection, 0, 0.0

    def __enter__(self):
        original = self.connection._commit

        def commit():
            started = time.perf_counter()
            try:
                return original()
            finally:
                self.calls += 1
                self.seconds += time.perf_counter() - started

        self.connection._commit = commit
        return self

    def __exit__(self, *exc):
        del self.connection._commit  # back to the class's method


def bench_models(args) -> dict | None:
    from django.db import connection

    try:
        from siyu.analytics.services import recompute_models
    except ImportError as exc:
        log(f"RFM: siyu.analytics.services.recompute_models is missing ({exc}): reported as null")
        return None
    from django.core.management.color import no_style

    from siyu.analytics.models import MemberLifecycle, MemberRfm, ModelChange

    tables = [m._meta.db_table for m in (ModelChange, MemberRfm, MemberLifecycle)]
    connection.ops.execute_sql_flush(connection.ops.sql_flush(no_style(), tables, allow_cascade=True))
    from siyu.tags.models import MemberTag, MemberTagChange

    MemberTagChange.objects.filter(source="model").delete()
    MemberTag.objects.filter(source="model").delete()
    if connection.vendor == "postgresql":
        execute("VACUUM ANALYZE tags_membertag")
        execute("VACUUM ANALYZE tags_membertagchange")
    runs = []
    for label, now in (("first", NOW), ("next_day", NOW + dt.timedelta(days=1))):
        log(f"RFM + lifecycle ({label}): service …")
        timer = SqlTimer()
        with connection.execute_wrapper(timer), CommitTimer(connection) as commits:
            result, seconds = timed(lambda now=now: recompute_models(now=now))
        log(f"RFM + lifecycle ({label}): service {seconds:.1f}s; floor …")
        floor_seconds = floor_models(now)
        check = compare_models(now)
        log(f"RFM + lifecycle ({label}): floor {floor_seconds:.1f}s, same results: {check['match']}")
        statements = timer.report(top=8)
        if args.profile_sql:
            log(json.dumps(statements, ensure_ascii=False, indent=1))
        runs.append({"run": label, "now": now.isoformat(), "service_s": round(seconds, 2),
                     "floor_s": round(floor_seconds, 2), "ratio": round(seconds / floor_seconds, 2),
                     "result": result.as_dict() if hasattr(result, "as_dict") else repr(result),
                     "commits": commits.calls, "commit_s": round(commits.seconds, 2),
                     "check": check, "top_statements": statements})
    execute(f"DROP {'TEMPORARY ' if connection.vendor == 'mysql' else ''}TABLE IF EXISTS {FLOOR_TABLE}")
    return {"runs": runs, "model_changes": ModelChange.objects.count()}


# -- main ------------------------------------------------------------------------------------
def counts() -> dict:
    from django.db.models import Count

    from siyu.commerce.models import MemberStats, Order
    from siyu.events.models import Event
    from siyu.members.models import Member
    from siyu.org.models import Brand, Staff, Store
    from siyu.tags.models import MemberTag

    buyers = MemberStats.objects.filter(order_count__gt=0)
    repeat = buyers.filter(order_count__gt=1).count()
    return {
        "brands": Brand.objects.count(), "stores": Store.objects.count(), "guides": Staff.objects.count(),
        "members": Member.objects.count(), "orders": Order.objects.count(),
        "orders_counted": Order.objects.filter(is_counted=True).count(), "events": Event.objects.count(),
        "check_ins": Event.objects.filter(kind="check_in").count(), "member_tags": MemberTag.objects.count(),
        "mother_baby": MemberTag.objects.filter(tag__code="mother-baby").count(),
        "buyers": buyers.count(), "repeat_buyers": repeat,
        "max_orders_per_member": MemberStats.objects.order_by("-order_count").values_list("order_count",
                                                                                           flat=True).first(),
        "members_in_shanghai": Member.objects.filter(city="上海").count(),
        "members_by_brand": dict(Member.objects.values_list("store__brand__code").annotate(n=Count("pk"))
                                 .values_list("store__brand__code", "n")),
    }


def server_settings() -> dict:
    from django.db import connection

    if connection.vendor != "postgresql":
        return {}
    names = ("shared_buffers", "work_mem", "effective_cache_size", "jit", "max_parallel_workers_per_gather")
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", [list(names)])
        return {name: f"{setting}{' × ' + unit if unit else ''}" for name, setting, unit in cursor.fetchall()}


def main(argv=None) -> dict:
    args = parse_args(argv)
    import django

    django.setup()
    from django.db import connection

    exit_code = 0
    with throwaway_database("segments", keep=args.keep, reuse=args.reuse):
        from siyu.members.models import Member

        d = Dialect(connection.vendor, args.seed)
        load = {"reused": True} if args.reuse and Member.objects.exists() else Loader(args, d).run()
        rows = counts()
        log(f"data: {json.dumps(rows, ensure_ascii=False)}")
        segment = bench_segment(args)
        models = None if args.skip_rfm else bench_models(args)
        if models and not all(run["check"]["match"] for run in models["runs"]):
            exit_code = 1
        report = {
            "bench": "segments",
            "database": connection.vendor,
            "database_version": ".".join(map(str, connection.get_database_version())),
            "members": rows["members"], "orders": rows["orders"], "events": rows["events"], "seed": args.seed,
            "server": server_settings(),
            "now": NOW.isoformat(),
            "load_seconds": load,
            "segment_count": segment,
            "rfm_lifecycle": models,
            "counts": rows,
        }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    if exit_code:
        log("the service's RFM/lifecycle rows differ from the floor's: see rfm_lifecycle.runs[].check")
        sys.exit(exit_code)
    return report


if __name__ == "__main__":
    main()
