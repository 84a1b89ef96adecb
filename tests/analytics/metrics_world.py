"""A generated little world for the metric tests, and a plain-Python reference over its rows.

The world is recorded through the services (orders with lines and refunds through
``record_orders``, so member stats are what ingestion maintains) with the edge cases the
metrics must get right: refunds (partial and full), closed orders, orders without a member,
members without orders, merged members, orders and joins a second either side of midnight
Shanghai time, and a period with nothing in it.

The reference reads the raw rows back with ``values()`` and computes every figure in Python,
sharing no code with ``siyu.analytics.metrics``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import zoneinfo
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from siyu.commerce.models import Order, OrderLine, Product
from siyu.commerce.services import record_orders
from siyu.events.models import Event
from siyu.members.models import Member
from siyu.org.models import Role, Store
from siyu.segments.models import Segment, SegmentKind, SegmentMember
from tests.factories import make_brand, make_channel, make_member, make_product, make_region, make_staff, make_store

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
UTC = dt.UTC
#: Midnight at the start of 1 May and of 1 June in Shanghai, as UTC instants.
MAY_1 = dt.datetime(2026, 4, 30, 16, 0, tzinfo=UTC)
JUNE_1 = dt.datetime(2026, 5, 31, 16, 0, tzinfo=UTC)
SECOND = dt.timedelta(seconds=1)
PRODUCTS = [("SKU-A", "traffic"), ("SKU-B", "main"), ("SKU-C", "hot"), ("SKU-D", "main"), ("SKU-E", "clearance")]


@dataclass
class World:
    members: list[Member]
    segment: Segment
    manager: object  # a store manager of sh-01 (data scope: own store)


def q(value, places="0.0001"):
    return Decimal(value).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def rate(part, whole, places="0.0001"):
    return None if not whole else q(Decimal(part) / Decimal(whole), places)


def build_world(seed: int = 6) -> World:
    rng = random.Random(seed)
    east, north = make_region("east"), make_region("north")
    brand_a, brand_b = make_brand("brand-a"), make_brand("brand-b")
    stores = [make_store("sh-01", brand=brand_a, region=east), make_store("bj-01", brand=brand_a, region=north),
              make_store("gz-01", brand=brand_b, region=east)]
    channels = [make_channel(f"pos-{s.code}", store=s) for s in stores]
    channels.append(make_channel("tmall", kind="marketplace", store=None))
    guides = {s.code: make_staff(f"guide-{s.code}", store=s) for s in stores}
    manager = make_staff("manager-sh", role=Role.STORE_MANAGER, store=stores[0])
    for sku, role in PRODUCTS:
        make_product(sku, role=role, name=f"商品{sku}")

    members = []
    for n in range(40):
        joined = dt.datetime(2026, 3, 1, tzinfo=UTC) + dt.timedelta(seconds=rng.randrange(0, 130 * 86400))
        if n == 0:
            joined = MAY_1  # 00:00 on 1 May in Shanghai: a May member
        if n == 1:
            joined = MAY_1 - SECOND  # 23:59:59 on 30 April in Shanghai: an April member
        store = rng.choice([*stores, None])
        members.append(make_member(
            joined_at=joined, store=store, guide=guides[store.code] if store and rng.random() < 0.7 else None,
            is_wecom_friend=rng.random() < 0.5, in_group=rng.random() < 0.3, follows_oa=rng.random() < 0.3,
            mini_program_authorized=rng.random() < 0.2, status="frozen" if n == 5 else "active"))
    merged = make_member(joined_at=MAY_1 + dt.timedelta(days=3), store=stores[0], status="merged",
                         is_wecom_friend=True)
    buyers = members[:30]  # members[30:] never order

    rows = []
    for n in range(260):
        channel = rng.choice(channels)
        at = dt.datetime(2026, 3, 1, tzinfo=UTC) + dt.timedelta(seconds=rng.randrange(0, 135 * 86400))
        boundary = {0: MAY_1, 1: MAY_1 - SECOND, 2: JUNE_1, 3: JUNE_1 - SECOND}
        at = boundary.get(n, at)
        member = rng.choice(buyers) if rng.random() > 0.15 else None
        if n in (0, 1, 2, 3):
            member = members[0]
        paid = Decimal(rng.randrange(500, 300000)) / 100
        row = {"channel": channel.code, "external_id": f"o{n}", "paid_amount": str(paid),
               "ordered_at": at.isoformat(), "status": rng.choice(["paid"] * 5 + ["completed"] * 3 + ["closed"])}
        if member is not None:
            row["member_id"] = member.pk
        if channel.store is not None:
            row["store"] = channel.store.code
        lines, left = [], paid
        for i in range(rng.randrange(1, 4)):
            sku = rng.choice([p for p, _role in PRODUCTS] + ["NO-SUCH-SKU"])
            amount = left if i == 2 else q(left * Decimal(rng.choice(["0.3", "0.5", "1"])), "0.01")
            left -= amount
            lines.append({"sku": sku, "name": sku, "quantity": rng.randrange(1, 4), "amount": str(amount)})
            if left <= 0:
                break
        row["lines"] = lines
        chance = rng.random()
        if chance < 0.1:
            row["refunds"] = [{"amount": str(paid), "external_id": "r1"}]
        elif chance < 0.25:
            row["refunds"] = [{"amount": str(q(paid / 3, "0.01")), "external_id": "r1"}]
        rows.append(row)
    # the merged member's order stays on the merged record: it counts as a member order
    rows.append({"channel": "pos-sh-01", "external_id": "merged-1", "member_id": merged.pk, "paid_amount": "88.00",
                 "store": "sh-01", "ordered_at": (MAY_1 + dt.timedelta(days=4)).isoformat()})
    result = record_orders(rows=rows, source="test")
    assert not result.rejected, result.rejected

    events = []
    for n in range(150):
        at = dt.datetime(2026, 4, 1, tzinfo=UTC) + dt.timedelta(seconds=rng.randrange(0, 90 * 86400))
        at = {0: JUNE_1, 1: JUNE_1 - SECOND}.get(n, at)
        events.append(Event(member=rng.choice(members), kind="store_visit", occurred_at=at,
                            store=rng.choice(stores), idempotency_key=f"visit-{n}"))
    events.append(Event(member=members[2], kind="check_in", occurred_at=MAY_1 + dt.timedelta(days=1),
                        idempotency_key="not-a-visit"))
    Event.objects.bulk_create(events)

    segment = Segment.objects.create(code="vip-list", name="VIP", kind=SegmentKind.STATIC)
    SegmentMember.objects.bulk_create(SegmentMember(segment=segment, member=m) for m in members[::3])
    return World(members=members, segment=segment, manager=manager)


# --- the reference ------------------------------------------------------------------------------

def local(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(SHANGHAI)


def bounds(start: dt.date, end: dt.date):
    return (dt.datetime.combine(start, dt.time.min, tzinfo=SHANGHAI),
            dt.datetime.combine(end, dt.time.min, tzinfo=SHANGHAI))


class Reference:
    """Every figure computed in Python from the rows, for one set of filters."""

    def __init__(self, *, start, end, brand=None, region=None, store=None, channel=None, segment=None,
                 scope_store=None):
        self.start, self.end = start, end
        self.stores = {s["pk"]: s for s in Store.objects.values("pk", "code", "brand__code", "region__code")}
        self.members = {m["id"]: {**m, "pk": m["id"]} for m in Member.objects.values()}
        self.orders = list(Order.objects.values("pk", "member_id", "channel__code", "store_id", "is_counted",
                                                "paid_amount", "refunded_amount", "item_count", "ordered_at"))
        self.segment_ids = set(SegmentMember.objects.filter(segment__code=segment).values_list("member_id", flat=True))
        self.filters = {"brand": brand, "region": region, "store": store, "channel": channel, "segment": segment}
        self.scope_store = scope_store

    # which rows count
    def store_ok(self, store_id) -> bool:
        f = self.filters
        store = self.stores.get(store_id)
        if f["store"] and (store is None or store["code"] != f["store"]):
            return False
        if f["brand"] and (store is None or store["brand__code"] != f["brand"]):
            return False
        return not (f["region"] and (store is None or store["region__code"] != f["region"]))

    def order_ok(self, o, start=None, end=None, timed=True) -> bool:
        lo, hi = bounds(start or self.start, end or self.end)
        if not o["is_counted"] or (timed and not lo <= o["ordered_at"] < hi):
            return False
        if not self.store_ok(o["store_id"]):
            return False
        if self.filters["channel"] and o["channel__code"] != self.filters["channel"]:
            return False
        if self.filters["segment"] and o["member_id"] not in self.segment_ids:
            return False
        if not self.scope_store:
            return True
        return o["member_id"] is not None and self.member_store(o["member_id"]) == self.scope_store

    def member_store(self, member_id):
        store = self.stores.get(self.members[member_id]["store_id"])
        return store["code"] if store else None

    def member_ok(self, m) -> bool:
        f = self.filters
        if m["status"] not in ("active", "frozen"):
            return False
        if not self.store_ok(m["store_id"]):
            return False
        if f["channel"] and not any(o["member_id"] == m["pk"] and o["is_counted"] and o["channel__code"] == f["channel"]
                                    for o in self.orders):
            return False
        if f["segment"] and m["pk"] not in self.segment_ids:
            return False
        return not (self.scope_store and self.member_store(m["pk"]) != self.scope_store)

    def period_orders(self, start=None, end=None):
        return [o for o in self.orders if self.order_ok(o, start, end)]

    @staticmethod
    def net(o) -> Decimal:
        return o["paid_amount"] - o["refunded_amount"]

    # the figures
    def member_share(self):
        orders = self.period_orders()
        mine = [o for o in orders if o["member_id"] is not None]
        amount = sum((self.net(o) for o in orders), Decimal("0.00"))
        member_amount = sum((self.net(o) for o in mine), Decimal("0.00"))
        return {"orders": len(orders), "member_orders": len(mine), "amount": amount, "member_amount": member_amount,
                "by_orders": rate(len(mine), len(orders)), "by_amount": rate(member_amount, amount)}

    def contribution_parts(self, start=None, end=None):
        mine = [o for o in self.period_orders(start, end) if o["member_id"] is not None]
        return (len({o["member_id"] for o in mine}), len(mine), sum((self.net(o) for o in mine), Decimal("0.00")),
                sum(o["item_count"] for o in mine))

    def contribution(self):
        active, orders, amount, items = self.contribution_parts()
        return {"active_members": active, "orders": orders, "amount": amount, "items": items,
                "frequency": rate(orders, active), "average_order_value": rate(amount, orders, "0.01"),
                "items_per_order": rate(items, orders), "per_member": rate(amount, active, "0.01"),
                "contribution": amount}

    def online_rate(self):
        members = [m for m in self.members.values() if self.member_ok(m)]
        flags = {"wecom_friend": "is_wecom_friend", "group": "in_group", "official_account": "follows_oa",
                 "mini_program": "mini_program_authorized"}
        reachable = [m for m in members if any(m[c] for c in flags.values())]
        return {"members": len(members), "reachable": len(reachable), "rate": rate(len(reachable), len(members)),
                "by_channel": {k: {"members": sum(1 for m in members if m[c]),
                                   "rate": rate(sum(1 for m in members if m[c]), len(members))}
                               for k, c in flags.items()}}

    def new_members(self, within_days=30):
        lo, hi = bounds(self.start, self.end)
        new = [m for m in self.members.values() if self.member_ok(m) and lo <= m["joined_at"] < hi]
        converted = [m for m in new if any(
            o["member_id"] == m["pk"] and self.order_ok(o, timed=False)
            and m["joined_at"] <= o["ordered_at"] < m["joined_at"] + dt.timedelta(days=within_days)
            for o in self.orders)]
        return {"new_members": len(new), "converted": len(converted), "within_days": within_days,
                "conversion_rate": rate(len(converted), len(new))}

    def repurchase(self):
        per = defaultdict(list)
        for o in self.period_orders():
            if o["member_id"] is not None:
                per[o["member_id"]].append(o["ordered_at"])
        repeat = {m: sorted(times) for m, times in per.items() if len(times) >= 2}
        gaps = [b - a for times in repeat.values() for a, b in itertools.pairwise(times)]
        total = sum(gaps, dt.timedelta())
        return {"buyers": len(per), "repeat_buyers": len(repeat), "rate": rate(len(repeat), len(per)),
                "interval_days": rate(Decimal(total.total_seconds()) / 86400, len(gaps), "0.01") if gaps else None}

    def new_vs_returning(self):
        lo, _hi = bounds(self.start, self.end)
        first = {}
        for o in self.orders:
            if o["is_counted"] and o["member_id"] is not None:
                first[o["member_id"]] = min(first.get(o["member_id"], o["ordered_at"]), o["ordered_at"])
        mine = [o for o in self.period_orders() if o["member_id"] is not None]
        new = [o for o in mine if first[o["member_id"]] >= lo]
        old = [o for o in mine if first[o["member_id"]] < lo]
        total = sum((self.net(o) for o in mine), Decimal("0.00"))

        def side(orders):
            amount = sum((self.net(o) for o in orders), Decimal("0.00"))
            return {"members": len({o["member_id"] for o in orders}), "orders": len(orders), "amount": amount,
                    "share_of_amount": rate(amount, total)}
        return {"new": side(new), "returning": side(old)}

    def channel_mix(self):
        by = defaultdict(list)
        for o in self.period_orders():
            by[o["channel__code"]].append(o)
        total = sum((self.net(o) for o in self.period_orders()), Decimal("0.00"))
        rows = [{"channel": c, "orders": len(os), "member_orders": sum(1 for o in os if o["member_id"]),
                 "amount": sum((self.net(o) for o in os), Decimal("0.00"))} for c, os in by.items()]
        for r in rows:
            r["share_of_amount"] = rate(r["amount"], total)
        return sorted(rows, key=lambda r: (-r["amount"], r["channel"]))

    def trend(self):
        days = {self.start + dt.timedelta(days=n): [] for n in range((self.end - self.start).days)}
        for o in self.period_orders():
            days[local(o["ordered_at"]).date()].append(o)
        return [{"day": d, "orders": len(os), "member_orders": sum(1 for o in os if o["member_id"]),
                 "amount": sum((self.net(o) for o in os), Decimal("0.00")),
                 "member_amount": sum((self.net(o) for o in os if o["member_id"]), Decimal("0.00"))}
                for d, os in days.items()]

    def hours(self):
        cells = defaultdict(list)
        for o in self.period_orders():
            at = local(o["ordered_at"])
            cells[(at.isoweekday(), at.hour)].append(o)
        return [{"weekday": w, "hour": h, "orders": len(os), "amount": sum((self.net(o) for o in os), Decimal("0.00"))}
                for (w, h), os in sorted(cells.items())]

    def amount_histogram(self, bands=(0, 50, 100, 200, 500, 1000, 2000, 5000)):
        counts = Counter()
        for o in self.period_orders():
            counts[max(i for i, lower in enumerate(bands) if self.net(o) >= lower)] += 1
        total = sum(counts.values())
        return [counts[i] for i in range(len(bands))], [rate(counts[i], total) for i in range(len(bands))]

    def store_visits(self):
        lo, hi = bounds(self.start, self.end)
        visits = [e for e in Event.objects.values("member_id", "kind", "occurred_at", "store_id")
                  if e["kind"] == "store_visit" and lo <= e["occurred_at"] < hi and self.store_ok(e["store_id"])
                  and (not (self.filters["channel"] or self.filters["segment"] or self.scope_store)
                       or self.member_ok(self.members[e["member_id"]]))]
        visitors = len({e["member_id"] for e in visits})
        weeks = Decimal((self.end - self.start).days) / 7
        return {"visits": len(visits), "visitors": visitors,
                "per_member_per_week": rate(len(visits), visitors * weeks) if visitors else None}

    def top_products(self, limit=10):
        orders = {o["pk"] for o in self.period_orders()}
        by = defaultdict(lambda: {"quantity": 0, "amount": Decimal("0.00"), "orders": set()})
        for line in OrderLine.objects.values("order_id", "sku", "quantity", "amount"):
            if line["order_id"] in orders:
                row = by[line["sku"]]
                row["quantity"] += line["quantity"]
                row["amount"] += line["amount"]
                row["orders"].add(line["order_id"])
        rows = [{"sku": s, "quantity": r["quantity"], "amount": r["amount"], "orders": len(r["orders"])}
                for s, r in by.items()]
        return sorted(rows, key=lambda r: (-r["amount"], r["sku"]))[:limit]

    def product_roles(self):
        roles = dict(Product.objects.values_list("sku", "role"))
        orders = {o["pk"] for o in self.period_orders()}
        by = defaultdict(lambda: [0, Decimal("0.00")])
        for line in OrderLine.objects.values("order_id", "product_id", "sku", "quantity", "amount"):
            if line["order_id"] in orders:
                role = roles.get(line["sku"], "") if line["product_id"] else ""
                by[role][0] += line["quantity"]
                by[role][1] += line["amount"]
        return {role: (n, amount) for role, (n, amount) in by.items()}

    def cohorts(self, today: dt.date):
        def month(moment):
            d = local(moment).date()
            return d.year * 12 + d.month - 1
        first = self.start.year * 12 + self.start.month - 1
        last_day = self.end - dt.timedelta(days=1)
        last = min(last_day.year * 12 + last_day.month - 1, today.year * 12 + today.month - 1)
        now = today.year * 12 + today.month - 1
        members = [m for m in self.members.values() if self.member_ok(m) and first <= month(m["joined_at"]) <= last]
        rows = []
        for index in range(first, last + 1):
            cohort = {m["pk"] for m in members if month(m["joined_at"]) == index}
            counts = []
            for k in range(now - index + 1):
                counts.append(len({o["member_id"] for o in self.orders if o["member_id"] in cohort
                                   and self.order_ok(o, timed=False) and month(o["ordered_at"]) == index + k}))
            rows.append({"cohort": f"{index // 12}-{index % 12 + 1:02d}", "members": len(cohort), "buyers": counts,
                         "retention": [rate(n, len(cohort)) for n in counts]})
        return rows

    def league(self, by="store"):
        lo, hi = bounds(self.start, self.end)
        col = f"{by}_id"
        owned = defaultdict(lambda: [0, 0])
        for m in self.members.values():
            if self.member_ok(m) and m[col] is not None:
                owned[m[col]][0] += 1
                owned[m[col]][1] += lo <= m["joined_at"] < hi
        sales = defaultdict(lambda: [0, Decimal("0.00")])
        for o in self.period_orders():
            if o["member_id"] is not None and self.members[o["member_id"]][col] is not None:
                key = self.members[o["member_id"]][col]
                sales[key][0] += 1
                sales[key][1] += self.net(o)
        return {k: (owned[k][0], owned[k][1], sales[k][0], sales[k][1]) for k in set(owned) | set(sales)}

    # product analysis
    def period_lines(self):
        orders = {o["pk"]: o for o in self.period_orders()}
        return [line for line in OrderLine.objects.values("order_id", "product_id", "quantity")
                if line["order_id"] in orders and line["product_id"] is not None], orders

    def co_purchase(self, min_orders=2):
        lines, _orders = self.period_lines()
        products = defaultdict(set)
        for line in lines:
            products[line["order_id"]].add(line["product_id"])
        total = len(products)
        with_a = Counter(p for ps in products.values() for p in ps)
        pairs = Counter((a, b) for ps in products.values() for a in ps for b in ps if a < b)
        skus = dict(Product.objects.values_list("pk", "sku"))
        rows = [{"a": skus[a], "b": skus[b], "orders": n, "support": rate(n, total),
                 "confidence_a_b": rate(n, with_a[a]), "confidence_b_a": rate(n, with_a[b]),
                 "lift": rate(Decimal(n) * total, Decimal(with_a[a]) * with_a[b])}
                for (a, b), n in pairs.items() if n >= min_orders]
        return {"orders": total, "pairs": sorted(rows, key=lambda r: (-r["orders"], r["a"], r["b"]))[:20]}

    def product_repurchase(self, min_buyers=2):
        lines, orders = self.period_lines()
        bought = defaultdict(lambda: defaultdict(set))
        for line in lines:
            member = orders[line["order_id"]]["member_id"]
            if member is not None:
                bought[line["product_id"]][member].add(line["order_id"])
        skus = dict(Product.objects.values_list("pk", "sku"))
        rows = []
        for product, members in bought.items():
            again = sum(1 for os in members.values() if len(os) >= 2)
            if len(members) >= min_buyers:
                rows.append({"sku": skus[product], "buyers": len(members), "repeat_buyers": again,
                             "rate": rate(again, len(members))})
        return sorted(rows, key=lambda r: (-r["rate"], -r["buyers"], r["sku"]))[:20]

    def slow_movers(self, days=30):
        recent = Reference(start=self.end - dt.timedelta(days=days), end=self.end, scope_store=self.scope_store,
                           **self.filters)
        sold = {line["product_id"] for line in recent.period_lines()[0]}
        lines = OrderLine.objects.values("order_id", "product_id")
        at = {o["pk"]: o["ordered_at"] for o in self.orders if self.order_ok(o, timed=False)}
        result = []
        for p in Product.objects.filter(is_active=True).order_by("sku").values("pk", "sku"):
            if p["pk"] not in sold:
                times = [at[line["order_id"]] for line in lines if line["product_id"] == p["pk"]
                         and line["order_id"] in at]
                result.append({"sku": p["sku"], "last_sold_at": max(times) if times else None})
        return result

    def funnel(self, steps, window_days=30):
        """Brute force: every step's moments per member, walked in order."""
        lo, hi = bounds(self.start, self.end)
        window = dt.timedelta(days=window_days)
        events = list(Event.objects.values("member_id", "kind", "occurred_at"))

        def moments(step, until):
            kind, _sep, detail = step.partition(":")
            found = defaultdict(list)
            if kind == "join":
                for m in self.members.values():
                    if self.member_ok(m) and lo <= m["joined_at"] < until:
                        found[m["pk"]].append(m["joined_at"])
            elif kind == "order":
                for o in self.orders:
                    if o["member_id"] is not None and self.order_ok(o, timed=False) and lo <= o["ordered_at"] < until:
                        found[o["member_id"]].append(o["ordered_at"])
            else:
                for e in events:
                    if e["kind"] == detail and lo <= e["occurred_at"] < until and self.member_ok(
                            self.members[e["member_id"]]):
                        found[e["member_id"]].append(e["occurred_at"])
            return found
        per_step = [moments(step, hi if n == 0 else hi + window) for n, step in enumerate(steps)]
        reached, waits = [0] * len(steps), [[] for _s in steps]
        for member, times in per_step[0].items():
            entry = previous = min(times)
            reached[0] += 1
            for n in range(1, len(steps)):
                after = [t for t in per_step[n].get(member, []) if previous < t < entry + window]
                if not after:
                    break
                waits[n].append(min(after) - previous)
                previous = min(after)
                reached[n] += 1

        def median_hours(values):
            if not values:
                return None
            values = sorted(values)
            mid = len(values) // 2
            middle = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
            return q(Decimal(middle.total_seconds()) / 3600, "0.01")
        return [{"step": step, "members": reached[n], "from_previous": rate(reached[n], reached[n - 1]) if n else None,
                 "from_entry": rate(reached[n], reached[0]), "median_hours_from_previous": median_hours(waits[n])}
                for n, step in enumerate(steps)]

    def geography(self):
        cities = dict(Store.objects.values_list("pk", "city"))
        result = {}
        for key, name_of in (("regions", lambda o: (self.stores.get(o["store_id"]) or {}).get("region__code") or ""),
                             ("cities", lambda o: cities.get(o["store_id"]) or "")):
            by = defaultdict(lambda: [0, Decimal("0.00")])
            for o in self.period_orders():
                by[name_of(o)][0] += 1
                by[name_of(o)][1] += self.net(o)
            result[key] = sorted(({"name": k, "orders": n, "amount": a} for k, (n, a) in by.items()),
                                 key=lambda r: (-r["amount"], r["name"]))
        return result
