"""The points ledger (积分账本): every change of a balance is an entry, every credit a lot.

One engine, :func:`post`, writes every kind of entry for a batch of postings against accounts
the caller has locked (``lock_accounts``, always in primary-key order so that concurrent
batches cannot deadlock):

- a **credit** (earn, positive adjustment) adds an entry and a lot (with its expiry); if the
  account owes points, a ``settle`` entry immediately takes the debt back out of the new lot;
- a **debit** (redeem, expire, reverse, negative adjustment) takes points from lots, the
  preferred ones first (a refund takes back its own order's points first), then those closest to
  expiry, and records an allocation per lot drawn from. A debit larger than the balance either
  fails with ``insufficient_points`` (spending, adjusting) or records the shortfall as debt
  (reversals): no balance ever goes negative.

Invariants, checked by :func:`verify_ledger` (``siyu loyalty_check``): for every account
``balance = Σ entry.amount = Σ lot.remaining``, ``debt = Σ entry.debt_delta``, and every lot's
``amount − remaining`` is the sum of its allocations.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Case, F, IntegerField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.audit import audit
from siyu.core.db import chunked
from siyu.core.errors import Conflict, ValidationError
from siyu.loyalty.models import (
    EntryKind,
    LoyaltyProgram,
    PointsAccount,
    PointsAllocation,
    PointsEntry,
    PointsLot,
    SourceType,
)
from siyu.loyalty.programs import business_date, lot_expiry

ALL = None  # a debit of "everything left in the lot" (expiry)


@dataclass
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


@dataclass
class _Lot:
    obj: PointsLot
    changed: bool = False

    @property
    def order(self):
        lot = self.obj
        return (lot.expires_at is None, lot.expires_at or lot.earned_at, lot.earned_at, lot.entry_id or 0)


@dataclass
class PostResult:
    entries: list[PointsEntry] = field(default_factory=list)
    duplicates: int = 0

    def entry_for(self, key: str) -> PointsEntry | None:
        return next((e for e in self.entries if e.idempotency_key == key), None)


def _insufficient(balance: int, wanted: int) -> Conflict:
    return Conflict(_("not enough points: the balance is %(balance)d, %(wanted)d are needed")
                    % {"balance": balance, "wanted": wanted}, code="insufficient_points", field="amount")


def lock_accounts(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], PointsAccount]:
    """The ``(program_id, member_id)`` accounts, created where missing, locked in id order.

    Existing accounts are locked first and only the missing ones inserted: on MariaDB an
    ``INSERT IGNORE`` of an existing row takes a shared lock that deadlocks with the lock taken next.
    """
    pairs = sorted(set(pairs))
    if not pairs:
        return {}
    found = _lock_pairs(pairs)
    missing = [pair for pair in pairs if pair not in found]
    if missing:
        PointsAccount.objects.bulk_create([PointsAccount(program_id=p, member_id=m) for p, m in missing],
                                          ignore_conflicts=True, batch_size=1000)
        found.update(_lock_pairs(missing))
    return found


def _lock_pairs(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], PointsAccount]:
    """One locking query for all pairs (a batch holds at most a few thousand), so that the locks
    are taken in one id order across programs."""
    members = defaultdict(list)
    for program_id, member_id in pairs:
        members[program_id].append(member_id)
    wanted = Q()
    for program_id, ids in members.items():
        wanted |= Q(program_id=program_id, member_id__in=ids)
    return {(a.program_id, a.member_id): a for a in _locked(PointsAccount.objects.filter(wanted))}


def lock_account_ids(ids: Iterable[int]) -> dict[int, PointsAccount]:
    return {a.pk: a for chunk in chunked(sorted(set(ids)), 1000)
            for a in _locked(PointsAccount.objects.filter(pk__in=chunk))}


def _locked(queryset):
    return queryset.select_for_update().order_by("pk")


def existing_keys(keys: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which ``(program_id, idempotency_key)`` pairs the ledger already holds (one query per program)."""
    by_program = defaultdict(set)
    for program_id, key in keys:
        by_program[program_id].add(key)
    found = set()
    for program_id, wanted in by_program.items():
        for chunk in chunked(sorted(wanted), 1000):
            found.update((program_id, k) for k in PointsEntry.objects.filter(
                program_id=program_id, idempotency_key__in=chunk).values_list("idempotency_key", flat=True))
    return found


