"""Tiers (会员等级) and paid membership (付费会员).

A member's *figures* in a program are counted over the program's tier window ending at ``now``:
the paid amount net of refunds and the number of not fully refunded counted orders placed in the
program's stores (a group-wide program also counts orders without a store), and the points
earned net of reversals. The *qualifying tier* is the highest-ranked tier whose thresholds the
figures meet (``any`` or ``all`` of them); a tier without thresholds is the entry tier, which
everyone holds without a row.

- **Upgrade** is immediate: ingestion calls :func:`upgrade_tiers` for the members that earned.
  Counting the window of every buyer of every batch would cost more than the batch's ledger
  writes, so each points account keeps an *upper bound* of its member's figures: exact when last
  counted (over the window then, and anything dated later), plus every order and points entry
  ingestion has seen since. Ingestion counts the window only for members whose bound reaches a
  higher tier than theirs; the others cannot have reached one. The bound is unknown (and the
  window counted) for a new account, after a member merge, or once the program was edited.
  While everything added to the bound since its count was new (orders the batch inserted, new
  ledger entries) and no order it counts changed, it is *exact*, and it keeps the span of the
  facts' moments: when that span lies inside the window, the member is upgraded on the stored
  figures without counting (a changed order, or one leaving the window, means counting again).
- **Retention** (保级): a tier is kept until ``retained_until`` (reached or re-qualified + the
  tier's retention days).
- **Downgrade** happens in :func:`evaluate_tiers` (the nightly task): once the retention period
  is over, a member who still qualifies is kept for another period; otherwise they move straight
  to the tier they now qualify for.

Every change is a :class:`TierChange` row with its reason and the figures it was decided on.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import NamedTuple

from django.db import transaction
from django.db.models import Count, F, Max, Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.commerce.models import Order
from siyu.core.db import among, fetch_rows, insert_rows, note_bulk_write, update_rows
from siyu.core.errors import Conflict, ValidationError
from siyu.loyalty.ledger import lock_accounts, widen_tier_span
from siyu.loyalty.models import (
    EntryKind,
    LoyaltyProgram,
    MemberTier,
    PaidMembership,
    PaidMembershipPlan,
    PaidMembershipStatus,
    ProgramScope,
    Tier,
    TierChange,
    TierChangeReason,
    TierRequirement,
)
from siyu.loyalty.programs import program_tiers
from siyu.members.models import Member

#: ``tier_figures_from`` of a program counting all history (tier window 0): null.
ALL_HISTORY = None


@dataclass(slots=True)
class Figures:
    paid: Decimal = Decimal("0.00")
    orders: int = 0
    points: int = 0
    oldest: dt.datetime | None = None  # the moments of the facts counted (a stored bound's span)
    newest: dt.datetime | None = None

    def widen(self, oldest: dt.datetime | None, newest: dt.datetime | None) -> None:
        if oldest is not None:
            self.oldest = min(oldest, self.oldest or oldest)
            self.newest = max(newest, self.newest or newest)

    def as_json(self) -> dict:
        return {"paid": str(self.paid), "orders": self.orders, "points": self.points}


def qualifies(tier: Tier, figures: Figures) -> bool:
    """Whether ``figures`` reach ``tier``: every threshold it sets, or any of them (a tier without
    thresholds, the entry tier, is reached by all). Ingestion asks this for every buyer."""
    paid, orders, points = tier.min_paid_amount, tier.min_order_count, tier.min_points_earned
    if tier.requires == TierRequirement.ALL or (paid is None and orders is None and points is None):
        return ((paid is None or figures.paid >= paid) and (orders is None or figures.orders >= orders)
                and (points is None or figures.points >= points))
    return ((paid is not None and figures.paid >= paid) or (orders is not None and figures.orders >= orders)
            or (points is not None and figures.points >= points))


def qualifying_tier(tiers: list[Tier], figures: Figures) -> Tier | None:
    """The highest-ranked of ``tiers`` (sorted by rank) that ``figures`` reach, or None."""
    return next((t for t in reversed(tiers) if qualifies(t, figures)), None)


def entry_tier(tiers: list[Tier]) -> Tier | None:
    return tiers[0] if tiers and not tiers[0].thresholds else None


def window_start(program: LoyaltyProgram, now: dt.datetime) -> dt.datetime | None:
    return now - dt.timedelta(days=program.tier_window_days) if program.tier_window_days else None


def figures_of(program: LoyaltyProgram, tiers: list[Tier], now: dt.datetime, *, members: dict,
               accounts: dict[int, int] | None = None, cover: dict[int, Figures] | None = None) -> dict[int, Figures]:
    """``{member_id: Figures}`` over the tier window, for the members that ``members`` selects as
    lookups on the member id (``{"in": ids}``, ``{"gte": low, "lt": high}``).

    ``accounts`` (``{member_id: account_id}`` of those members) reads the ledger by account. With
    ``cover``, the same aggregates also fill it with every figure from the window's start on,
    ``now`` or later, and the span of the facts' moments (what an account's stored figures start
    from), in the same queries.
    """
    from siyu.loyalty.models import PointsEntry

    since = window_start(program, now)
    figures: dict[int, Figures] = defaultdict(Figures)
    wide = cover is not None
    # A stored bound holds every figure, whatever the thresholds now (a tier may be edited later);
    # the figures a decision is recorded with are those the thresholds use.
    by_orders, by_points = _measures(tiers)
    if wide or by_orders:
        orders = Order.objects.filter(_on("member_id", members), is_counted=True)
        if not wide:
            orders = orders.filter(ordered_at__lte=now)
        if since:
            orders = orders.filter(ordered_at__gte=since)
        if program.scope == ProgramScope.GROUP:
            orders = orders.filter(Q(store__brand__group_id=program.group_id) | Q(store__isnull=True))
        else:
            orders = orders.filter(store__brand_id=program.brand_id)
        left = Q(refunded_amount__lt=F("paid_amount"))
        net = F("paid_amount") - F("refunded_amount")
        sums = {"paid": Sum(net), "count": Count("pk", filter=left)}
        if wide:
            until = Q(ordered_at__lte=now)
            sums = {"paid": Sum(net, filter=until), "count": Count("pk", filter=left & until),
                    "paid_all": Sum(net), "count_all": Count("pk", filter=left), "oldest": Min("ordered_at"),
                    "newest": Max("ordered_at")}
        for row in orders.order_by().values("member_id").annotate(**sums).values_list("member_id", *sums):
            if by_orders:
                figures[row[0]].paid = Decimal(row[1] or 0).quantize(Decimal("0.01"))
                figures[row[0]].orders = row[2]
            if wide:
                cover.setdefault(row[0], Figures()).paid = Decimal(row[3] or 0).quantize(Decimal("0.01"))
                cover[row[0]].orders = row[4]
                cover[row[0]].widen(row[5], row[6])
    if wide or by_points:
        entries = PointsEntry.objects.filter(program=program, kind__in=[EntryKind.EARN, EntryKind.REVERSE])
        if not wide:
            entries = entries.filter(occurred_at__lte=now)
        if since:
            entries = entries.filter(occurred_at__gte=since)
        points = F("amount") - F("debt_delta")
        sums = {"points": Sum(points, filter=Q(occurred_at__lte=now)), "points_all": Sum(points),
                "oldest": Min("occurred_at"), "newest": Max("occurred_at")} if wide else {"points": Sum(points)}
        if accounts is not None:
            member_of = {a: m for m, a in accounts.items()}
            grouped = entries.filter(among("account_id", sorted(member_of))).order_by().values("account_id")
        else:
            grouped = entries.filter(_on("account__member_id", members)).order_by().values("account__member_id")
        for row in grouped.annotate(**sums).values_list(*grouped.query.values_select, *sums):
            member_id = member_of[row[0]] if accounts is not None else row[0]
            if by_points:
                figures[member_id].points = int(row[1] or 0)
            if wide:
                cover.setdefault(member_id, Figures()).points = int(row[2] or 0)
                cover[member_id].widen(row[3], row[4])
    return figures


def _measures(tiers: list[Tier]) -> tuple[bool, bool]:
    """Whether the thresholds of ``tiers`` use the order figures, and the points."""
    return (any(t.min_paid_amount is not None or t.min_order_count is not None for t in tiers),
            any(t.min_points_earned is not None for t in tiers))


def stored_bound(account, program: LoyaltyProgram, since: dt.datetime | None) -> Figures | None:
    """The account's stored upper bound of its member's figures over a window starting at ``since``
    (None: all history), or None when it is unknown or does not cover that window."""
    if account is None or account.tier_figures_at is None or account.tier_figures_at < program.updated_at:
        return None
    if account.tier_figures_from is not ALL_HISTORY and (since is None or since < account.tier_figures_from):
        return None
    return Figures(paid=account.tier_paid, orders=account.tier_orders, points=account.tier_points)


def exact_figures(account, bound: Figures, tiers: list[Tier], since: dt.datetime | None,
                  now: dt.datetime) -> Figures | None:
    """The member's figures over the window from ``since`` to ``now`` as the account's stored
    figures (``bound``, from :func:`stored_bound`) give them without counting, or None unless they
    are exact and every fact they count lies inside the window (the figures a decision records, as
    :func:`figures_of` gives them)."""
    if not account.tier_figures_exact:
        return None
    oldest, newest = account.tier_figures_oldest, account.tier_figures_newest
    if oldest is not None and ((since is not None and oldest < since) or newest > now):
        return None
    by_orders, by_points = _measures(tiers)
    return Figures(paid=Decimal(bound.paid if by_orders else 0).quantize(Decimal("0.01")),
                   orders=bound.orders if by_orders else 0, points=bound.points if by_points else 0)


def start_exact_figures(accounts: Iterable, programs: dict[int, LoyaltyProgram], new_orders: dict[int, int],
                        now: dt.datetime) -> None:
    """Accounts this transaction created (``created``), of members whose every counted order was
    inserted by it too (``new_orders``: ``{member_id: how many}``): their stored figures start exact
    and empty, counted now, so that adding those orders and the entries posted for them needs no
    count. (An account has no entries before it exists; a member with any other counted order is
    counted as usual.) One aggregate: each member's counted orders, the new ones included."""
    accounts = [a for a in accounts if getattr(a, "created", False) and a.tier_figures_at is None]
    if not accounts:
        return
    held = dict(Order.objects.filter(among("member_id", sorted({a.member_id for a in accounts})), is_counted=True)
                .order_by().values("member_id").annotate(n=Count("pk")).values_list("member_id", "n"))
    counted_at = timezone.now()
    for account in accounts:
        if held.get(account.member_id, 0) == new_orders.get(account.member_id, 0):
            account.tier_figures_at = counted_at
            account.tier_figures_from = window_start(programs[account.program_id], now)
            account.tier_figures_exact = True
            account.unsaved = True


