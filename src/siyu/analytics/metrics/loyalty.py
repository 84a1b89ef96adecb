"""Loyalty figures (忠诚度): points earned, spent, expired and outstanding, active point users,
coupons issued and redeemed, coupon-driven sales, members per tier.

Read from the facts the loyalty services write: the points ledger (``PointsEntry``, the truth of
every period figure), the points accounts (whose ``balance`` and ``debt`` are the ledger's sums,
kept exact in the same transaction as every entry and checked by ``siyu loyalty_check``), the
coupons and the members' tiers. Each function is one aggregate query (the tier table two) that
answers this period and the previous one together.

Narrowing (see the definitions in :mod:`.definitions`):

- **brand**: the facts of programs (and coupon templates) of that brand; in a group-wide program
  (集团多业态积分互通), the members whose owning store is of that brand;
- **store, region, channel, segment, data scope**: the members the member figures cover — owned
  by the store or region, who have bought in the channel, in the segment and in scope;
- coupon-driven sales are orders, narrowed as every order figure is (the store the order was
  placed in, its brand and region, its channel, its member's segment and scope).
"""

from __future__ import annotations

from dataclasses import replace

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import Coalesce

from siyu.analytics.metrics.filters import Filters, Period, money, ratio
from siyu.analytics.metrics.sales import NET, ZERO
from siyu.loyalty.models import (
    Coupon,
    CouponState,
    EntryKind,
    LoyaltyProgram,
    MemberTier,
    PointsAccount,
    PointsEntry,
    ProgramScope,
    Tier,
)

#: Period figures of the ledger: name → the entry kinds summed (negated for debits, so that
#: every figure reads as a positive number of points).
POINTS_FLOWS = {
    "earned": (EntryKind.EARN, 1),
    "redeemed": (EntryKind.REDEEM, -1),
    "expired": (EntryKind.EXPIRE, -1),
    "reversed": (EntryKind.REVERSE, -1),
    "adjusted": (EntryKind.ADJUST, 1),
    "settled": (EntryKind.SETTLE, -1),
}
#: Entry kinds that make a member an active point user: they earned or spent points.
ACTIVE_KINDS = (EntryKind.EARN, EntryKind.REDEEM)


def loyalty_exists() -> bool:
    """Whether any loyalty program is configured (the dashboard shows its section only then)."""
    return LoyaltyProgram.objects.exists()


def _brand_q(filters: Filters, program: str, member: str) -> Q:
    """Facts of the programs of the brand; in a group-wide program, of the brand's own members
    (``program`` and ``member`` are the lookups leading to the program and the member)."""
    brand = filters.brand
    if brand is None:
        return Q()
    return (Q(**{f"{program}__brand_id": brand.pk})
            | Q(**{f"{program}__scope": ProgramScope.GROUP, f"{program}__group_id": brand.group_id,
                   f"{member}__store__brand_id": brand.pk}))


def _members_q(filters: Filters, member_id: str) -> Q:
    """The members narrowed by store, region, channel, segment and scope (not by brand, which
    :func:`_brand_q` applies through the program); no condition when none of them is set."""
    if all(getattr(filters, name) is None for name in ("store", "region", "channel", "segment")) \
            and filters.everyone:
        return Q()
    members = replace(filters, brand=None).members().values("pk")
    return Q(**{f"{member_id}__in": members})


def _programs_in_play(filters: Filters) -> int:
    """How many programs the figures can cover (every program, or those the brand filter keeps)."""
    programs = LoyaltyProgram.objects.order_by()
    if filters.brand is not None:
        programs = programs.filter(Q(brand_id=filters.brand.pk)
                                   | Q(scope=ProgramScope.GROUP, group_id=filters.brand.group_id))
    return programs.count()


def _both_periods(filters: Filters) -> tuple[Period, Period]:
    return filters.period, filters.period.previous()


