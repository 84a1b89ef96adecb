"""A little loyalty world for the loyalty figures, recorded through the real services, and a
plain-Python reference over its rows.

Brand-a has its own program (``vip``, points expire 20 days after earning, tiers silver and
gold); brand-b belongs to the group-wide program (``all``). Orders earn through ``record_orders``,
refunds reverse (one into debt after the points were spent), points are spent and adjusted
through the ledger, lots expire through ``expire_points``, coupons are issued and redeemed
through ``siyu.loyalty.coupons``. One member never bought (no account); one member of brand-a
buys in brand-b's store (a group-wide account of a brand-a member).

The reference reads the raw rows back with ``values()`` and computes every figure in Python,
sharing no code with ``siyu.analytics.metrics.loyalty``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from siyu.commerce.models import Order
from siyu.commerce.services import record_orders
from siyu.loyalty.coupon_models import Coupon, CouponKind, CouponTemplate
from siyu.loyalty.coupons import issue_to_members, redeem_coupon
from siyu.loyalty.ledger import adjust_points, expire_points, spend_points
from siyu.loyalty.models import ExpiryPolicy, LoyaltyProgram, MemberTier, PointsAccount, PointsEntry, Tier
from siyu.members.models import Member
from tests.factories import make_brand, make_channel, make_member, make_program, make_region, make_store, make_tier

UTC = dt.UTC
#: Midnight at the start of 1 April, 1 May and 1 June in Shanghai, as UTC instants.
APRIL_1 = dt.datetime(2026, 3, 31, 16, 0, tzinfo=UTC)
MAY_1 = dt.datetime(2026, 4, 30, 16, 0, tzinfo=UTC)
JUNE_1 = dt.datetime(2026, 5, 31, 16, 0, tzinfo=UTC)
SECOND = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)

_numbers = itertools.count(1)


@dataclass
class LoyaltyWorld:
    vip: LoyaltyProgram
    group: LoyaltyProgram
    members: dict[str, Member]
    tiers: dict[str, Tier]


def _order(member, channel: str, paid: str, when: dt.datetime, **extra) -> dict:
    row = {"channel": channel, "external_id": f"L{next(_numbers)}", "member_id": member.pk if member else None,
           "paid_amount": paid, "ordered_at": when.isoformat(), **extra}
    result = record_orders(rows=[row], source="test")
    assert not result.rejected, result.rejected
    return row


def build_loyalty_world() -> LoyaltyWorld:
    east, north = make_region("east"), make_region("north")
    brand_a, brand_b = make_brand("brand-a"), make_brand("brand-b")
    sh = make_store("sh-01", brand=brand_a, region=east)
    bj = make_store("bj-01", brand=brand_a, region=north)
    gz = make_store("gz-01", brand=brand_b, region=east)
    for store in (sh, bj, gz):
        make_channel(f"pos-{store.code}", store=store)
    vip = make_program("vip", brand=brand_a, expiry_policy=ExpiryPolicy.DAYS, expiry_n=20)
    group = make_program("all", group_wide=True)
    tiers = {"silver": make_tier(vip, "silver", 0), "gold": make_tier(vip, "gold", 1, min_paid_amount="500"),
             "fan": make_tier(group, "fan", 0), "star": make_tier(group, "star", 1, min_order_count=2)}
    m = {name: make_member(name=name, joined_at=APRIL_1 - 30 * DAY, store=store) for name, store in (
        ("ann", sh), ("bob", sh), ("cat", bj), ("dan", bj), ("eve", gz), ("fay", gz), ("gus", sh), ("hal", None))}

    # April (the previous period): earnings that expire in May, a spend.
    _order(m["ann"], "pos-sh-01", "120.00", APRIL_1 + 2 * DAY)
    _order(m["bob"], "pos-sh-01", "80.00", APRIL_1 + 5 * DAY)
    _order(m["eve"], "pos-gz-01", "60.00", APRIL_1 + 6 * DAY)
    spend_points(member=m["ann"], program=vip, amount=20, reason="兑换", source="redemption:1",
                 idempotency_key="spend-april", now=APRIL_1 + 8 * DAY)
    # May: orders a second either side of the period's edges, a big buyer (gold), a refund, a spend.
    _order(m["cat"], "pos-bj-01", "600.00", MAY_1)
    _order(m["dan"], "pos-bj-01", "50.00", MAY_1 - SECOND)  # 23:59:59 on 30 April: April's
    _order(m["dan"], "pos-bj-01", "70.00", JUNE_1 - SECOND)  # 23:59:59 on 31 May: May's
    _order(m["fay"], "pos-gz-01", "90.00", MAY_1 + 3 * DAY)
    _order(m["fay"], "pos-gz-01", "30.00", MAY_1 + 4 * DAY)  # second order: star
    _order(m["ann"], "pos-gz-01", "40.00", MAY_1 + 6 * DAY)  # a brand-a member in the group-wide program
    refunded = _order(m["bob"], "pos-sh-01", "100.00", MAY_1 + 7 * DAY)
    spend_points(member=m["bob"], program=vip, amount=150, reason="兑换", source="redemption:2",
                 idempotency_key="spend-may", now=MAY_1 + 8 * DAY)
    # Bob spent what the order earned: the full refund takes back 30 and owes the rest (debt).
    record_orders(rows=[{**refunded, "refunds": [{"external_id": "R1", "amount": "100.00",
                                                  "refunded_at": (MAY_1 + 9 * DAY).isoformat()}]}], source="test")
    adjust_points(member=m["cat"], program=vip, amount=-100, reason="纠错", actor="test",
                  idempotency_key="adjust-cat", now=MAY_1 + 10 * DAY)
    _order(m["bob"], "pos-sh-01", "50.00", MAY_1 + 12 * DAY)  # settles bob's debt
    _order(m["gus"], "pos-sh-01", "20.00", JUNE_1 + DAY)  # June: after the period
    # Lots expire 20 days after earning: April's in April and May, May's early ones in May.
    expire_points(now=JUNE_1)

    # Coupons: April and May issues; redeemed against May orders (one refunded in part).
    template = CouponTemplate.objects.create(code="ten-off", name="十元券", program=vip, kind=CouponKind.AMOUNT_OFF,
                                             amount_off=Decimal("10.00"), valid_from=APRIL_1,
                                             valid_until=JUNE_1 + 30 * DAY)
    brand_b_template = CouponTemplate.objects.create(code="b-five", name="五元券", brand=brand_b,
                                                     kind=CouponKind.AMOUNT_OFF, amount_off=Decimal("5.00"),
                                                     valid_from=APRIL_1, valid_until=JUNE_1 + 30 * DAY)
    issue_to_members(template=template, member_ids=[m["ann"].pk, m["bob"].pk], idempotency_key="issue-april",
                     now=APRIL_1 + DAY)
    issue_to_members(template=template, member_ids=[m["ann"].pk, m["cat"].pk, m["gus"].pk],
                     idempotency_key="issue-may", now=MAY_1 + DAY)
    issue_to_members(template=brand_b_template, member_ids=[m["eve"].pk, m["fay"].pk],
                     idempotency_key="issue-b", now=MAY_1 + 2 * DAY)
    codes = {(c.member_id, c.issue.idempotency_key): c.code for c in Coupon.objects.select_related("issue")}

    def spend_coupon(member, issue, channel, paid, when, **extra):
        row = _order(member, channel, paid, when, **extra)
        order = Order.objects.get(channel__code=row["channel"], external_id=row["external_id"])
        redeem_coupon(code=codes[(member.pk, issue)], order=order, now=when)
        return row

    spend_coupon(m["ann"], "issue-april", "pos-sh-01", "88.00", MAY_1 + 14 * DAY)  # April's coupon, used in May
    row = spend_coupon(m["cat"], "issue-may", "pos-bj-01", "66.00", MAY_1 + 15 * DAY)
    record_orders(rows=[{**row, "refunds": [{"external_id": "R2", "amount": "16.00",
                                             "refunded_at": (MAY_1 + 16 * DAY).isoformat()}]}], source="test")
    spend_coupon(m["fay"], "issue-b", "pos-gz-01", "55.00", MAY_1 + 17 * DAY)
    return LoyaltyWorld(vip=vip, group=group, members=m, tiers=tiers)


# --- the reference --------------------------------------------------------------------------------

def q(value, places="0.0001"):
    return Decimal(value).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def rate(part, whole):
    return None if not whole else q(Decimal(part) / Decimal(whole))


@dataclass
class LoyaltyReference:
    """Every loyalty figure from the raw rows, in Python; ``start``/``end`` are the UTC instants of
    the period, narrowed like the metrics: ``brand`` (code), ``store``/``region`` (code, of the
    member's owning store), ``channel`` (code: members who bought there)."""

    start: dt.datetime
    end: dt.datetime
    brand: str | None = None
    store: str | None = None
    region: str | None = None
    channel: str | None = None

    def __post_init__(self):
        self.members = {r["pk"]: r for r in Member.objects.values(
            "pk", "status", "store__code", "store__brand__code", "store__region__code")}
        self.programs = {r["pk"]: r for r in LoyaltyProgram.objects.values("pk", "scope", "brand__code")}
        buyers = set(Order.objects.filter(is_counted=True, channel__code=self.channel).values_list(
            "member_id", flat=True)) if self.channel else None
        self.buyers = buyers

    def _member_ok(self, member_id) -> bool:
        m = self.members[member_id]
        if self.store and m["store__code"] != self.store:
            return False
        if self.region and m["store__region__code"] != self.region:
            return False
        if self.buyers is not None and member_id not in self.buyers:
            return False
        narrowed = self.store or self.region or self.channel
        return not narrowed or m["status"] in ("active", "frozen")

    def _program_ok(self, program_id, member_id) -> bool:
        if self.brand is None:
            return True
        p = self.programs[program_id]
        if p["scope"] == "brand":
            return p["brand__code"] == self.brand
        return self.members[member_id]["store__brand__code"] == self.brand

    def previous(self) -> LoyaltyReference:
        return LoyaltyReference(self.start - (self.end - self.start), self.start, self.brand, self.store,
                                self.region, self.channel)

    def points(self) -> dict:
        sums = defaultdict(int)
        active = set()
        for e in PointsEntry.objects.values("kind", "amount", "occurred_at", "program_id", "account__member_id"):
            member = e["account__member_id"]
            if not (self.start <= e["occurred_at"] < self.end) or not self._program_ok(e["program_id"], member) \
                    or not self._member_ok(member):
                continue
            sums[e["kind"]] += e["amount"]
            sums["net"] += e["amount"]
            if e["kind"] in ("earn", "redeem"):
                active.add(member)
        return {"earned": sums["earn"], "redeemed": -sums["redeem"], "expired": -sums["expire"],
                "reversed": -sums["reverse"], "adjusted": sums["adjust"], "settled": -sums["settle"],
                "net_change": sums["net"], "active_members": len(active)}

    def balances(self) -> dict:
        outstanding = owed = 0
        holders = set()
        for a in PointsAccount.objects.values("program_id", "member_id", "balance", "debt"):
            if not self._program_ok(a["program_id"], a["member_id"]) or not self._member_ok(a["member_id"]):
                continue
            outstanding += a["balance"]
            owed += a["debt"]
            if a["balance"] > 0:
                holders.add(a["member_id"])
        # the ledger is the truth: the balances are its sums
        assert outstanding == sum(e["amount"] for e in PointsEntry.objects.values(
            "amount", "program_id", "account__member_id")
            if self._program_ok(e["program_id"], e["account__member_id"]) and self._member_ok(e["account__member_id"]))
        return {"outstanding": outstanding, "owed": owed, "members_with_points": len(holders)}

    def _coupon_ok(self, c) -> bool:
        if not self._member_ok(c["member_id"]):
            return False
        if self.brand is None:
            return True
        if c["template__brand__code"] is not None:
            return c["template__brand__code"] == self.brand
        return self._program_ok(c["template__program_id"], c["member_id"])

    def coupons(self) -> dict:
        rows = [c for c in Coupon.objects.values("member_id", "state", "issued_at", "redeemed_at",
                                                 "template__brand__code", "template__program_id")
                if self._coupon_ok(c)]
        issued = [c for c in rows if self.start <= c["issued_at"] < self.end]
        used = [c for c in issued if c["state"] == "redeemed"]
        redeemed = [c for c in rows if c["state"] == "redeemed" and self.start <= c["redeemed_at"] < self.end]
        return {"issued": len(issued), "redeemed_of_issued": len(used), "redemption_rate": rate(len(used), len(issued)),
                "redeemed": len(redeemed)}

    def coupon_sales(self) -> dict:
        with_coupon = set(Coupon.objects.filter(state="redeemed").values_list("order_id", flat=True))
        orders, amount = 0, Decimal(0)
        for o in Order.objects.values("pk", "is_counted", "ordered_at", "paid_amount", "refunded_amount",
                                      "store__code", "store__brand__code", "store__region__code", "channel__code"):
            if not o["is_counted"] or not (self.start <= o["ordered_at"] < self.end) or o["pk"] not in with_coupon:
                continue
            if (self.brand and o["store__brand__code"] != self.brand) \
                    or (self.store and o["store__code"] != self.store) \
                    or (self.region and o["store__region__code"] != self.region) \
                    or (self.channel and o["channel__code"] != self.channel):
                continue
            orders += 1
            amount += o["paid_amount"] - o["refunded_amount"]
        return {"orders": orders, "amount": q(amount, "0.01")}

    def tiers(self) -> dict:
        """``{program code: {tier code: members}}``."""
        table = {}
        rows = list(MemberTier.objects.values("program_id", "member_id", "tier__code"))
        held = {(r["program_id"], r["member_id"]) for r in rows}
        for program in LoyaltyProgram.objects.order_by("code"):
            if self.brand and not (program.brand_id is None or program.brand.code == self.brand):
                continue
            tiers = list(Tier.objects.filter(program=program).order_by("rank"))
            counts = {t.code: 0 for t in tiers}
            for r in rows:
                if r["program_id"] == program.pk and self._program_ok(program.pk, r["member_id"]) \
                        and self._member_ok(r["member_id"]):
                    counts[r["tier__code"]] += 1
            if tiers and not tiers[0].thresholds:
                for a in PointsAccount.objects.filter(program=program).values("member_id"):
                    if (program.pk, a["member_id"]) not in held and self._program_ok(program.pk, a["member_id"]) \
                            and self._member_ok(a["member_id"]):
                        counts[tiers[0].code] += 1
            table[program.code] = counts
        return table