def add_order_to_bound(account, *, paid: Decimal, refunded: Decimal, ordered_at: dt.datetime, new: bool) -> None:
    """Ingestion saw a counted order of the account's member in its program: raise the stored
    bound by the order's whole current figures. A ``new`` order (inserted by the batch) keeps exact
    figures exact; a changed one may be counted twice, which keeps them an upper bound, no longer
    exact (see :func:`forget_exact_figures`); the next count makes them exact again."""
    if account.tier_figures_at is None:
        return
    if account.tier_figures_from is not ALL_HISTORY and ordered_at < account.tier_figures_from:
        return  # before the window of any later count
    if not new:
        forget_exact_figures(account)
    if refunded < paid:
        account.tier_paid += paid - refunded
        account.tier_orders += 1
        if new:
            widen_tier_span(account, ordered_at, ordered_at)
        account.unsaved = True


def forget_exact_figures(account) -> None:
    """An order the account's figures may count changed (amount, refund, status): they stay an
    upper bound (figures only fall that way) but are no longer exact."""
    if account.tier_figures_exact:
        account.tier_figures_exact = False
        account.unsaved = True


def save_tier_figures(accounts: Iterable, *, meanwhile: Callable[[], object] | None = None) -> int:
    """Write the (locked) ``accounts`` whose figures or balances moved in memory: one statement
    (``meanwhile``: see ``save_accounts``)."""
    from siyu.loyalty.ledger import save_accounts

    return save_accounts(accounts, meanwhile=meanwhile)


