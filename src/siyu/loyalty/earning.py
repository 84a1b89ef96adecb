"""Earning points (积分获取) inside the ingestion transaction: purchases, refunds, behaviour events.

Each service takes the ids a batch created or changed and works set-based: a fixed number of
queries per batch whatever its size, one ledger insert, one balance update. Idempotency keys
(unique per program) make re-ingesting change nothing:

- ``order:<id>`` — points for a purchase; ``order:<id>:cancel`` — taken back when a paid order is
  closed;
- ``refund:<id>`` — taken back for a refund, in proportion to the refunded share of the order;
- ``rule:<code>:<member>`` (once per member), ``rule:<code>:<member>:<day>`` (once a day) or
  ``rule:<code>:<member>:<day>:<event>`` — points for a behaviour event.

With no active program each service costs one query.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.commerce.models import Order, OrderLine, Product, Refund
from siyu.core.db import among, chunked
from siyu.events.models import Event
from siyu.loyalty.ledger import (
    Posting,
    PostResult,
    existing_keys,
    lock_account_ids,
    lock_accounts,
    post,
    write_staged,
)
from siyu.loyalty.models import (
    EntryKind,
    EventEarnRule,
    LoyaltyProgram,
    PaidMembership,
    PointsEntry,
    ProgramScope,
    SourceType,
)
from siyu.loyalty.programs import (
    ProgramIndex,
    active_programs,
    business_date,
    lot_expiry,
    member_day_multiplier,
    start_of_day,
)
from siyu.loyalty.programs import points_for as _points_for
from siyu.loyalty.tiers import (
    Upgrades,
    add_order_to_bound,
    decide_upgrades,
    entry_tier,
    forget_exact_figures,
    member_tiers,
    members_by_program,
    save_tier_figures,
    start_exact_figures,
    upgrade_tiers,
)
from siyu.org.models import Store

ONE = Decimal(1)


@dataclass
class EarnResult:
    """What one call wrote: ledger entries, net points, and postings already in the ledger."""

    entries: int = 0
    points: int = 0
    duplicates: int = 0
    upgrades: int = 0

    def add(self, posted) -> None:
        self.entries += len(posted.rows)
        self.points += posted.points
        self.duplicates += posted.duplicates


def _in_chunks(queryset_for, ids) -> list:
    return [row for chunk in chunked(sorted(set(ids)), 1000) for row in queryset_for(chunk)]


# Purchases --------------------------------------------------------------------------------------------

class NewOrder(NamedTuple):
    """An order the caller's transaction has just inserted, with what earning reads of it: its
    lines as mappings with ``product_id`` and ``amount`` (product exclusions), or None to read them."""

    pk: int
    member_id: int | None
    paid_amount: Decimal
    is_counted: bool
    ordered_at: dt.datetime
    paid_at: dt.datetime | None
    refunded_amount: Decimal
    store_id: int | None
    lines: Sequence[Mapping[str, Any]] | None = None

    @classmethod
    def of(cls, order: Order) -> NewOrder:
        return cls(order.pk, order.member_id, order.paid_amount, order.is_counted, order.ordered_at, order.paid_at,
                   order.refunded_amount, order.store_id)


def _order_facts(ids: list[int], new_orders: list[NewOrder], *, stores: Iterable[int | None] = ()
                 ) -> tuple[list[tuple], dict[int, tuple]]:
    """``(pk, member_id, paid, counted, ordered_at, paid_at, refunded, brand_id, group_id)`` of the
    orders with a member: ``ids`` read from the database, ``new_orders`` as the caller gave them;
    and ``{store_id: (brand_id, group_id)}`` of their stores and of ``stores``."""
    facts = _in_chunks(lambda chunk: Order.objects.filter(among("pk", chunk), member__isnull=False).order_by(
        ).values_list("pk", "member_id", "paid_amount", "is_counted", "ordered_at", "paid_at", "refunded_amount",
                      "store__brand_id", "store__brand__group_id"), ids)
    new_orders = [o for o in new_orders if o.member_id is not None]
    stores = {o.store_id for o in new_orders if o.store_id is not None} | {s for s in stores if s is not None}
    brands = {pk: (brand_id, group_id) for pk, brand_id, group_id in Store.objects.filter(
        pk__in=stores).values_list("pk", "brand_id", "brand__group_id")} if stores else {}
    facts.extend((*o[:7], *brands.get(o.store_id, (None, None))) for o in new_orders)
    return facts, brands


def earn_for_orders(*, order_ids: Iterable[int] = (), new_orders: Iterable[NewOrder] = (),
                    now: dt.datetime | None = None) -> EarnResult:
    """Earn points for the counted orders among ``order_ids`` and ``new_orders`` that have not earned yet.

    Points = eligible paid amount × points per yuan × the member's best multiplier benefit (tier
    or paid membership) × the member-day multiplier of the order's business day, rounded the
    program's way. Lines of excluded products/categories take their share of the paid amount out.
    An order earns once (``order:<id>``). Refunds of these orders are then reversed (see
    :func:`reverse_for_refunds`) and a paid order later closed gives back what is left of its
    points (``order:<id>:cancel``), so ingestion needs only this call. Orders without a member,
    outside every program or before the program's ``earn_from`` earn nothing. Members who earned
    are upgraded at once when they now qualify for a higher tier.

    Safe to call again with any orders, e.g. those just bound to a member (``bind_orders_to_identities``):
    what is already done is skipped, and the tier bounds of the accounts see the orders.
    ``new_orders`` are orders the caller's transaction has just inserted, as it inserted them: they
    are not read back, and no ledger entry can name them yet, so they are not looked up in the
    ledger either (reading them back and the lookup cost a fifth of a batch's earning). An order
    also among ``order_ids`` is read and looked up like the others.

    This is :func:`start_earning`, then its ``work()`` and ``finish()`` at once.
    """
    earning = start_earning(order_ids=order_ids, new_orders=new_orders, now=now)
    earning.work()
    return earning.finish()


def start_earning(*, order_ids: Iterable[int] = (), new_orders: Iterable[NewOrder] = (),
                  hold: Iterable[tuple[int | None, int | None]] = (), now: dt.datetime | None = None) -> OrderEarning:
    """:func:`earn_for_orders` in three steps, so that a caller can give the middle one the time of a
    statement of its own (order ingestion: the kept-total upserts):

    - this call reads what earning needs and locks the accounts and tier rows it will change;
    - ``work()`` decides each purchase's points, without the database;
    - ``finish()`` writes: the ledger entries, reversals, tier upgrades and the accounts.

    ``hold`` are ``(member_id, store_id)`` of orders the caller will earn for later in the same
    transaction (orders it is about to change): their accounts are locked now too, with the
    others, so that a batch takes its account locks in one id order, before anything else it
    locks after them (the lock order: accounts, then the kept totals). Nothing is written until
    ``finish()``, which the caller must call (a transaction left without it leaves the points out).
    """
    earning = OrderEarning(now or timezone.now())
    ids = list(order_ids)
    known = set(ids)
    new_orders = [o for o in new_orders if o.pk not in known]
    hold = [(m, s) for m, s in hold if m is not None]
    if not ids and not new_orders and not hold:
        return earning
    index = active_programs()
    if not index:
        return earning
    earning.start(index, ids, new_orders, hold)
    return earning


class OrderEarning:
    """The state of one :func:`start_earning` between its steps."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.result = EarnResult()
        self.index: ProgramIndex | None = None
        self.purchases: list = []  # _ready_purchases of the orders that earn now, for work()
        self.again: list[int] = []
        self.postings: list[Posting] = []
        self.pairs: list[tuple[int, int]] = []
        self.reversible: list[int] = []
        self.counters: set[tuple[int, int]] = set()
        self.accounts: dict = {}
        self.rows: dict = {}
        self.multiplier = None
        self.stored: dict[int, Decimal] = {}
        self.earned: set[tuple[int, str]] = set()
        self.posted: PostResult | None = None  # staged by work(), written by finish()
        self.upgrades: Upgrades | None = None  # decided by work(), written by finish()

    def start(self, index: ProgramIndex, ids: list[int], new_orders: list[NewOrder],
              hold: list[tuple[int, int | None]]) -> None:
        now = self.now
        fresh = {o.pk for o in new_orders}
        orders, brands = _order_facts(ids, new_orders, stores=[s for _m, s in hold])
        counted, reversible, seen, changed = [], [], [], []
        buyers, counters = set(), set()  # (program, member): who earns; whose tier figures count the orders
        counting: dict[tuple, list[int]] = {}  # by (brand, group): the ids of the programs counting its orders

        def programs_counting(brand_id, group_id) -> list[int]:
            if (programs := counting.get((brand_id, group_id))) is None:
                programs = counting[(brand_id, group_id)] = [
                    p.id for p in _counting_programs(index, brand_id, group_id)]
            return programs

        for pk, member_id, paid, is_counted, ordered_at, paid_at, refunded, brand_id, group_id in orders:
            program = index.for_brand(brand_id, group_id)
            occurred = paid_at or ordered_at
            if program is not None and not (program.earn_from and occurred < program.earn_from):
                if is_counted:
                    counted.append((program, pk, member_id, paid, occurred))
                    buyers.add((program.id, member_id))
                if refunded or not is_counted:
                    reversible.append(pk)
            programs = programs_counting(brand_id, group_id)
            if pk not in fresh:  # it may be among the stored tier figures of these programs as it was
                changed.extend([(p, member_id) for p in programs])
            if is_counted and refunded < paid:  # it counts in the tier figures of these programs
                new = pk in fresh
                for p in programs:
                    seen.append((p, member_id, paid, refunded, ordered_at, new))
                    counters.add((p, member_id))
        held = set()
        for member_id, store_id in hold:
            brand_id, group_id = brands.get(store_id, (None, None))
            if (program := index.for_brand(brand_id, group_id)) is not None:
                held.add((program.id, member_id))
            held.update((p, member_id) for p in programs_counting(brand_id, group_id))
        if not counted and not reversible and not seen and not changed and not held:
            return
        self.index = index
        # The buyers' accounts, and those of every member whose tier figures the orders count in (even
        # orders that earn nothing, e.g. before the program's start), locked at once: created where
        # missing, so that a batch creating an account and another adding orders of the same member
        # meet on the account's lock and the stored bound sees both.
        # So are the accounts whose stored figures may count an order of ``order_ids`` as it was
        # (changed since, or closed): their figures are no longer exact. (Created where missing too, so
        # that a batch counting the member's figures meanwhile meets this one on the lock.)
        # What the purchases' points need besides the accounts and tiers is worked out while the
        # database locks the accounts.
        lines = {o.pk: o.lines for o in new_orders if o.lines is not None}
        excluded = _excluded_by_program(index, counted, lines)
        ready = []
        accounts = self.accounts = lock_accounts(
            [*buyers, *counters, *changed, *held],
            meanwhile=lambda: ready.extend(_ready_purchases(counted, lines, excluded, index.days)))
        for pair in (*changed, *held):  # orders as they were, or as the caller is about to change them
            forget_exact_figures(accounts[pair])
        start_exact_figures(accounts.values(), index.programs,
                            Counter(o.member_id for o in new_orders if o.member_id is not None and o.is_counted),
                            now)
        for program_id, member_id, paid, refunded, ordered_at, new in seen:
            if (program_id, member_id) in accounts:
                add_order_to_bound(accounts[(program_id, member_id)], paid=paid, refunded=refunded,
                                   ordered_at=ordered_at, new=new)
        # The members' tier rows, read and locked once, for the multipliers and the upgrades.
        self.rows = member_tiers(members=members_by_program(buyers | counters), programs=index.programs,
                                 tiers=index.tiers)
        self.reversible, self.counters = reversible, counters
        if not ready:
            return
        # The orders that already earned are read after the accounts were locked: a concurrent batch of
        # the same orders waits for the lock and then sees them. The ``fresh`` orders (inserted by the
        # caller's transaction) cannot have earned and are not looked up.
        earned = _earned({(w[0].id, f"order:{w[1]}") for w in ready if w[1] not in fresh})
        self.earned = set(earned)
        if earned:
            self.again = [w[1] for w in ready if (w[0].id, f"order:{w[1]}") in earned]
            ready = [w for w in ready if (w[0].id, f"order:{w[1]}") not in earned]
        if not ready:
            return
        self.multiplier = _multipliers(index, {w[0].id for w in ready}, {w[2] for w in ready},
                                       [w[4] for w in ready], rows=self.rows)
        self.stored = _eligible_of_stored_lines(index, [w for w in ready if w[8] is None])
        self.purchases = ready

    def work(self) -> None:
        """Each purchase's points and ledger posting; when nothing is to be reversed and no buyer owes
        points, the entries, the accounts' new balances and figures and the tier upgrades too
        (unless a member must be counted). No database: ``alone`` refuses queries."""
        multiplier, stored, accounts = self.multiplier, self.stored, self.accounts
        postings, pairs = self.postings, self.pairs
        reason = _("purchase")
        for program, pk, member_id, paid, occurred, day, day_multiplier, expires, eligible in self.purchases:
            pair = (program.id, member_id)
            if eligible is None:
                eligible = stored.get(pk, paid)
            points = _points_for(program, eligible, multiplier(*pair, occurred) * day_multiplier)
            pairs.append(pair)
            if points <= 0:
                continue
            postings.append(Posting(accounts[pair].pk, EntryKind.EARN, points, f"order:{pk}", reason,
                                    SourceType.ORDER, str(pk), occurred, day, expires))
        self.purchases = []
        if self.index is None or self.reversible or self.again or any(a.debt for a in accounts.values()):
            return
        if postings:
            self.posted = post(postings, {a.pk: a for a in accounts.values()}, now=self.now, existing=self.earned,
                               defer=True, stage=True)
            self.postings = []
        self.upgrades = decide_upgrades(pairs=self.counters.union(pairs), programs=self.index.programs, now=self.now,
                                        accounts=accounts, rows=self.rows, tiers=self.index.tiers)

    def finish(self) -> EarnResult:
        """Write what :meth:`work` decided, the reversals and the tier upgrades; returns what was written.
        (A caller that had no statement to give ``work()`` may leave it out: it runs here then.)"""
        if self.purchases:
            self.work()
        index, result, accounts, now = self.index, self.result, self.accounts, self.now
        if index is None:
            return result
        self.index = None  # finished: a second call writes nothing
        if self.posted is not None:
            write_staged(self.posted)
            result.add(self.posted)
        if self.postings:
            result.add(post(self.postings, {a.pk: a for a in accounts.values()}, now=now,
                            existing=self.earned, defer=True))
        if self.upgrades is not None:
            result.upgrades += self.upgrades.write()
            return result
        reversible = sorted({*self.reversible, *self.again})  # re-sent orders: their refunds may have been amended
        if reversible:  # refunds that came with the orders, and paid orders now closed
            _reverse_orders(index, reversible, now, result, accounts=accounts)
        # Upgrades after the reversals: an order that came with its refund counts net of it. Members
        # whose orders changed (a refund amended downwards, an order bound to them) may qualify too.
        # With no upgrade to write, the accounts moved in memory are still saved here.
        result.upgrades += upgrade_tiers(pairs=self.counters.union(self.pairs), programs=index.programs, now=now,
                                         accounts=accounts, rows=self.rows, tiers=index.tiers, save=True)
        return result


def _counting_programs(index: ProgramIndex, brand_id: int | None, group_id: int | None) -> list[LoyaltyProgram]:
    """The programs whose tier figures count an order of this brand (as ``tiers.figures_of`` selects them)."""
    return [p for p in index.programs.values()
            if (p.scope == ProgramScope.GROUP and (brand_id is None or p.group_id == group_id))
            or (p.scope != ProgramScope.GROUP and brand_id is not None and p.brand_id == brand_id)]


def _earned(keys: set[tuple[int, str]]) -> dict[tuple[int, str], tuple[int, int, int]]:
    """``{(program_id, key): (entry id, points, account id)}`` of the purchase entries among ``keys``."""
    by_program = defaultdict(list)
    for program_id, key in keys:
        by_program[program_id].append(key)
    found = {}
    for program_id, wanted in by_program.items():
        for chunk in chunked(sorted(wanted), 1000):
            for pk, key, amount, account_id in PointsEntry.objects.filter(
                    among("idempotency_key", chunk), program_id=program_id).values_list(
                    "pk", "idempotency_key", "amount", "account_id"):
                found[(program_id, key)] = (pk, amount, account_id)
    return found


def _ready_purchases(counted: list, lines: dict, excluded: dict[int, frozenset[int]], days: dict) -> list[tuple]:
    """What the points of the ``counted`` orders need besides the member's multiplier, from the
    orders alone (no query: it runs while the accounts are locked), in the order they are posted
    (by moment, then id): ``(program, pk, member_id, paid, occurred, business day, member-day
    multiplier, lot expiry, eligible amount)``. The eligible amount is the paid amount less the
    share of the ``excluded`` products' lines (``{program_id: product ids}``) when the caller gave
    the lines (``{order_id: NewOrder.lines}``), None when they must be read."""
    ready = []
    for program, pk, member_id, paid, occurred in sorted(counted, key=lambda w: (w[4], w[1])):
        day = business_date(program, occurred)
        if (on_day := days.get((program.id, day))) is None:
            on_day = days[(program.id, day)] = (member_day_multiplier(program, day), lot_expiry(program, occurred, day))
        eligible = paid
        if program.id in excluded:
            given = lines.get(pk)
            eligible = None if given is None else _eligible_of_lines(paid, given, excluded[program.id])
        ready.append((program, pk, member_id, paid, occurred, day, *on_day, eligible))
    return ready


def _multipliers(index: ProgramIndex, programs: set[int], members: set[int], moments: list[dt.datetime], *,
                 rows: dict):
    """``multiplier(program_id, member_id, at)``: the best points multiplier benefit the member holds
    (their tier's — from their tier ``rows`` —, or an active paid membership's), 1 when there is none."""
    tier_factor, plan_factor = {}, {}
    for program_id in programs:
        for tier_id, plan_id, factor in index.multipliers.get(program_id, ()):
            table, key = (tier_factor, tier_id) if tier_id else (plan_factor, plan_id)
            table[key] = max(table[key], factor) if key in table else factor
    if not tier_factor and not plan_factor:
        return lambda program_id, member_id, at: ONE
    held = {(p, m): row.tier_id for p, by_member in rows.items() for m, row in by_member.items()}
    entry = {p: getattr(entry_tier(index.tiers.get(p, [])), "pk", None) for p in programs}
    periods = defaultdict(list)
    if plan_factor:
        for p, m, start, end, plan in PaidMembership.objects.filter(
                among("member_id", members), program_id__in=programs, plan_id__in=list(plan_factor),
                starts_at__lte=max(moments), ends_at__gt=min(moments)).values_list(
                "program_id", "member_id", "starts_at", "ends_at", "plan_id"):
            periods[(p, m)].append((start, end, plan))

    def multiplier(program_id: int, member_id: int, at: dt.datetime) -> Decimal:
        best = tier_factor.get(held.get((program_id, member_id), entry.get(program_id)))
        for start, end, plan in periods.get((program_id, member_id), ()):
            if start <= at < end and (best is None or plan_factor[plan] > best):
                best = plan_factor[plan]
        return ONE if best is None else best

    return multiplier


def _excluded_by_program(index: ProgramIndex, counted: list, lines: dict) -> dict[int, frozenset[int]]:
    """``{program_id: the products it excludes}`` of the programs with exclusions among the
    ``counted`` orders (read only for those with an order whose lines the caller gave)."""
    programs = {w[0].id for w in counted if w[0].id in index.exclusions}
    given = {w[0].id for w in counted if w[0].id in programs and w[1] in lines}
    return {p: _excluded_products(*index.exclusions[p]) if p in given else frozenset() for p in programs}


def _less_excluded(paid: Decimal, total: Decimal, out: Decimal) -> Decimal:
    """The paid amount less the share of ``out`` in the lines' ``total``, to the cent."""
    return (paid * (total - out) / total).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _eligible_of_lines(paid: Decimal, lines: Sequence[Mapping[str, Any]], excluded: frozenset[int]) -> Decimal:
    """The part of ``paid`` that earns, by the order's ``lines`` (``product_id``, ``amount``)."""
    out = [line["amount"] for line in lines if line["product_id"] in excluded]
    if out and (out := sum(out)) > 0 and (total := sum(line["amount"] for line in lines)) > 0:
        return _less_excluded(paid, total, out)
    return paid


def _eligible_of_stored_lines(index: ProgramIndex, orders: list) -> dict[int, Decimal]:
    """``{order_id: paid amount less the share of excluded lines}`` of the ``orders`` (as
    ``_ready_purchases`` gives them) with an excluded line, from their lines in the database."""
    by_program, paid = defaultdict(list), {}
    for program, pk, _member, amount, *_rest in orders:
        by_program[program.id].append(pk)
        paid[pk] = amount
    eligible = {}
    for program_id, ids in by_program.items():
        products, categories = index.exclusions[program_id]
        # Only the orders with an excluded line come back, with their lines' total and the excluded part.
        for chunk in chunked(sorted(ids), 1000):
            if connection.vendor == "postgresql":
                found = _excluded_shares_pg(chunk, products, categories)
            else:
                excluded = Q(product_id__in=products) | Q(product__category__in=categories)
                found = OrderLine.objects.filter(among("order_id", chunk)).order_by().values("order_id").annotate(
                    total=Sum("amount"), out=Sum("amount", filter=excluded)).filter(
                    out__gt=0, total__gt=0).values_list("order_id", "total", "out")
            for order_id, total, out in found:
                eligible[order_id] = _less_excluded(paid[order_id], total, out)
    return eligible


def _excluded_products(products: frozenset[int], categories: frozenset[str]) -> frozenset[int]:
    """The products a program excludes: those named, and those of the categories named."""
    if not categories:
        return products
    return products | set(Product.objects.filter(category__in=categories).values_list("pk", flat=True))


def _excluded_shares_pg(order_ids: list[int], products: frozenset[int], categories: frozenset[str]) -> list[tuple]:
    """PostgreSQL: ``(order_id, lines' total, excluded part)`` of the orders with an excluded line.

    One lateral aggregate per order over the ``order_id`` index: the planner, estimating from
    statistics that lag behind a bulk load, otherwise scans every line of every order.
    """
    products = _excluded_products(products, categories)
    if not products:
        return []
    lines = connection.ops.quote_name(OrderLine._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.id, t.total, t.out FROM unnest(%s::bigint[]) AS o(id) CROSS JOIN LATERAL ("  # noqa: S608
            f"SELECT SUM(l.amount) AS total, SUM(l.amount) FILTER (WHERE l.product_id = ANY(%s::bigint[])) AS out "
            f"FROM {lines} l WHERE l.order_id = o.id) t WHERE t.out > 0 AND t.total > 0",
            [list(order_ids), sorted(products)])
        return cursor.fetchall()


# Refunds and cancellations ----------------------------------------------------------------------------

def reverse_for_refunds(*, refund_ids: Iterable[int] = (), order_ids: Iterable[int] = (),
                        now: dt.datetime | None = None) -> EarnResult:
    """Take back the points of refunded parts: the refunds ``refund_ids`` and every refund of ``order_ids``.

    A refund takes back its share of the order's points: with refunds r₁ … rₖ of an order paid P
    that earned E, refund k takes round(E·(r₁+…+rₖ)/P) − round(E·(r₁+…+rₖ₋₁)/P), so a full refund
    takes back exactly E. Points come from the order's own lot first, then the lots closest to
    expiry; what the member already spent becomes debt (欠分), settled by their next earnings.

    Key ``refund:<id>``: a refund is reversed once. A refund whose amount was amended afterwards
    is brought in line with a further entry ``refund:<id>:<n>`` (n = 2, 3, …): more points taken
    back, or points given back (a ``reverse`` credit) when the amount went down. A closed order
    takes back what its refunds left (``order:<id>:cancel``) and a reopened one gives it back.
    """
    result = EarnResult()
    order_ids = set(order_ids)
    refund_ids = list(refund_ids)
    if not order_ids and not refund_ids:
        return result
    index = active_programs()
    if not index:
        return result
    if refund_ids:
        order_ids |= set(_in_chunks(lambda chunk: Refund.objects.filter(among("pk", chunk)).values_list(
            "order_id", flat=True), refund_ids))
    now = now or timezone.now()
    accounts: dict = {}
    _reverse_orders(index, sorted(order_ids), now, result, accounts=accounts)
    save_tier_figures(accounts.values())
    return result


def _reverse_orders(index: ProgramIndex, order_ids: list[int], now: dt.datetime, result: EarnResult, *,
                    accounts: dict) -> None:
    """Bring the reversals of ``order_ids`` up to date with their refunds and their status.

    ``accounts`` (``{(program_id, member_id): account}``) are the accounts the caller holds
    locked; the others are locked here (and added) before what was taken back is read.
    """
    programs = list(index.programs)
    purchases = {}  # order id -> (its lot, program id, points earned, account id, earned at)
    for chunk in chunked(order_ids, 1000):
        for pk, program_id, amount, account_id, key, occurred in PointsEntry.objects.filter(
                among("idempotency_key", [f"order:{o}" for o in chunk]), program_id__in=programs).values_list(
                "pk", "program_id", "amount", "account_id", "idempotency_key", "occurred_at"):
            purchases[int(key.split(":")[1])] = (pk, program_id, amount, account_id, occurred)
    if not purchases:
        return
    held = {a.pk: a for a in accounts.values()}
    missing = {p[3] for p in purchases.values()} - set(held)
    if missing:
        for account in lock_account_ids(missing).values():
            held[account.pk] = accounts[(account.program_id, account.member_id)] = account
    orders = {pk: (paid, counted) for pk, paid, counted in _in_chunks(
        lambda chunk: Order.objects.filter(among("pk", chunk)).values_list("pk", "paid_amount", "is_counted"),
        purchases)}
    refunds = defaultdict(list)
    for pk, order_id, amount, at in _in_chunks(lambda chunk: Refund.objects.filter(
            among("order_id", chunk)).values_list("pk", "order_id", "amount", "refunded_at").order_by("order_id", "pk"),
            purchases):
        refunds[order_id].append((pk, amount, at))
    # What each refund and each closing already took back (balance + debt; a credit back counts
    # negative), and in how many entries: read after the lock.
    taken: dict[tuple[int, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for chunk in chunked(sorted({p[3] for p in purchases.values()}), 1000):
        for program_id, source_type, source_id, amount, debt in PointsEntry.objects.filter(
                among("account_id", chunk), kind=EntryKind.REVERSE).values_list(
                "program_id", "source_type", "source_id", "amount", "debt_delta"):
            done = taken[(program_id, source_type, source_id)]
            done[0] += debt - amount
            done[1] += 1
    credits, debits = [], []
    for order_id, (lot, program_id, earned, account_id, earned_at) in sorted(purchases.items()):
        program = index.programs[program_id]
        paid, counted = orders[order_id]
        cancel = (program_id, SourceType.ORDER, str(order_id))
        wanted, share_before = {}, 0
        cumulative = Decimal(0)
        for refund_id, amount, at in refunds[order_id]:
            cumulative += amount
            share = _share(earned, cumulative, paid)
            wanted[(program_id, SourceType.REFUND, str(refund_id))] = (share - share_before, refund_id, at)
            share_before = share
        if not counted and taken[cancel][1]:
            # Closed and already taken back in full: the refunds stay as they were, the closing holds the rest.
            for key, (_points, refund_id, at) in list(wanted.items()):
                wanted[key] = (taken.get(key, (0, 0))[0], refund_id, at)
            left = earned - sum(points for points, _r, _a in wanted.values())
        else:
            left = 0 if counted else earned - sum(points for points, _r, _a in wanted.values())
        wanted[cancel] = (left, order_id, now)
        for key, (points, source_id, at) in wanted.items():
            already, entries = taken.get(key, (0, 0))
            change = points - already
            if change == 0:
                continue
            base = f"refund:{source_id}" if key[1] == SourceType.REFUND else f"order:{order_id}:cancel"
            posting = _reversal(program, account_id, lot, change, base if not entries else f"{base}:{entries + 1}",
                                _("refund") if key[1] == SourceType.REFUND else _("order closed"), key[1],
                                source_id, at, expires_at=lot_expiry(program, earned_at))
            (debits if change > 0 else credits).append(posting)
    postings = credits + debits  # points given back first, so that a debit in the same batch can use them
    if postings:
        result.add(post(postings, held, now=now, defer=True))


def _share(earned: int, refunded: Decimal, paid: Decimal) -> int:
    if paid <= 0 or refunded >= paid:
        return earned
    return int((Decimal(earned) * refunded / paid).quantize(ONE, rounding=ROUND_HALF_UP))


def _reversal(program: LoyaltyProgram, account_id: int, lot: int, points: int, key: str, reason: str,
              source_type: str, source_id: int, at: dt.datetime, *, expires_at: dt.datetime | None) -> Posting:
    """Take ``points`` back (> 0: from the order's own lot first, any shortfall as debt), or give
    ``-points`` back (< 0: a new lot expiring when the order's points do)."""
    return Posting(account_id=account_id, kind=EntryKind.REVERSE, amount=-points, key=key, reason=reason,
                   source_type=source_type, source_id=str(source_id), occurred_at=at,
                   business_date=business_date(program, at), into_debt=True, prefer_lots=(lot,),
                   expires_at=expires_at if points < 0 else None)


# Behaviour events -----------------------------------------------------------------------------------

def earn_for_events(*, event_ids: Iterable[int] = (), event_keys: Iterable[str] = (),
                    now: dt.datetime | None = None) -> EarnResult:
    """Earn points for behaviour events (``event_ids`` or their idempotency keys) by the program's rules.

    Each matching active rule earns its points under its key (once per member, once per business
    day, or per event up to ``max_per_day``), within the program's daily and monthly caps on event
    points (the last event within a cap earns what is left of it). Events are taken in time
    order; the member's account is locked first, so concurrent batches cannot exceed a cap.
    """
    result = EarnResult()
    event_ids, event_keys = list(event_ids), list(event_keys)
    if not event_ids and not event_keys:
        return result
    index = active_programs()
    if not index:
        return result
    rules = index.rules
    if not rules:
        return result
    now = now or timezone.now()
    kinds = sorted({kind for _p, kind in rules})
    columns = ("pk", "member_id", "kind", "occurred_at", "properties", "store__brand_id", "store__brand__group_id",
               "channel__store__brand_id", "channel__store__brand__group_id", "member__store__brand_id",
               "member__store__brand__group_id")
    events = _in_chunks(lambda chunk: Event.objects.filter(among("pk", chunk), kind__in=kinds).values_list(
        *columns), event_ids)
    events += _in_chunks(lambda chunk: Event.objects.filter(among("idempotency_key", chunk), kind__in=kinds)
                         .values_list(*columns), event_keys)
    candidates = []
    unique = {row[0]: row for row in events}.values()
    for pk, member_id, kind, occurred, properties, *brands in sorted(unique, key=lambda e: (e[3], e[0])):
        brand, group = next(((b, g) for b, g in zip(brands[::2], brands[1::2], strict=True) if b), (None, None))
        program = index.for_brand(brand, group)
        if program is None or (program.earn_from and occurred < program.earn_from):
            continue
        day = business_date(program, occurred)
        for rule in rules.get((program.pk, kind), []):
            if rule.matches(properties if isinstance(properties, dict) else {}):
                candidates.append((program, rule, pk, member_id, occurred, day, _rule_key(rule, member_id, day, pk)))
    _earn_events(index, candidates, now, result)
    return result


def _rule_key(rule: EventEarnRule, member_id: int, day: dt.date, event_id: int) -> str:
    if rule.once_per_member:
        return f"rule:{rule.code}:{member_id}"
    if rule.max_per_day == 1:
        return f"rule:{rule.code}:{member_id}:{day.isoformat()}"
    return f"rule:{rule.code}:{member_id}:{day.isoformat()}:{event_id}"


def _earn_events(index: ProgramIndex, candidates: list, now: dt.datetime, result: EarnResult) -> None:
    if not candidates:
        return
    accounts = lock_accounts((program.pk, member_id) for program, _r, _e, member_id, *_ in candidates)
    by_id = {a.pk: a for a in accounts.values()}
    known = existing_keys((c[0].pk, c[6]) for c in candidates)
    seen = set(known)
    used = _event_points_used(candidates, accounts)
    postings, pairs = [], []
    for program, rule, event_id, member_id, occurred, day, key in candidates:
        account = accounts[(program.pk, member_id)].pk
        if (program.pk, key) in seen:
            continue
        seen.add((program.pk, key))
        counted = used["count"]
        if rule.max_per_day and counted[(account, rule.code, day)] >= rule.max_per_day:
            continue
        month = day.replace(day=1)
        room = rule.points
        if program.event_daily_cap is not None:
            room = min(room, program.event_daily_cap - used["day"][(account, day)])
        if program.event_monthly_cap is not None:
            room = min(room, program.event_monthly_cap - used["month"][(account, month)])
        counted[(account, rule.code, day)] += 1
        if room <= 0:
            continue
        used["day"][(account, day)] += room
        used["month"][(account, month)] += room
        pairs.append((program.pk, member_id))
        postings.append(Posting(account_id=account, kind=EntryKind.EARN, amount=room, key=key, reason=rule.name,
                                source_type=SourceType.EVENT, source_id=str(event_id), occurred_at=occurred,
                                business_date=day, expires_at=lot_expiry(program, occurred)))
    result.add(post(postings, by_id, now=now, existing=known, defer=True))
    result.upgrades += upgrade_tiers(pairs=pairs, programs=index.programs, now=now, accounts=accounts, save=True)


def _event_points_used(candidates: list, accounts: dict) -> dict:
    """Event points already earned per account and day/month, and earnings per account, rule and day
    on the candidates' days (read after the accounts were locked).

    The ledger's (account, occurred_at) index finds them: the business days' bounds as moments in
    each program's zone (a day of the earliest zone starts first, one of the latest ends last).
    An index of its own (account, source, day) cost every ledger insert more than the rest of it.
    """
    used = {"day": defaultdict(int), "month": defaultdict(int), "count": defaultdict(int)}
    account_ids = sorted({a.pk for a in accounts.values()})
    days = {c[5] for c in candidates}
    first = min(days).replace(day=1)
    last = max(days)
    programs = {c[0].pk: c[0] for c in candidates}.values()
    rows = PointsEntry.objects.filter(
        among("account_id", account_ids), occurred_at__gte=min(start_of_day(p, first) for p in programs),
        occurred_at__lt=max(start_of_day(p, last + dt.timedelta(days=1)) for p in programs),
        source_type=SourceType.EVENT, kind=EntryKind.EARN, business_date__gte=first, business_date__lte=last)
    for account_id, day, points in rows.order_by().values("account_id", "business_date").annotate(
            points=Sum("amount")).values_list("account_id", "business_date", "points"):
        used["month"][(account_id, day.replace(day=1))] += points
        if day in days:
            used["day"][(account_id, day)] += points
    if any(c[1].max_per_day and c[1].max_per_day > 1 for c in candidates):
        for account_id, day, key in rows.filter(business_date__in=sorted(days)).values_list(
                "account_id", "business_date", "idempotency_key"):
            if key.startswith("rule:"):
                used["count"][(account_id, key.split(":")[1], day)] += 1
    return used