def post(postings: Sequence[Posting], accounts: dict[int, PointsAccount], *, now: dt.datetime) -> PostResult:
    """Write ``postings`` (in their order) against ``accounts`` (``{id: account}``, locked by the caller).

    A posting whose ``(program, key)`` is already in the ledger is a duplicate and changes
    nothing. Raises ``Conflict(insufficient_points)`` before writing anything when a debit without
    ``into_debt`` asks for more than the balance.
    """
    result = PostResult()
    seen = existing_keys((accounts[p.account_id].program_id, p.key) for p in postings)
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
        for lot in _locked(PointsLot.objects.filter(account_id__in=chunk, remaining__gt=0)):
            lots[lot.account_id].append(_Lot(lot))
    new_lots: list[tuple[PointsEntry, PointsLot]] = []
    allocations: list[tuple[PointsEntry, _Lot, int]] = []
    balance = {a: accounts[a].balance for a in {p.account_id for p in fresh}}
    debt = {a: accounts[a].debt for a in balance}

    def entry(p: Posting, kind: str, amount: int, debt_delta: int = 0, key: str = "") -> PointsEntry:
        made = PointsEntry(program_id=accounts[p.account_id].program_id, account_id=p.account_id, kind=kind,
                           amount=amount, debt_delta=debt_delta, reason=p.reason[:200], source_type=p.source_type,
                           source_id=str(p.source_id)[:64], idempotency_key=key or p.key, occurred_at=p.occurred_at,
                           business_date=p.business_date, actor=p.actor[:200])
        result.entries.append(made)
        return made

    def draw(p: Posting, debit: PointsEntry, wanted: int) -> None:
        pool = lots[p.account_id]
        if p.only_lot is not None:
            ordered = [lot for lot in pool if lot.obj.entry_id == p.only_lot]
        else:
            first = [lot for lot in pool if lot.obj.entry_id in p.prefer_lots]
            rest = [lot for lot in pool if lot.obj.entry_id not in p.prefer_lots]
            ordered = first + sorted(rest, key=lambda lot: lot.order)
        for lot in ordered:
            if wanted == 0:
                break
            take = min(wanted, lot.obj.remaining)
            if take:
                lot.obj.remaining -= take
                lot.changed = True
                allocations.append((debit, lot, take))
                wanted -= take
        if wanted:
            raise RuntimeError(f"account {p.account_id}: its lots hold less than its balance (siyu loyalty_check)")

    for p in fresh:
        a = p.account_id
        if p.amount is not None and p.amount > 0:
            credit = entry(p, p.kind, p.amount)
            lot = PointsLot(account_id=a, amount=p.amount, remaining=p.amount, earned_at=p.occurred_at,
                            expires_at=p.expires_at)
            new_lots.append((credit, lot))
            holder = _Lot(lot)
            lots[a].append(holder)
            balance[a] += p.amount
            if debt[a]:
                owed = min(debt[a], p.amount)
                settle = entry(p, EntryKind.SETTLE, -owed, -owed, key=f"{p.key}:settle")
                settle.reason = _("debt settled from new points")
                lot.remaining -= owed
                allocations.append((settle, holder, owed))
                balance[a] -= owed
                debt[a] -= owed
            continue
        if p.amount is None:
            wanted = sum(lot.obj.remaining for lot in lots[a] if lot.obj.entry_id == p.only_lot)
        else:
            wanted = -p.amount
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

    _save(result.entries, new_lots, allocations, lots)
    changed = [a for a in balance if (balance[a], debt[a]) != (accounts[a].balance, accounts[a].debt)]
    if changed:
        moves = {"balance": F("balance") + _per_account(changed, lambda a: balance[a] - accounts[a].balance)}
        if any(debt[a] != accounts[a].debt for a in changed):
            moves["debt"] = F("debt") + _per_account(changed, lambda a: debt[a] - accounts[a].debt)
        PointsAccount.objects.filter(pk__in=changed).update(**moves, updated_at=timezone.now())
        for a in changed:
            accounts[a].balance, accounts[a].debt = balance[a], debt[a]
    return result


def _per_account(ids: list[int], delta) -> Case | Value:
    if len(ids) == 1:
        return Value(delta(ids[0]))
    return Case(*[When(pk=a, then=Value(delta(a))) for a in ids], default=Value(0), output_field=IntegerField())