def _on(field: str, lookups: dict) -> Q:
    if "in" in lookups:
        return Q(among(field, lookups["in"]))
    return Q(**{f"{field}__{lookup}": value for lookup, value in lookups.items()})


@dataclass
class TierResult:
    evaluated: int = 0
    upgraded: int = 0
    downgraded: int = 0
    renewed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class TierRow:
    """A member's tier row as the decisions need it (a model instance per row costs more than the decision)."""

    __slots__ = ("achieved_at", "member_id", "pk", "retained_until", "tier")

    def __init__(self, pk: int, member_id: int, tier: Tier, retained_until: dt.datetime):
        self.pk, self.member_id, self.tier, self.retained_until = pk, member_id, tier, retained_until
        self.achieved_at = None  # set when the tier changes

    @property
    def tier_id(self) -> int:
        return self.tier.pk


def _decide(program, tiers, figures: dict[int, Figures], rows: dict[int, TierRow], now, *, downgrade: bool,
            result: TierResult) -> None:
    """Upgrade (and with ``downgrade``, renew or downgrade) the members in ``figures`` ∪ ``rows``."""
    _write(program, _plan(tiers, figures, rows, now, downgrade=downgrade, result=result))


def _plan(tiers, figures: dict[int, Figures], rows: dict[int, TierRow], now, *, downgrade: bool,
          result: TierResult) -> tuple[list, ...]:
    """What :func:`_decide` writes, worked out without the database: the tier rows to create, to
    change, to renew and to drop, and the history."""
    entry = entry_tier(tiers)
    created, changed, renewed, dropped, history = [], [], [], [], []
    for member_id in sorted(set(figures) | set(rows)):
        result.evaluated += 1
        mine = figures.get(member_id) or Figures()
        target = qualifying_tier(tiers, mine)
        row = rows.get(member_id)
        current = row.tier if row else entry
        rank = current.rank if current else -1
        if target is not None and target.rank > rank:
            reason = TierChangeReason.UPGRADE
            result.upgraded += 1
        elif downgrade and row is not None and row.retained_until <= now:
            if target is not None and target.pk == row.tier_id:
                row.retained_until = now + dt.timedelta(days=target.retention_days)
                renewed.append(row)
                result.renewed += 1
                continue
            reason = TierChangeReason.DOWNGRADE
            result.downgraded += 1
        else:
            continue
        history.append((member_id, getattr(current, "pk", None), getattr(target, "pk", None), reason, mine.as_json(),
                        now))
        if target is None:
            dropped.append(row.pk)
            continue
        retained = now + dt.timedelta(days=target.retention_days)
        if row is None:
            created.append((member_id, target.pk, now, retained))
        else:
            row.tier, row.achieved_at, row.retained_until = target, now, retained
            changed.append(row)
    return created, changed, renewed, dropped, history


