"""The points ledger (积分账本): every change of a balance is an entry, and every credit is also a lot.

One engine, :func:`post`, writes every kind of entry for a batch of postings against accounts
the caller has locked (``lock_accounts``, always in primary-key order so that concurrent
batches cannot deadlock, and before the kept totals of orders: docs/loyalty.md, lock order):

- a **credit** (earn, positive adjustment) adds an entry that is also a lot: its ``remaining``
  points and their expiry; if the account owes points, a ``settle`` entry immediately takes the
  debt back out of the new lot;
- a **debit** (redeem, expire, reverse, negative adjustment) takes points from lots, the
  preferred ones first (a refund takes back its own order's points first), then those closest to
  expiry, and records an allocation per lot drawn from. A debit larger than the balance either
  fails with ``insufficient_points`` (spending, adjusting) or records the shortfall as debt
  (reversals): no balance ever goes negative.

Invariants, checked by :func:`verify_ledger` (``siyu loyalty_check``): for every account
``balance = Σ entry.amount = Σ entry.remaining``, ``debt = Σ entry.debt_delta``, and every lot's
``amount − remaining`` is the sum of its allocations.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.audit import audit
from siyu.core.db import alone, among, chunked, fetch_rows, fetch_rows_of, insert_rows, note_bulk_write, update_rows
from siyu.core.errors import Conflict, ValidationError
from siyu.loyalty.models import (
    EntryKind,
    LoyaltyProgram,
    PointsAccount,
    PointsAllocation,
    PointsEntry,
    SourceType,
)
from siyu.loyalty.programs import business_date, lot_expiry

ALL = None  # a debit of "everything left in the lot" (expiry)


@dataclass(slots=True)
class Posting:
    """One intended change of one account; ``amount`` > 0 credits, < 0 debits, ALL empties ``only_lot``."""

    account_id: int
    kind: str
    amount: int | None
    key: str
    reason: str
    source_type: str
    source_id: str
    occurred_at: dt.datetime
    business_date: dt.date
    expires_at: dt.datetime | None = None  # credits: when the lot expires
    into_debt: bool = False  # debits: record a shortfall as debt instead of failing
    prefer_lots: tuple[int, ...] = ()  # debits: lots to draw from first
    only_lot: int | None = None  # debits: draw from this lot only (expiry)
    actor: str = ""


class _Lot:
    """A lot while a batch is posted: loaded (locked) for a debit, or new from a credit of the batch."""

    __slots__ = ("account_id", "amount", "changed", "credit", "earned_at", "entry_id", "expires_at", "remaining")

    def __init__(self, entry_id, account_id, amount, remaining, earned_at, expires_at, credit=None):
        self.entry_id, self.account_id, self.amount, self.remaining = entry_id, account_id, amount, remaining
        self.earned_at, self.expires_at, self.credit, self.changed = earned_at, expires_at, credit, False

    @property
    def order(self):
        return (self.expires_at is None, self.expires_at or self.earned_at, self.earned_at, self.entry_id or 0)


ENTRY_FIELDS = ("program_id", "account_id", "kind", "amount", "debt_delta", "reason", "source_type", "source_id",
                "idempotency_key", "occurred_at", "business_date", "actor", "remaining", "expires_at")
ENTRY_COLUMNS = (*ENTRY_FIELDS, "created_at")  # what ``_Entry.row()`` gives, in its order


class _Entry:
    """A ledger entry on its way in: plain attributes (a model instance per row costs more than its insert).
    A credit's ``remaining`` is filled in when it is written (a later debit of the batch may draw on it)."""

    __slots__ = ("pk", *ENTRY_COLUMNS)

    def __init__(self, program_id, account_id, kind, amount, debt_delta, reason, source_type, source_id,
                 idempotency_key, occurred_at, business_date, actor, expires_at=None):  # spelt out: the hot path
        self.program_id, self.account_id, self.kind, self.amount = program_id, account_id, kind, amount
        self.debt_delta, self.reason, self.source_type, self.source_id = debt_delta, reason, source_type, source_id
        self.idempotency_key, self.occurred_at, self.business_date = idempotency_key, occurred_at, business_date
        self.actor, self.expires_at = actor, expires_at
        self.pk = self.created_at = self.remaining = None

    def row(self) -> tuple:
        return (self.program_id, self.account_id, self.kind, self.amount, self.debt_delta, self.reason,
                self.source_type, self.source_id, self.idempotency_key, self.occurred_at, self.business_date,
                self.actor, self.remaining, self.expires_at, self.created_at)