def points(filters: Filters) -> dict:
    """Points moved in the period and the previous one, from the ledger; one query.

    Per period: ``earned`` (Σ earn entries), ``redeemed`` (spent in the points mall, Σ −redeem),
    ``expired`` (Σ −expire), ``reversed`` (taken back on refunds and closings net of what amended
    refunds gave back, Σ −reverse), ``adjusted`` (staff adjustments, net), ``settled`` (new
    points that paid a debt, Σ −settle), ``net_change`` (Σ of every entry: the change of the
    points outstanding) and ``active_members`` (members who earned or spent points).

    The ledger has no index on the time of an entry, so this reads the whole ledger once (about
    3 s for 10 million entries on PostgreSQL); an index on ``PointsEntry(occurred_at)`` covering
    kind, amount and account would make it read only the two periods.
    """
    now, before = _both_periods(filters)
    start, end = now.bounds()
    first, _start = before.bounds()
    # A member has one account per program: within one program, distinct accounts are distinct
    # members, and counting them spares joining every entry of the period to its account.
    user = "account__member_id" if _programs_in_play(filters) > 1 else "account_id"
    entries = (PointsEntry.objects.filter(occurred_at__gte=first, occurred_at__lt=end).order_by()
               .filter(_brand_q(filters, "program", "account__member"))
               .filter(_members_q(filters, "account__member_id")))
    aggregates = {}
    for tag, (lo, hi) in (("now", (start, end)), ("before", (first, start))):
        when = Q(occurred_at__gte=lo, occurred_at__lt=hi)
        for name, (kind, _sign) in POINTS_FLOWS.items():
            aggregates[f"{tag}_{name}"] = Coalesce(Sum("amount", filter=when & Q(kind=kind)), 0)
        aggregates[f"{tag}_net"] = Coalesce(Sum("amount", filter=when), 0)
        aggregates[f"{tag}_active"] = Count(user, distinct=True, filter=when & Q(kind__in=ACTIVE_KINDS))
    row = entries.aggregate(**aggregates)

    def period(tag: str) -> dict:
        figures = {name: sign * row[f"{tag}_{name}"] for name, (_kind, sign) in POINTS_FLOWS.items()}
        return {**figures, "net_change": row[f"{tag}_net"], "active_members": row[f"{tag}_active"]}

    return {"period": period("now"), "previous": period("before")}


def balances(filters: Filters) -> dict:
    """Points outstanding now (the liability: Σ account balances), points owed by members (Σ
    debts) and members holding points (a balance above 0). One query over the accounts."""
    accounts = (PointsAccount.objects.order_by().filter(_brand_q(filters, "program", "member"))
                .filter(_members_q(filters, "member_id")))
    row = accounts.aggregate(outstanding=Coalesce(Sum("balance"), 0), owed=Coalesce(Sum("debt"), 0),
                             members_with_points=Count("member_id", distinct=True, filter=Q(balance__gt=0)))
    return row


def coupons(filters: Filters) -> dict:
    """Coupons of the period and the previous one; one query over the coupons.

    Per period: ``issued`` (coupons issued in it), ``redeemed_of_issued`` (of those, redeemed by
    now), ``redemption_rate`` (redeemed_of_issued / issued) and ``redeemed`` (coupons redeemed in
    the period, whenever issued).
    """
    now, before = _both_periods(filters)
    start, end = now.bounds()
    first, _start = before.bounds()
    brand = Q()
    if filters.brand is not None:
        brand = Q(template__brand_id=filters.brand.pk) | _brand_q(filters, "template__program", "member")
    rows = (Coupon.objects.order_by()
            .filter(Q(issued_at__gte=first, issued_at__lt=end) | Q(redeemed_at__gte=first, redeemed_at__lt=end))
            .filter(brand).filter(_members_q(filters, "member_id")))
    redeemed = Q(state=CouponState.REDEEMED)
    aggregates = {}
    for tag, (lo, hi) in (("now", (start, end)), ("before", (first, start))):
        issued = Q(issued_at__gte=lo, issued_at__lt=hi)
        aggregates[f"{tag}_issued"] = Count("pk", filter=issued)
        aggregates[f"{tag}_redeemed_of_issued"] = Count("pk", filter=issued & redeemed)
        aggregates[f"{tag}_redeemed"] = Count("pk", filter=redeemed & Q(redeemed_at__gte=lo, redeemed_at__lt=hi))
    row = rows.aggregate(**aggregates)

    def period(tag: str) -> dict:
        issued, used = row[f"{tag}_issued"], row[f"{tag}_redeemed_of_issued"]
        return {"issued": issued, "redeemed_of_issued": used, "redemption_rate": ratio(used, issued),
                "redeemed": row[f"{tag}_redeemed"]}

    return {"period": period("now"), "previous": period("before")}