def _write(program, plan: tuple[list, ...]) -> None:
    created, changed, renewed, dropped, history = plan
    stamp = timezone.now()
    insert_rows(MemberTier, ("program_id", "member_id", "tier_id", "achieved_at", "retained_until", "updated_at"),
                [(program.pk, *row, stamp) for row in created])
    note_bulk_write(MemberTier, len(created))
    update_rows(MemberTier, ["tier_id", "achieved_at", "retained_until"],
                [(row.pk, row.tier_id, row.achieved_at, row.retained_until) for row in changed],
                also={"updated_at": stamp}, chunk_size=5000)
    update_rows(MemberTier, ["retained_until"], [(row.pk, row.retained_until) for row in renewed],
                also={"updated_at": stamp}, chunk_size=5000)
    if dropped:
        MemberTier.objects.filter(pk__in=dropped).delete()
    insert_rows(TierChange, ("program_id", "member_id", "from_tier_id", "to_tier_id", "reason", "figures",
                             "changed_at"), [(program.pk, *row) for row in history])  # insert_rows encodes JSON
    note_bulk_write(TierChange, len(history))


def _locked_rows(program: LoyaltyProgram, tiers: list[Tier], members: dict) -> dict[int, TierRow]:
    """The members' tier rows, locked in id order (without joining the tiers: that would lock them too)."""
    by_pk = {t.pk: t for t in tiers}
    found = MemberTier.objects.filter(_on("member_id", members), program=program).select_for_update()
    return {member_id: TierRow(pk, member_id, by_pk[tier_id], retained_until)
            for pk, member_id, tier_id, retained_until in fetch_rows(found.order_by("pk").values_list(
                "pk", "member_id", "tier_id", "retained_until"))}