@dataclass
class PostResult:
    rows: list[_Entry] = field(default_factory=list)
    duplicates: int = 0
    staged: list[tuple] | None = None  # post(stage=True): the entries' rows, for write_staged()

    @property
    def points(self) -> int:
        return sum(e.amount for e in self.rows)

    @cached_property
    def entries(self) -> list[PointsEntry]:
        """The entries written, as model instances (built on first use)."""
        made = []
        for e in self.rows:
            entry = PointsEntry(id=e.pk, created_at=e.created_at, **{n: getattr(e, n) for n in ENTRY_FIELDS})
            entry._state.adding, entry._state.db = False, connection.alias
            made.append(entry)
        return made

    def entry_for(self, key: str) -> PointsEntry | None:
        return next((e for e in self.entries if e.idempotency_key == key), None)


def _insufficient(balance: int, wanted: int) -> Conflict:
    return Conflict(_("not enough points: the balance is %(balance)d, %(wanted)d are needed")
                    % {"balance": balance, "wanted": wanted}, code="insufficient_points", field="amount")


def lock_accounts(pairs: Iterable[tuple[int, int]], *, meanwhile: Callable[[], object] | None = None
                  ) -> dict[tuple[int, int], LockedAccount]:
    """The ``(program_id, member_id)`` accounts, created where missing, locked in id order.

    Existing accounts are locked first and only the missing ones inserted: on MariaDB an
    ``INSERT IGNORE`` of an existing row takes a shared lock that deadlocks with the lock taken next.
    On PostgreSQL the insert returns the rows it made (a row this transaction inserted is its own
    until it commits); only rows another transaction inserted meanwhile are locked afterwards.
    ``meanwhile`` (work that needs no database) runs while the locks are taken (``fetch_rows``).
    """
    pairs = sorted(set(pairs))
    if not pairs:
        alone(meanwhile)
        return {}
    found = _lock_pairs(pairs, meanwhile=meanwhile)
    missing = [pair for pair in pairs if pair not in found]
    if missing:
        if connection.vendor == "postgresql":
            found.update(_insert_accounts(missing))
            missing = [pair for pair in missing if pair not in found]
        else:
            PointsAccount.objects.bulk_create([PointsAccount(program_id=p, member_id=m) for p, m in missing],
                                              ignore_conflicts=True, batch_size=1000)
        if missing:
            found.update(_lock_pairs(missing))
    return found


def _insert_accounts(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], LockedAccount]:
    """PostgreSQL: insert the accounts of ``pairs``, skipping those that exist by now; returns the new ones."""
    table = PointsAccount._meta.db_table
    made = [LockedAccount(*row) for row in fetch_rows_of(
        f"INSERT INTO {connection.ops.quote_name(table)} (program_id, member_id, balance, debt, tier_paid, "  # noqa: S608
        "tier_orders, tier_points, tier_figures_exact, updated_at) SELECT p, m, 0, 0, 0, 0, 0, false, %s "
        "FROM unnest(%s::bigint[], %s::bigint[]) AS v(p, m) ORDER BY p, m "
        f"ON CONFLICT (program_id, member_id) DO NOTHING RETURNING {', '.join(ACCOUNT_COLUMNS)}",
        [timezone.now(), [p for p, _m in pairs], [m for _p, m in pairs]])]
    for account in made:
        account.created = True
    note_bulk_write(PointsAccount, len(made))
    return {(a.program_id, a.member_id): a for a in made}


def _lock_pairs(pairs: list[tuple[int, int]], *, meanwhile: Callable[[], object] | None = None
                ) -> dict[tuple[int, int], LockedAccount]:
    """One locking query for all pairs (a batch holds at most a few thousand), so that the locks
    are taken in one id order across programs."""
    members = defaultdict(list)
    for program_id, member_id in pairs:
        members[program_id].append(member_id)
    wanted = Q()
    for program_id, ids in members.items():
        wanted |= Q(among("member_id", ids), program_id=program_id)
    return {(a.program_id, a.member_id): a for a in _accounts(PointsAccount.objects.filter(wanted), meanwhile)}


def lock_account_ids(ids: Iterable[int]) -> dict[int, LockedAccount]:
    return {a.pk: a for chunk in chunked(sorted(set(ids)), 1000)
            for a in _accounts(PointsAccount.objects.filter(among("pk", chunk)))}


def _locked(queryset):
    return queryset.select_for_update().order_by("pk")