def coupon_sales(filters: Filters) -> dict:
    """Counted orders placed in the period (and the previous one) that redeemed at least one
    coupon: how many, and their amount (paid minus refunded). One query: the orders of both
    periods (the ``ordered_at`` index) semi-joined with the redeemed coupons (the ``order`` index)."""
    now, before = _both_periods(filters)
    start, end = now.bounds()
    first, _start = before.bounds()
    orders = (filters.orders(timed=False).filter(ordered_at__gte=first, ordered_at__lt=end)
              .filter(Exists(Coupon.objects.filter(order_id=OuterRef("pk"), state=CouponState.REDEEMED))))
    aggregates = {}
    for tag, (lo, hi) in (("now", (start, end)), ("before", (first, start))):
        when = Q(ordered_at__gte=lo, ordered_at__lt=hi)
        aggregates[f"{tag}_orders"] = Count("pk", filter=when)
        aggregates[f"{tag}_amount"] = Coalesce(Sum(NET, filter=when), ZERO)
    row = orders.aggregate(**aggregates)
    return {tag: {"orders": row[f"{key}_orders"], "amount": money(row[f"{key}_amount"])}
            for tag, key in (("period", "now"), ("previous", "before"))}


def tiers(filters: Filters) -> list[dict]:
    """Members per tier of each program now: the members holding the tier (their tier row); the
    entry tier (the lowest, when it has no threshold) also counts the members with a points
    account and no tier row (no row means the entry tier). Two queries besides the tiers."""
    programs = LoyaltyProgram.objects.order_by("code")
    if filters.brand is not None:
        programs = programs.filter(Q(brand_id=filters.brand.pk)
                                   | Q(scope=ProgramScope.GROUP, group_id=filters.brand.group_id))
    programs = list(programs)
    if not programs:
        return []
    ids = [p.pk for p in programs]
    brand, members = _brand_q(filters, "program", "member"), _members_q(filters, "member_id")
    held = dict(((program_id, tier_id), n) for program_id, tier_id, n in
                MemberTier.objects.filter(brand, members, program_id__in=ids).order_by()
                .values_list("program_id", "tier_id").annotate(n=Count("pk")).values_list("program_id", "tier_id", "n"))
    without_row = dict(
        PointsAccount.objects.filter(brand, members, program_id__in=ids).order_by()
        .exclude(Exists(MemberTier.objects.filter(program_id=OuterRef("program_id"), member_id=OuterRef("member_id"))))
        .values_list("program_id").annotate(n=Count("pk")).values_list("program_id", "n"))
    by_program: dict[int, list[Tier]] = {pk: [] for pk in ids}
    for tier in Tier.objects.filter(program_id__in=ids).order_by("program_id", "rank"):
        by_program[tier.program_id].append(tier)
    table = []
    for program in programs:
        ranked = by_program[program.pk]
        entry = ranked[0] if ranked and not ranked[0].thresholds else None  # the lowest, if it has no threshold
        rows = [{"tier": t.code, "name": t.name, "rank": t.rank, "tier_id": t.pk,
                 "members": held.get((program.pk, t.pk), 0) + (without_row.get(program.pk, 0) if t is entry else 0)}
                for t in ranked]
        total = sum(r["members"] for r in rows)
        for r in rows:
            r["share"] = ratio(r["members"], total)
        table.append({"program": program.code, "name": program.name, "program_id": program.pk,
                      "members": total, "tiers": rows})
    return table


def summary(filters: Filters) -> dict:
    """Every loyalty figure of the period, with the previous period's: what the dashboard and the
    ``loyalty`` export show."""
    return {"points": points(filters), "balances": balances(filters), "coupons": coupons(filters),
            "coupon_sales": coupon_sales(filters)}


__all__ = ["balances", "coupon_sales", "coupons", "loyalty_exists", "points", "summary", "tiers"]