def member_tiers(*, members: dict[int, Iterable[int]], programs: dict[int, LoyaltyProgram],
                 tiers: dict[int, list[Tier]]) -> dict[int, dict[int, TierRow]]:
    """``{program_id: {member_id: tier row}}`` of ``members`` (``{program_id: member ids}``), locked
    in id order, for :func:`upgrade_tiers` to change; programs without tiers are left out.

    Ingestion reads them once, after locking the members' accounts. Reading them without locks
    and locking again those who may climb cost a second read of every batch (about 2 ms); the
    tier rows held are those of accounts the batch holds anyway, and the nightly evaluation, which
    locks tier rows alone, takes them in the same id order."""
    return {p: _locked_rows(programs[p], tiers[p], {"in": sorted(ids)})
            for p, ids in sorted(members.items()) if tiers.get(p)}


def upgrade_tiers(*, pairs: Iterable[tuple[int, int]], programs: dict[int, LoyaltyProgram],
                  now: dt.datetime | None = None, accounts: dict | None = None,
                  rows: dict[int, dict[int, TierRow]] | None = None, tiers: dict[int, list[Tier]] | None = None,
                  save: bool = False) -> int:
    """Upgrade the ``(program_id, member_id)`` members who now qualify for a higher tier (ingestion).

    Never downgrades: that waits for the retention period and :func:`evaluate_tiers`. With
    ``accounts`` (``{(program_id, member_id): account}``, locked by the caller, as ``lock_accounts``
    returns them) a member whose stored bound reaches no higher tier is not counted, one whose
    stored figures are exact is decided on them (:func:`exact_figures`), and the members counted
    get their stored figures reset to the exact ones (in memory: the caller saves them with
    :func:`save_tier_figures`). ``rows`` are the members' tier rows if the caller read them
    (:func:`member_tiers`, locked); otherwise they are read and locked here. With ``save`` the
    ``accounts`` are written too (:func:`save_tier_figures`), and the upgrades decided while the
    database writes them. Returns the number of upgrades.
    """
    now = now or timezone.now()
    members = members_by_program(pairs)
    if tiers is None and members:
        tiers = program_tiers(members)
    deciding = [_counted(c, accounts, now) for c in _climbers(members, programs, now, accounts, rows, tiers)]
    upgrades = Upgrades(None)
    if save:
        save_tier_figures((accounts or {}).values(), meanwhile=lambda: upgrades.plan(deciding, now))
    else:
        upgrades.plan(deciding, now)
    return upgrades.write()


def members_by_program(pairs: Iterable[tuple[int, int]]) -> dict[int, set[int]]:
    """``{program_id: member ids}`` of ``(program_id, member_id)`` pairs."""
    members = defaultdict(set)
    for program_id, member_id in pairs:
        members[program_id].add(member_id)
    return members


def decide_upgrades(*, pairs: Iterable[tuple[int, int]], programs: dict[int, LoyaltyProgram], now: dt.datetime,
                    accounts: dict, rows: dict[int, dict[int, TierRow]], tiers: dict[int, list[Tier]]
                    ) -> Upgrades | None:
    """What ``upgrade_tiers(…, save=True)`` would write, decided without the database, or None
    when a member must be counted first (their stored figures are not exact): call it then."""
    members = members_by_program(pairs)
    climbers = _climbers(members, programs, now, accounts, rows, tiers)
    if any(c.counting for c in climbers):
        return None
    upgrades = Upgrades(accounts)
    upgrades.plan([_counted(c, accounts, now) for c in climbers], now)
    return upgrades


class Upgrades:
    """Tier upgrades decided (:func:`decide_upgrades`, :func:`upgrade_tiers`): ``write()`` writes the
    accounts (when it holds them) and the tier rows and history, and returns the number of upgrades."""

    def __init__(self, accounts: dict | None) -> None:
        self.accounts = accounts
        self.result = TierResult()
        self.plans: list = []

    def plan(self, deciding: list, now: dt.datetime) -> None:
        self.plans.extend((program, _plan(ranked, figures, held, now, downgrade=False, result=self.result))
                          for program, ranked, figures, held in deciding)

    def write(self) -> int:
        if self.accounts is not None:
            save_tier_figures(self.accounts.values())
        for program, decided in self.plans:
            _write(program, decided)
        return self.result.upgraded