TIER_FIGURES = ("tier_figures_at", "tier_figures_from", "tier_paid", "tier_orders", "tier_points",
                "tier_figures_exact", "tier_figures_oldest", "tier_figures_newest")
ACCOUNT_COLUMNS = ("id", "program_id", "member_id", "balance", "debt", *TIER_FIGURES)


class LockedAccount:
    """A locked account's row as a batch needs it (a model instance per row costs more than the lock).

    ``tier_*`` are the stored upper bound of the member's tier figures, and whether it is exact
    (see ``siyu.loyalty.tiers``);
    ``unsaved`` says that the row moved in memory (balance, debt or tier figures) and must be
    written (``save_accounts``); ``created`` that this transaction inserted it (PostgreSQL).
    """

    __slots__ = (
        "balance",
        "created",
        "debt",
        "member_id",
        "pk",
        "program_id",
        "tier_figures_at",
        "tier_figures_exact",
        "tier_figures_from",
        "tier_figures_newest",
        "tier_figures_oldest",
        "tier_orders",
        "tier_paid",
        "tier_points",
        "unsaved",
    )

    def __init__(self, pk: int, program_id: int, member_id: int, balance: int, debt: int, tier_figures_at=None,
                 tier_figures_from=None, tier_paid=0, tier_orders=0, tier_points=0, tier_figures_exact=False,
                 tier_figures_oldest=None, tier_figures_newest=None):
        self.pk, self.program_id, self.member_id, self.balance, self.debt = pk, program_id, member_id, balance, debt
        self.tier_figures_at, self.tier_figures_from = tier_figures_at, tier_figures_from
        self.tier_paid, self.tier_orders, self.tier_points = tier_paid, tier_orders, tier_points
        self.tier_figures_exact = tier_figures_exact
        self.tier_figures_oldest, self.tier_figures_newest = tier_figures_oldest, tier_figures_newest
        self.unsaved = self.created = False

    @property
    def id(self) -> int:
        return self.pk


def _accounts(queryset, meanwhile: Callable[[], object] | None = None) -> list[LockedAccount]:
    """The accounts, locked in id order."""
    return [LockedAccount(*row) for row in fetch_rows(_locked(queryset).values_list(*ACCOUNT_COLUMNS),
                                                      meanwhile=meanwhile)]