def _save(entries: list[PointsEntry], new_lots, allocations, lots) -> None:
    PointsEntry.objects.bulk_create(entries, batch_size=1000)
    if entries and entries[0].pk is None:  # MySQL returns no ids: find them by their unique key
        by_program = defaultdict(dict)
        for e in entries:
            by_program[e.program_id][e.idempotency_key] = e
        for program_id, keyed in by_program.items():
            for chunk in chunked(list(keyed), 1000):
                for key, pk in PointsEntry.objects.filter(program_id=program_id, idempotency_key__in=chunk
                                                          ).values_list("idempotency_key", "pk"):
                    keyed[key].pk = pk
    for credit, lot in new_lots:
        lot.entry_id = credit.pk
    PointsLot.objects.bulk_create([lot for _, lot in new_lots], batch_size=1000)
    PointsAllocation.objects.bulk_create(
        [PointsAllocation(entry_id=debit.pk, lot_id=lot.obj.entry_id, amount=amount)
         for debit, lot, amount in allocations], batch_size=1000)
    fresh = {lot.entry_id for _, lot in new_lots}
    changed = [lot.obj for pool in lots.values() for lot in pool if lot.changed and lot.obj.entry_id not in fresh]
    PointsLot.objects.bulk_update(changed, ["remaining"], batch_size=500)


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


def _replay(program: LoyaltyProgram, account: PointsAccount, key: str, kind: str, amount: int) -> PointsEntry | None:
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
    due = PointsLot.objects.filter(expires_at__lte=now, remaining__gt=0)
    if program is not None:
        due = due.filter(account__program=program)
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
            expired -= sum(e.amount for e in post(postings, accounts, now=now).entries)


# Merges ----------------------------------------------------------------------------------------------

def merge_accounts(*, survivor_id: int, merged_id: int) -> int:
    """Member merge hook: the merged member's accounts join the survivor's (entries and lots move).

    Where both had an account in a program, balances and debts add up, and a debt is then settled
    from the balance (a ``settle`` entry), so that a debt is only ever owed with a zero balance.
    """
    moved = 0
    for account in PointsAccount.objects.filter(member_id=merged_id).order_by("pk"):
        target = PointsAccount.objects.filter(program_id=account.program_id, member_id=survivor_id).first()
        if target is None:
            moved += PointsAccount.objects.filter(pk=account.pk).update(member_id=survivor_id)
            continue
        locked = lock_account_ids([account.pk, target.pk])
        source, target = locked[account.pk], locked[target.pk]
        PointsEntry.objects.filter(account=source).update(account=target)
        PointsLot.objects.filter(account=source).update(account=target)
        PointsAccount.objects.filter(pk=target.pk).update(balance=F("balance") + source.balance,
                                                          debt=F("debt") + source.debt)
        source.delete()
        target.refresh_from_db()
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
    """Compare every account's cached balance and debt with its ledger, lots and allocations.

    Returns ``(accounts checked, mismatches)``. Set-based: one query per invariant, each
    returning only the offending rows.
    """
    accounts = PointsAccount.objects.all()
    if program is not None:
        accounts = accounts.filter(program=program)
    entries = PointsEntry.objects.filter(account=OuterRef("pk")).order_by().values("account")
    lots = PointsLot.objects.filter(account=OuterRef("pk")).order_by().values("account")
    ledger = accounts.annotate(
        sum_amount=Coalesce(Subquery(entries.annotate(s=Sum("amount")).values("s")), 0),
        sum_debt=Coalesce(Subquery(entries.annotate(s=Sum("debt_delta")).values("s")), 0),
        sum_lots=Coalesce(Subquery(lots.annotate(s=Sum("remaining")).values("s")), 0),
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
    lots_off = PointsLot.objects.annotate(
        drawn=Coalesce(Subquery(allocated.annotate(s=Sum("amount")).values("s")), 0)
    ).exclude(remaining=F("amount") - F("drawn"))
    if program is not None:
        lots_off = lots_off.filter(account__program=program)
    for lot in lots_off.select_related("account__program").order_by("pk"):
        found.append(Mismatch(lot.account_id, lot.account.program.code, lot.account.member_id,
                              f"lot {lot.pk}: amount − remaining ≠ Σ allocations", lot.amount - lot.remaining,
                              lot.drawn))
    return accounts.count(), found