class _Climbers(NamedTuple):
    """Of one program: the members who may climb, those known to (their exact figures), those to count."""

    program: LoyaltyProgram
    ranked: list[Tier]
    held: dict[int, TierRow]
    since: dt.datetime | None
    climbing: list[int]
    known: dict[int, Figures]
    counting: list[int]


def _climbers(members: dict[int, set[int]], programs: dict[int, LoyaltyProgram], now: dt.datetime,
              accounts: dict | None, rows: dict | None, tiers: dict[int, list[Tier]]) -> list[_Climbers]:
    """The members of ``members`` (``{program_id: member ids}``) who may reach a higher tier, by the
    stored bounds of their ``accounts``; no query unless ``rows`` leaves a program's tier rows out."""
    found = []
    for program_id, ids in sorted(members.items()):
        ranked = tiers.get(program_id, [])
        if not any(t.thresholds for t in ranked):
            continue
        program = programs[program_id]
        held = rows[program_id] if rows is not None and program_id in rows else _locked_rows(
            program, ranked, {"in": sorted(ids)})
        top, entry = ranked[-1], entry_tier(ranked)
        since = window_start(program, now)
        climbing, known = [], {}
        higher: dict[int, list[Tier]] = {}  # by rank: the tiers above it
        for m in sorted(ids):
            row = held.get(m)
            if row is not None and row.tier_id == top.pk:
                continue  # members on the top tier cannot go higher
            account = accounts.get((program_id, m)) if accounts else None
            bound = stored_bound(account, program, since)
            if bound is not None:
                rank = row.tier.rank if row is not None else (entry.rank if entry else -1)
                if rank not in higher:
                    higher[rank] = [t for t in ranked if t.rank > rank]
                for tier in higher[rank]:
                    if qualifies(tier, bound):
                        break
                else:
                    continue  # even the upper bound of their figures reaches no higher tier
                exact = exact_figures(account, bound, ranked, since, now)
                if exact is not None:
                    known[m] = exact  # they climb: no need to count
            climbing.append(m)
        if climbing:
            found.append(_Climbers(program, ranked, held, since, climbing, known,
                                   [m for m in climbing if m not in known]))
    return found


def _counted(climbers: _Climbers, accounts: dict | None, now: dt.datetime) -> tuple:
    """``(program, tiers, figures, tier rows)`` of the climbers, counting those whose figures are not
    known (one query); their accounts' stored figures become the exact ones (in memory)."""
    program, ranked, held, since, climbing, known, counting = climbers
    figures: dict[int, Figures] = {}
    if counting:
        mine = {m: accounts[(program.pk, m)] for m in counting if (program.pk, m) in accounts} if accounts else {}
        cover: dict[int, Figures] = {}
        figures = figures_of(program, ranked, now, members={"in": counting},
                             accounts={m: a.pk for m, a in mine.items()} if len(mine) == len(counting) else None,
                             cover=cover if mine else None)
        counted_at = timezone.now()  # what the database held then (``now`` may be another moment)
        for m, account in mine.items():
            exact = cover.get(m, Figures())
            account.tier_figures_at, account.tier_figures_from = counted_at, since
            account.tier_paid, account.tier_orders, account.tier_points = exact.paid, exact.orders, exact.points
            account.tier_figures_exact = True
            account.tier_figures_oldest, account.tier_figures_newest = exact.oldest, exact.newest
            account.unsaved = True
    figures.update(known)
    return (program, ranked, {m: figures.get(m, Figures()) for m in climbing},
            {m: held[m] for m in climbing if m in held})