def existing_keys(keys: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which ``(program_id, idempotency_key)`` pairs the ledger already holds (one query per program)."""
    by_program = defaultdict(set)
    for program_id, key in keys:
        by_program[program_id].add(key)
    found = set()
    for program_id, wanted in by_program.items():
        for chunk in chunked(sorted(wanted), 1000):
            found.update((program_id, k) for k in PointsEntry.objects.filter(
                among("idempotency_key", chunk), program_id=program_id).values_list("idempotency_key", flat=True))
    return found


def post(postings: Sequence[Posting], accounts: dict[int, LockedAccount | PointsAccount], *, now: dt.datetime,
         existing: set[tuple[int, str]] | None = None, defer: bool = False, stage: bool = False) -> PostResult:
    """Write ``postings`` (in their order) against ``accounts`` (``{id: account}``, locked by the caller).

    A posting whose ``(program, key)`` is already in the ledger is a duplicate and changes
    nothing; ``existing`` spares the lookup when the caller read those keys after locking the
    accounts. Raises ``Conflict(insufficient_points)`` before writing anything when a debit without
    ``into_debt`` asks for more than the balance. With ``defer`` (``LockedAccount`` rows only) the
    accounts' new balances stay in memory, marked ``unsaved``: the caller writes every account it
    touched in one statement (``save_accounts``) once the batch is done; and the new entries' ids
    are not read back unless allocations name them (the caller counts the entries and their points).
    A deferred call of credits only, with no debt to settle (a batch of purchases), sends each entry
    to the database as it is made: PostgreSQL stores the first while the next are made. Such a
    call with ``stage`` and ``existing`` touches no database: the entries' rows wait in the
    result for :func:`write_staged` (anything else raises ``ValueError`` before it queries).
    """
    if stage and (not defer or existing is None or any(
            p.amount is None or p.amount <= 0 or accounts[p.account_id].debt for p in postings)):
        raise ValueError("only a deferred call of credits, with no debt to settle and its existing keys, stages")
    result = PostResult()
    if existing is None:
        existing = existing_keys((accounts[p.account_id].program_id, p.key) for p in postings)
    seen = set(existing)
    fresh = []
    for p in postings:
        key = (accounts[p.account_id].program_id, p.key)
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        fresh.append(p)
    if not fresh:
        return result
    debtors = {p.account_id for p in fresh if p.amount is None or p.amount < 0}
    lots: dict[int, list[_Lot]] = defaultdict(list)
    for chunk in chunked(sorted(debtors), 500):
        for row in _locked(PointsEntry.objects.filter(among("account_id", chunk), remaining__gt=0)).values_list(
                "pk", "account_id", "amount", "remaining", "occurred_at", "expires_at"):
            lots[row[1]].append(_Lot(*row))
    new_lots: list[_Lot] = []
    allocations: list[tuple[_Entry, _Lot, int]] = []
    balance = {a: accounts[a].balance for a in {p.account_id for p in fresh}}
    debt = {a: accounts[a].debt for a in balance}
    program_of = {a: accounts[a].program_id for a in balance}
    entries = result.rows
    created = timezone.now()

    def entry(p: Posting, kind: str, amount: int, debt_delta: int = 0, key: str = "", reason: str = "",
              expires_at: dt.datetime | None = None) -> _Entry:
        made = _Entry(program_of[p.account_id], p.account_id, kind, amount, debt_delta, (reason or p.reason)[:200],
                      p.source_type, str(p.source_id)[:64], key or p.key, p.occurred_at, p.business_date,
                      p.actor[:200], expires_at)
        made.created_at = created
        entries.append(made)
        return made

    def draw(p: Posting, debit: _Entry, wanted: int) -> None:
        pool = lots[p.account_id]
        if p.only_lot is not None:
            ordered = [lot for lot in pool if lot.entry_id == p.only_lot]
        else:
            first = [lot for lot in pool if lot.entry_id in p.prefer_lots]
            rest = [lot for lot in pool if lot.entry_id not in p.prefer_lots]
            ordered = first + sorted(rest, key=lambda lot: lot.order)
        for lot in ordered:
            if wanted == 0:
                break
            take = min(wanted, lot.remaining)
            if take:
                lot.remaining -= take
                lot.changed = True
                allocations.append((debit, lot, take))
                wanted -= take
        if wanted:
            raise RuntimeError(f"account {p.account_id}: its lots hold less than its balance (siyu loyalty_check)")

    def apply():
        """Apply the postings in order; yields each entry as it is made when nothing later in the
        call changes it (a credit no debit or debt of the call draws on)."""
        for p in fresh:
            a = p.account_id
            if p.amount is not None and p.amount > 0:
                credit = entry(p, p.kind, p.amount, expires_at=p.expires_at)
                balance[a] += p.amount
                if not debt[a] and a not in debtors:  # nothing of this call draws on it: no lot in memory
                    credit.remaining = p.amount
                    yield credit
                    continue
                lot = _Lot(None, a, p.amount, p.amount, p.occurred_at, p.expires_at, credit=credit)
                new_lots.append(lot)
                lots[a].append(lot)
                if debt[a]:
                    owed = min(debt[a], p.amount)
                    settle = entry(p, EntryKind.SETTLE, -owed, -owed, key=f"{p.key}:settle",
                                   reason=_("debt settled from new points"))
                    lot.remaining -= owed
                    allocations.append((settle, lot, owed))
                    balance[a] -= owed
                    debt[a] -= owed
                continue
            wanted = (sum(lot.remaining for lot in lots[a] if lot.entry_id == p.only_lot) if p.amount is None
                      else -p.amount)
            if wanted == 0:
                continue
            take = min(wanted, balance[a])
            if take < wanted and not p.into_debt:
                raise _insufficient(balance[a], wanted)
            # A settlement pays the debt back; any other debit's shortfall becomes debt.
            debt_delta = -take if p.kind == EntryKind.SETTLE else wanted - take
            draw(p, entry(p, p.kind, -take, debt_delta), take)
            balance[a] -= take
            debt[a] += debt_delta

    if stage:
        result.staged = [made.row() for made in apply()]
    elif defer and not debtors and not any(debt.values()):
        # Credits only, none settling a debt: every entry is final as it is made and goes to the
        # database at once (COPY on PostgreSQL), which stores the first while the next are made.
        written = 0

        def rows():
            nonlocal written
            for made in apply():
                written += 1
                yield made.row()

        insert_rows(PointsEntry, ENTRY_COLUMNS, rows())
        if written != len(entries):  # an entry made but not written would lose its points
            raise RuntimeError(f"{len(entries)} ledger entries made, {written} written")
        note_bulk_write(PointsEntry, written)
    else:  # the whole call first: a debit may fail, or change a lot made before it
        for _made in apply():
            pass
        _save(entries, new_lots, allocations, lots, ids=not defer or bool(allocations))
    figures = _tier_points(entries, accounts)
    changed = [a for a in balance if (balance[a], debt[a]) != (accounts[a].balance, accounts[a].debt)
               or figures.get(a) or getattr(accounts[a], "unsaved", False)]
    if changed:
        # One statement: each account moves by its own delta (a join with the deltas as a table); the
        # tier figures of these locked accounts are written as they now stand (see ``siyu.loyalty.tiers``).
        for a in changed:
            if a in figures:
                points, oldest, newest = figures[a]
                account = accounts[a]
                account.tier_points += points
                widen_tier_span(account, oldest, newest)
        if defer:
            for a in changed:
                accounts[a].balance, accounts[a].debt, accounts[a].unsaved = balance[a], debt[a], True
            return result
        moves = [(a, balance[a] - accounts[a].balance, debt[a] - accounts[a].debt,
                  *(getattr(accounts[a], name) for name in TIER_FIGURES)) for a in sorted(changed)]
        update_rows(PointsAccount, ["balance", "debt", *TIER_FIGURES], moves, add={"balance", "debt"},
                    also={"updated_at": timezone.now()}, chunk_size=5000)
        for a in changed:
            accounts[a].balance, accounts[a].debt = balance[a], debt[a]
            if hasattr(accounts[a], "unsaved"):
                accounts[a].unsaved = False
    return result


def write_staged(posted: PostResult) -> None:
    """Write the entries a ``post(…, stage=True)`` made (the accounts are the caller's to save)."""
    if posted.staged:
        insert_rows(PointsEntry, ENTRY_COLUMNS, posted.staged)
        note_bulk_write(PointsEntry, len(posted.staged))
    posted.staged = None


def save_accounts(accounts: Iterable[LockedAccount], *, meanwhile: Callable[[], object] | None = None) -> int:
    """Write the (locked) ``accounts`` marked ``unsaved`` as they stand in memory: balance, debt and
    tier figures, one statement. Returns how many were written. ``meanwhile`` (work that needs no
    database) runs while the statement does (``update_rows``)."""
    changed = sorted((a for a in accounts if a.unsaved), key=lambda a: a.pk)
    update_rows(PointsAccount, ["balance", "debt", *TIER_FIGURES],
                list(map(_saved_row, changed)),
                also={"updated_at": timezone.now()}, chunk_size=5000, meanwhile=meanwhile)
    for a in changed:
        a.unsaved = False
    return len(changed)


#: A locked account's row as ``save_accounts`` writes it (one C call per account, not a generator).
_saved_row = attrgetter("pk", "balance", "debt", *TIER_FIGURES)


def widen_tier_span(account, oldest: dt.datetime, newest: dt.datetime) -> None:
    """The account's stored tier figures now also count facts from ``oldest`` to ``newest``."""
    account.tier_figures_oldest = min(oldest, account.tier_figures_oldest or oldest)
    account.tier_figures_newest = max(newest, account.tier_figures_newest or newest)


def _tier_points(entries: list[_Entry], accounts) -> dict[int, list]:
    """``{account id: [change of the points tier figure, oldest, newest entry]}``: earned and
    reversed points (net of the debt a reversal recorded) dated inside the account's stored tier
    figures (see ``siyu.loyalty.tiers``), and the span of their moments."""
    moved: dict[int, list] = {}
    for e in entries:
        if e.kind not in (EntryKind.EARN, EntryKind.REVERSE):
            continue
        account = accounts[e.account_id]
        if account.tier_figures_at is not None and (account.tier_figures_from is None
                                                    or e.occurred_at >= account.tier_figures_from):
            move = moved.get(e.account_id)
            if move is None:
                moved[e.account_id] = [e.amount - e.debt_delta, e.occurred_at, e.occurred_at]
            else:
                move[0] += e.amount - e.debt_delta
                move[1], move[2] = min(move[1], e.occurred_at), max(move[2], e.occurred_at)
    return moved


def _save(entries: list[_Entry], new_lots: list[_Lot], allocations, lots, *, ids: bool) -> None:
    """Entries (the new lots among them) and allocations by ``insert_rows`` (COPY on PostgreSQL), the
    stored lots drawn on by one update. With ``ids`` the entries learn their ids (a round trip to
    draw them first on PostgreSQL, a lookup by key on MySQL)."""
    for lot in new_lots:
        lot.credit.remaining = lot.remaining
    rows = [e.row() for e in entries]
    if not ids:
        insert_rows(PointsEntry, ENTRY_COLUMNS, rows)
    elif connection.features.can_return_rows_from_bulk_insert:
        for e, pk in zip(entries, insert_rows(PointsEntry, ENTRY_COLUMNS, rows, returning=True),
                         strict=True):
            e.pk = pk
    else:  # MySQL returns no ids: find them by their unique key
        insert_rows(PointsEntry, ENTRY_COLUMNS, rows)
        by_program = defaultdict(dict)
        for e in entries:
            by_program[e.program_id][e.idempotency_key] = e
        for program_id, keyed in by_program.items():
            for chunk in chunked(list(keyed), 1000):
                for key, pk in PointsEntry.objects.filter(among("idempotency_key", chunk), program_id=program_id
                                                          ).values_list("idempotency_key", "pk"):
                    keyed[key].pk = pk
    for lot in new_lots:
        lot.entry_id = lot.credit.pk
    insert_rows(PointsAllocation, ("entry_id", "lot_id", "amount"),
                [(debit.pk, lot.entry_id, amount) for debit, lot, amount in allocations])
    update_rows(PointsEntry, ["remaining"], [(lot.entry_id, lot.remaining) for pool in lots.values() for lot in pool
                                             if lot.changed and lot.credit is None])
    if entries:
        note_bulk_write(PointsEntry, len(entries))


# Single-member operations --------------------------------------------------------------------------

def _source(source) -> tuple[str, str]:
    if isinstance(source, str):
        kind, _sep, ref = source.partition(":")
    else:
        kind, ref = source
    if kind not in SourceType.values:
        raise ValidationError(_("unknown source %(source)s") % {"source": kind}, code="invalid_source",
                              field="source")
    return kind, str(ref)


def _replay(program: LoyaltyProgram, account, key: str, kind: str, amount: int) -> PointsEntry | None:
    """The entry an earlier call with ``key`` wrote, or None; a different request under the key is refused."""
    earlier = PointsEntry.objects.filter(program=program, idempotency_key=key).first()
    if earlier is None:
        return None
    if (earlier.account_id, earlier.kind, earlier.amount) != (account.pk, kind, amount):
        raise Conflict(_("this idempotency key was already used for another request"),
                       code="idempotency_key_reused", field="idempotency_key")
    return earlier


def spend_points(*, member, program: LoyaltyProgram, amount: int, reason: str, source, idempotency_key: str,
                 now: dt.datetime | None = None, actor: str = "") -> PointsEntry:
    """Spend ``amount`` points of ``member`` (a redemption), from the lots closest to expiry first.

    Idempotency key: ``idempotency_key``, unique per program: a repeated call returns the entry
    the first one wrote. ``source`` is ``("redemption", id)`` or ``"redemption:id"``.
    Rejects: ``invalid_amount`` (not a positive whole number), ``insufficient_points`` (the
    balance is smaller; nothing is written), ``idempotency_key_reused``.
    """
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValidationError(_("spend a positive whole number of points"), code="invalid_amount", field="amount")
    return _single(member=member, program=program, kind=EntryKind.REDEEM, amount=-amount, reason=reason,
                   source=source, key=idempotency_key, now=now, actor=actor)[0]


def adjust_points(*, member, program: LoyaltyProgram, amount: int, reason: str, actor: str, idempotency_key: str,
                  user=None, now: dt.datetime | None = None) -> PointsEntry:
    """A manual adjustment (积分调整) by staff, with a reason, audited in the same transaction.

    A positive ``amount`` credits a lot (with the program's expiry; it settles a debt first); a
    negative one debits like a spend. Rejects ``invalid_amount`` (0 or not whole),
    ``reason_required``, ``insufficient_points``, ``idempotency_key_reused``.
    """
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
        raise ValidationError(_("adjust by a non-zero whole number of points"), code="invalid_amount", field="amount")
    if not (reason or "").strip():
        raise ValidationError(_("give the reason for the adjustment"), code="reason_required", field="reason")
    with transaction.atomic():
        made, created = _single(member=member, program=program, kind=EntryKind.ADJUST, amount=amount,
                                reason=reason.strip(), source=(SourceType.OPERATOR, actor), key=idempotency_key,
                                now=now, actor=actor)
        if created:
            audit(actor=actor, user=user, action="loyalty.adjust_points", target_type="points_account",
                  target_id=made.account_id, data={"entry": made.pk, "amount": amount, "reason": made.reason,
                                                   "program": program.code})
    return made


def _single(*, member, program, kind, amount, reason, source, key, now, actor) -> tuple[PointsEntry, bool]:
    if not (key or "").strip():
        raise ValidationError(_("an idempotency key is required"), code="idempotency_key_required",
                              field="idempotency_key")
    now = now or timezone.now()
    source_type, source_id = _source(source)
    member_id = getattr(member, "pk", member)
    with transaction.atomic():
        account = lock_accounts([(program.pk, member_id)])[(program.pk, member_id)]
        earlier = _replay(program, account, key, kind, amount)
        if earlier is not None:
            return earlier, False
        posting = Posting(account_id=account.pk, kind=kind, amount=amount, key=key, reason=reason,
                          source_type=source_type, source_id=source_id, occurred_at=now,
                          business_date=business_date(program, now), actor=actor,
                          expires_at=lot_expiry(program, now) if amount > 0 else None)
        return post([posting], {account.pk: account}, now=now).entry_for(key), True


# Expiry --------------------------------------------------------------------------------------------

def expire_points(*, now: dt.datetime | None = None, program: LoyaltyProgram | None = None, chunk: int = 1000) -> int:
    """Expire every lot due by ``now``: one ``expire`` entry per lot (key ``expire:<lot>``).

    Set-based per chunk of due lots (the ``expires_at`` index), each chunk its own transaction
    with the accounts locked in id order. A lot spent in the meantime expires only what is left;
    an expired lot has nothing left, so nothing expires twice. Returns the points expired.
    """
    now = now or timezone.now()
    due = PointsEntry.objects.filter(expires_at__lte=now, remaining__gt=0)
    if program is not None:
        due = due.filter(program=program)
    expired, after = 0, -1
    programs: dict[int, LoyaltyProgram] = {}
    while True:
        rows = list(due.filter(pk__gt=after).order_by("pk").values_list("pk", "account_id", "expires_at")[:chunk])
        if not rows:
            return expired
        after = rows[-1][0]
        with transaction.atomic():
            accounts = lock_account_ids(a for _, a, _ in rows)
            for account in accounts.values():
                if account.program_id not in programs:
                    programs[account.program_id] = LoyaltyProgram.objects.get(pk=account.program_id)
            postings = [Posting(account_id=a, kind=EntryKind.EXPIRE, amount=ALL, key=f"expire:{lot}",
                                reason=_("points expired"), source_type=SourceType.SYSTEM, source_id=str(lot),
                                occurred_at=at, business_date=business_date(programs[accounts[a].program_id], at),
                                only_lot=lot)
                        for lot, a, at in rows]
            expired -= post(postings, accounts, now=now).points


# Merges ----------------------------------------------------------------------------------------------

def merge_accounts(*, survivor_id: int, merged_id: int) -> int:
    """Member merge hook: the merged member's accounts join the survivor's (their entries move).

    Where both had an account in a program, balances and debts add up, and a debt is then settled
    from the balance (a ``settle`` entry), so that a debt is only ever owed with a zero balance.
    """
    moved = 0
    # The survivor's stored tier figures no longer bound their orders and points: count them afresh.
    PointsAccount.objects.filter(member_id__in=[survivor_id, merged_id]).update(tier_figures_at=None)
    for account in PointsAccount.objects.filter(member_id=merged_id).order_by("pk"):
        target = PointsAccount.objects.filter(program_id=account.program_id, member_id=survivor_id).first()
        if target is None:
            moved += PointsAccount.objects.filter(pk=account.pk).update(member_id=survivor_id)
            continue
        locked = lock_account_ids([account.pk, target.pk])
        source, target = locked[account.pk], locked[target.pk]
        PointsEntry.objects.filter(account_id=source.pk).update(account_id=target.pk)
        PointsAccount.objects.filter(pk=target.pk).update(balance=F("balance") + source.balance,
                                                          debt=F("debt") + source.debt)
        PointsAccount.objects.filter(pk=source.pk).delete()
        target = PointsAccount.objects.get(pk=target.pk)
        moved += 1
        owed = min(target.balance, target.debt)
        if owed:
            now = timezone.now()
            program = LoyaltyProgram.objects.get(pk=target.program_id)
            post([Posting(account_id=target.pk, kind=EntryKind.SETTLE, amount=-owed,
                          key=f"merge:{merged_id}:{target.pk}:settle", reason=_("debt settled on member merge"),
                          source_type=SourceType.SYSTEM, source_id=str(merged_id), occurred_at=now,
                          business_date=business_date(program, now))],
                 {target.pk: target}, now=now)
    return moved


# Verification --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mismatch:
    account_id: int
    program: str
    member_id: int
    problem: str
    cached: int
    ledger: int


def verify_ledger(*, program: LoyaltyProgram | None = None) -> tuple[int, list[Mismatch]]:
    """Compare every account's cached balance and debt with its ledger, lots and allocations, and
    the ledger's keys without database constraints (an entry's program and account) with what they name.

    Returns ``(accounts checked, mismatches)``. Set-based: one query per invariant, each
    returning only the offending rows.
    """
    accounts = PointsAccount.objects.all()
    if program is not None:
        accounts = accounts.filter(program=program)
    entries = PointsEntry.objects.filter(account=OuterRef("pk")).order_by().values("account")
    ledger = accounts.annotate(
        sum_amount=Coalesce(Subquery(entries.annotate(s=Sum("amount")).values("s")), 0),
        sum_debt=Coalesce(Subquery(entries.annotate(s=Sum("debt_delta")).values("s")), 0),
        sum_lots=Coalesce(Subquery(entries.annotate(s=Sum("remaining")).values("s")), 0),
    ).filter(~Q(balance=F("sum_amount")) | ~Q(debt=F("sum_debt")) | ~Q(balance=F("sum_lots"))
             | Q(balance__lt=0) | Q(debt__lt=0) | Q(balance__gt=0, debt__gt=0))
    found: list[Mismatch] = []
    for a in ledger.select_related("program").order_by("pk"):
        label = (a.program.code, a.member_id)
        if a.balance != a.sum_amount:
            found.append(Mismatch(a.pk, *label, "balance ≠ Σ entries", a.balance, a.sum_amount))
        if a.debt != a.sum_debt:
            found.append(Mismatch(a.pk, *label, "debt ≠ Σ debt changes", a.debt, a.sum_debt))
        if a.balance != a.sum_lots:
            found.append(Mismatch(a.pk, *label, "balance ≠ Σ lots remaining", a.balance, a.sum_lots))
        if a.balance > 0 and a.debt > 0:
            found.append(Mismatch(a.pk, *label, "debt owed beside a balance", a.balance, a.debt))
    allocated = PointsAllocation.objects.filter(lot=OuterRef("pk")).order_by().values("lot")
    lots_off = PointsEntry.objects.filter(remaining__isnull=False).annotate(
        drawn=Coalesce(Subquery(allocated.annotate(s=Sum("amount")).values("s")), 0)
    ).exclude(remaining=F("amount") - F("drawn"))
    if program is not None:
        lots_off = lots_off.filter(program=program)
    for pk, account_id, code, member_id, amount, remaining, drawn in lots_off.order_by("pk").values_list(
            "pk", "account_id", "account__program__code", "account__member_id", "amount", "remaining", "drawn"):
        found.append(Mismatch(account_id, code, member_id, f"lot {pk}: amount − remaining ≠ Σ allocations",
                              amount - remaining, drawn))
    # The keys without a database constraint: an entry's program is its account's (a copy), and its account exists.
    stray_entries = PointsEntry.objects.exclude(program_id=F("account__program_id"))
    if program is not None:
        stray_entries = stray_entries.filter(account__program=program)
    for pk, account_id, code, member_id, program_id in stray_entries.order_by("pk").values_list(
            "pk", "account_id", "account__program__code", "account__member_id", "program_id"):
        found.append(Mismatch(account_id, code, member_id, f"entry {pk}: program ≠ the account's", program_id, 0))
    orphan_entries = PointsEntry.objects.filter(~Exists(PointsAccount.objects.filter(pk=OuterRef("account_id"))))
    if program is not None:
        orphan_entries = orphan_entries.filter(program=program)
    codes = dict(LoyaltyProgram.objects.values_list("pk", "code"))
    for pk, account_id, program_id, amount in orphan_entries.order_by("pk").values_list(
            "pk", "account_id", "program_id", "amount"):
        found.append(Mismatch(account_id, codes.get(program_id, ""), 0, f"entry {pk}: no such account", 0, amount))
    return accounts.count(), found