def evaluate_tiers(*, program: LoyaltyProgram, now: dt.datetime | None = None, chunk: int = 5000) -> TierResult:
    """Re-evaluate every member's tier in ``program`` (the nightly task): upgrades that ingestion
    missed, renewals and downgrades once a retention period is over.

    Set-based over ranges of ``chunk`` member ids: per range one aggregate over the orders, one
    over the ledger (when a tier counts points) and the locked tier rows, then bulk writes; each
    range is its own transaction. Running it twice with the same data and ``now`` changes nothing.
    """
    now = now or timezone.now()
    tiers = program_tiers([program.pk]).get(program.pk, [])
    result = TierResult()
    if not tiers:
        return result
    top = Member.objects.aggregate(top=Max("pk"))["top"] or 0
    for low in range(0, top + 1, chunk):
        selected = {"gte": low, "lt": low + chunk}
        with transaction.atomic():
            rows = _locked_rows(program, tiers, selected)
            figures = figures_of(program, tiers, now, members=selected)
            _decide(program, tiers, figures, rows, now, downgrade=True, result=result)
    return result


def merge_member_tiers(*, survivor_id: int, merged_id: int) -> int:
    """Member merge hook: the survivor keeps the better of the two tiers in each program."""
    moved = 0
    now = timezone.now()
    for row in MemberTier.objects.filter(member_id=merged_id).select_related("tier"):
        kept = MemberTier.objects.filter(program_id=row.program_id, member_id=survivor_id).select_related(
            "tier").first()
        if kept is None:
            moved += MemberTier.objects.filter(pk=row.pk).update(member_id=survivor_id)
            continue
        if row.tier.rank > kept.tier.rank:
            TierChange.objects.create(program_id=row.program_id, member_id=survivor_id, from_tier=kept.tier,
                                      to_tier=row.tier, reason=TierChangeReason.MERGE, changed_at=now,
                                      figures={"merged": merged_id})
            kept.tier, kept.achieved_at = row.tier, row.achieved_at
            kept.retained_until = max(kept.retained_until, row.retained_until)
            kept.save(update_fields=["tier", "achieved_at", "retained_until", "updated_at"])
            moved += 1
        row.delete()
    return moved


# Paid membership -------------------------------------------------------------------------------------

def buy_paid_membership(*, member, plan: PaidMembershipPlan, idempotency_key: str,
                        now: dt.datetime | None = None) -> PaidMembership:
    """Record a bought period of ``plan`` for ``member``; a renewal starts when the current period ends.

    Idempotency key: ``idempotency_key``, unique per program: repeating the call returns the
    period the first call recorded. The member's points account is locked while the period is
    placed, so two purchases never overlap. Rejects ``plan_not_on_sale``, ``idempotency_key_reused``.
    """
    if not (idempotency_key or "").strip():
        raise ValidationError(_("an idempotency key is required"), code="idempotency_key_required",
                              field="idempotency_key")
    now = now or timezone.now()
    member_id = getattr(member, "pk", member)
    with transaction.atomic():
        lock_accounts([(plan.program_id, member_id)])
        earlier = PaidMembership.objects.filter(program_id=plan.program_id, idempotency_key=idempotency_key).first()
        if earlier is not None:
            if (earlier.member_id, earlier.plan_id) != (member_id, plan.pk):
                raise Conflict(_("this idempotency key was already used for another request"),
                               code="idempotency_key_reused", field="idempotency_key")
            return earlier
        if not plan.is_active:
            raise ValidationError(_("this paid membership plan is not on sale"), code="plan_not_on_sale",
                                  field="plan")
        last_end = PaidMembership.objects.filter(program_id=plan.program_id, member_id=member_id,
                                                 ends_at__gt=now).aggregate(end=Max("ends_at"))["end"]
        starts = max(last_end or now, now)
        return PaidMembership.objects.create(
            program_id=plan.program_id, member_id=member_id, plan=plan, starts_at=starts,
            ends_at=starts + dt.timedelta(days=plan.duration_days), price=plan.price,
            status=PaidMembershipStatus.ACTIVE, idempotency_key=idempotency_key)


def expire_paid_memberships(*, now: dt.datetime | None = None) -> int:
    """Mark the periods that ended by ``now`` expired (one statement); returns how many."""
    now = now or timezone.now()
    return PaidMembership.objects.filter(status=PaidMembershipStatus.ACTIVE, ends_at__lte=now).update(
        status=PaidMembershipStatus.EXPIRED)
