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
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.commerce.models import Order, OrderLine, Refund
from siyu.core.db import among, chunked
from siyu.events.models import Event
from siyu.loyalty.ledger import Posting, existing_keys, lock_account_ids, lock_accounts, post
from siyu.loyalty.models import (
    Benefit,
    BenefitKind,
    EntryKind,
    EventEarnRule,
    LoyaltyProgram,
    MemberTier,
    PaidMembership,
    PointsEntry,
    PurchaseExclusion,
    SourceType,
)
from siyu.loyalty.programs import ProgramIndex, active_programs, business_date, lot_expiry, member_day_multiplier
from siyu.loyalty.programs import points_for as _points_for
from siyu.loyalty.tiers import entry_tier, program_tiers, upgrade_tiers

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

def earn_for_orders(*, order_ids: Iterable[int], now: dt.datetime | None = None) -> EarnResult:
    """Earn points for the counted orders among ``order_ids`` that have not earned yet.

    Points = eligible paid amount × points per yuan × the member's best multiplier benefit (tier
    or paid membership) × the member-day multiplier of the order's business day, rounded the
    program's way. Lines of excluded products/categories take their share of the paid amount out.
    An order earns once (``order:<id>``). Refunds of these orders are then reversed (see
    :func:`reverse_for_refunds`) and a paid order later closed gives back what is left of its
    points (``order:<id>:cancel``), so ingestion needs only this call. Orders without a member,
    outside every program or before the program's ``earn_from`` earn nothing. Members who earned
    are upgraded at once when they now qualify for a higher tier.
    """
    result = EarnResult()
    ids = list(order_ids)
    if not ids:
        return result
    index = active_programs()
    if not index:
        return result
    now = now or timezone.now()
    orders = _in_chunks(lambda chunk: Order.objects.filter(among("pk", chunk), member__isnull=False).values_list(
        "pk", "member_id", "paid_amount", "is_counted", "ordered_at", "paid_at", "refunded_amount",
        "store__brand_id", "store__brand__group_id"), ids)
    wanted, reversible = [], []
    for pk, member_id, paid, counted, ordered_at, paid_at, refunded, brand_id, group_id in orders:
        program = index.for_brand(brand_id, group_id)
        occurred = paid_at or ordered_at
        if program is not None and not (program.earn_from and occurred < program.earn_from):
            wanted.append((program, pk, member_id, paid, counted, occurred))
            if refunded or not counted:
                reversible.append(pk)
    if not wanted:
        return result
    counted = [w for w in wanted if w[4]]
    pairs = _earn_purchases(counted, now, result) if counted else []
    if reversible:  # refunds that came with the orders, and paid orders now closed
        _reverse_orders(index, reversible, now, result)
    # Upgrades after the reversals: an order that came with its refund counts net of it.
    result.upgrades += upgrade_tiers(pairs=pairs, programs=index.programs, now=now)
    return result


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


def _earn_purchases(counted: list, now: dt.datetime, result: EarnResult) -> list[tuple[int, int]]:
    """Post the purchase points of the ``counted`` orders that have not earned yet; returns the
    ``(program, member)`` pairs that bought.

    The buyers' accounts are locked first, and the orders that already earned are read after
    that: a concurrent batch of the same orders waits for the lock and then sees them.
    """
    accounts = lock_accounts((p.pk, member_id) for p, _pk, member_id, *_ in counted)
    earned = _earned({(p.pk, f"order:{pk}") for p, pk, *_ in counted})
    to_earn = [w for w in counted if (w[0].pk, f"order:{w[1]}") not in earned]
    if not to_earn:
        return []
    programs = {w[0].pk for w in to_earn}
    multiplier = _multipliers(programs, {w[2] for w in to_earn}, [w[5] for w in to_earn])
    eligible = _eligible_amounts(programs, to_earn)
    postings, pairs = [], []
    reason = _("purchase")
    days, expiry = {}, {}  # per program and business day: both depend on the day only
    for program, pk, member_id, paid, _counted, occurred in sorted(to_earn, key=lambda w: (w[5], w[1])):
        day = business_date(program, occurred)
        if (program.pk, day) not in days:
            days[(program.pk, day)] = member_day_multiplier(program, day)
            expiry[(program.pk, day)] = lot_expiry(program, occurred)
        factor = multiplier(program.pk, member_id, occurred) * days[(program.pk, day)]
        points = _points_for(program, eligible.get(pk, paid), factor)
        pairs.append((program.pk, member_id))
        if points <= 0:
            continue
        postings.append(Posting(
            account_id=accounts[(program.pk, member_id)].pk, kind=EntryKind.EARN, amount=points, key=f"order:{pk}",
            reason=reason, source_type=SourceType.ORDER, source_id=str(pk), occurred_at=occurred,
            business_date=day, expires_at=expiry[(program.pk, day)]))
    result.add(post(postings, {a.pk: a for a in accounts.values()}, now=now, existing=set(earned)))
    return pairs


def _multipliers(programs: set[int], members: set[int], moments: list[dt.datetime]):
    """``multiplier(program_id, member_id, at)``: the best points multiplier benefit the member holds
    (their tier's, or an active paid membership's), 1 when there is none."""
    tier_factor, plan_factor = defaultdict(lambda: ONE), defaultdict(lambda: ONE)
    for tier_id, plan_id, factor in Benefit.objects.filter(
            program_id__in=programs, kind=BenefitKind.POINTS_MULTIPLIER, is_active=True,
            multiplier__isnull=False).values_list("tier_id", "paid_plan_id", "multiplier"):
        table, key = (tier_factor, tier_id) if tier_id else (plan_factor, plan_id)
        table[key] = max(table[key], Decimal(factor)) if key in table else Decimal(factor)
    if not tier_factor and not plan_factor:
        return lambda program_id, member_id, at: ONE
    held: dict[tuple[int, int], int] = {}
    entry: dict[int, int | None] = {}
    if tier_factor:
        held = {(p, m): t for p, m, t in MemberTier.objects.filter(
            among("member_id", members), program_id__in=programs).values_list("program_id", "member_id", "tier_id")}
        entry = {p: getattr(entry_tier(tiers), "pk", None) for p, tiers in program_tiers(programs).items()}
    periods = defaultdict(list)
    if plan_factor:
        for p, m, start, end, plan in PaidMembership.objects.filter(
                among("member_id", members), program_id__in=programs, plan_id__in=list(plan_factor),
                starts_at__lte=max(moments), ends_at__gt=min(moments)).values_list(
                "program_id", "member_id", "starts_at", "ends_at", "plan_id"):
            periods[(p, m)].append((start, end, plan))

    def multiplier(program_id: int, member_id: int, at: dt.datetime) -> Decimal:
        options = []
        tier = held.get((program_id, member_id), entry.get(program_id))
        if tier in tier_factor:
            options.append(tier_factor[tier])
        options.extend(plan_factor[plan] for start, end, plan in periods[(program_id, member_id)] if start <= at < end)
        return max(options) if options else ONE

    return multiplier


def _eligible_amounts(programs: set[int], to_earn: list) -> dict[int, Decimal]:
    """``{order_id: paid amount less the share of excluded lines}`` for orders with exclusions."""
    products, categories = defaultdict(set), defaultdict(set)
    for program_id, product_id, category in PurchaseExclusion.objects.filter(program_id__in=programs).values_list(
            "program_id", "product_id", "category"):
        if product_id:
            products[program_id].add(product_id)
        else:
            categories[program_id].add(category)
    orders = defaultdict(list)
    for program, pk, *_rest in to_earn:
        if program.pk in products or program.pk in categories:
            orders[program.pk].append(pk)
    paid = {pk: amount for _p, pk, _m, amount, *_ in to_earn}
    eligible = {}
    for program_id, ids in orders.items():
        # Only the orders with an excluded line come back, with their lines' total and the excluded part.
        excluded = Q(product_id__in=products[program_id]) | Q(product__category__in=categories[program_id])
        for chunk in chunked(sorted(ids), 1000):
            for order_id, total, out in OrderLine.objects.filter(among("order_id", chunk)).order_by().values(
                    "order_id").annotate(total=Sum("amount"), out=Sum("amount", filter=excluded)).filter(
                    out__gt=0, total__gt=0).values_list("order_id", "total", "out"):
                eligible[order_id] = (paid[order_id] * (total - out) / total).quantize(Decimal("0.01"),
                                                                                       rounding=ROUND_HALF_UP)
    return eligible


# Refunds and cancellations ----------------------------------------------------------------------------

def reverse_for_refunds(*, refund_ids: Iterable[int] = (), order_ids: Iterable[int] = (),
                        now: dt.datetime | None = None) -> EarnResult:
    """Take back the points of refunded parts: the refunds ``refund_ids`` and every refund of ``order_ids``.

    A refund takes back its share of the order's points: with refunds r₁ … rₖ of an order paid P
    that earned E, refund k takes round(E·(r₁+…+rₖ)/P) − round(E·(r₁+…+rₖ₋₁)/P), so a full refund
    takes back exactly E. Points come from the order's own lot first, then the lots closest to
    expiry; what the member already spent becomes debt (欠分), settled by their next earnings.
    Key ``refund:<id>``: a refund is reversed once.
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
    _reverse_orders(index, sorted(order_ids), now or timezone.now(), result)
    return result


def _reverse_orders(index: ProgramIndex, order_ids: list[int], now: dt.datetime, result: EarnResult) -> None:
    """Bring the reversals of ``order_ids`` up to date with their refunds and their status."""
    programs = list(index.programs)
    purchases = {}
    for chunk in chunked(order_ids, 1000):
        for pk, program_id, amount, account_id, key in PointsEntry.objects.filter(
                among("idempotency_key", [f"order:{o}" for o in chunk]), program_id__in=programs).values_list(
                "pk", "program_id", "amount", "account_id", "idempotency_key"):
            purchases[int(key.split(":")[1])] = (pk, program_id, amount, account_id)
    if not purchases:
        return
    orders = {pk: (paid, counted) for pk, paid, counted in _in_chunks(
        lambda chunk: Order.objects.filter(among("pk", chunk)).values_list("pk", "paid_amount", "is_counted"),
        purchases)}
    refunds = defaultdict(list)
    for pk, order_id, amount, at in _in_chunks(lambda chunk: Refund.objects.filter(
            among("order_id", chunk)).values_list("pk", "order_id", "amount", "refunded_at").order_by("order_id", "pk"),
            purchases):
        refunds[order_id].append((pk, amount, at))
    taken = defaultdict(dict)  # program -> key -> points already taken back (balance + debt)
    for program_id in {p[1] for p in purchases.values()}:
        keys = [k for o, p in purchases.items() if p[1] == program_id
                for k in [f"order:{o}:cancel", *(f"refund:{r[0]}" for r in refunds[o])]]
        for chunk in chunked(keys, 1000):
            entries = PointsEntry.objects.filter(among("idempotency_key", chunk), program_id=program_id)
            for key, amount, debt in entries.values_list("idempotency_key", "amount", "debt_delta"):
                taken[program_id][key] = debt - amount
    postings = []
    for order_id, (lot, program_id, earned, account_id) in sorted(purchases.items()):
        program = index.programs[program_id]
        paid, counted = orders[order_id]
        done = taken[program_id]
        left = earned - sum(done.get(k, 0) for k in [f"order:{order_id}:cancel",
                                                     *(f"refund:{r[0]}" for r in refunds[order_id])])
        share_before, cumulative = 0, Decimal(0)
        for refund_id, amount, at in refunds[order_id]:
            cumulative += amount
            share = _share(earned, cumulative, paid)
            points, share_before = min(share - share_before, left), share
            key = f"refund:{refund_id}"
            if key in done or points <= 0:
                continue
            left -= points
            postings.append(_reversal(program, account_id, lot, points, key, _("refund"), SourceType.REFUND,
                                      refund_id, at))
        if not counted and left > 0:
            postings.append(_reversal(program, account_id, lot, left, f"order:{order_id}:cancel",
                                      _("order closed"), SourceType.ORDER, order_id, now))
    if postings:
        accounts = lock_account_ids(p.account_id for p in postings)
        result.add(post(postings, accounts, now=now))


def _share(earned: int, refunded: Decimal, paid: Decimal) -> int:
    if paid <= 0 or refunded >= paid:
        return earned
    return int((Decimal(earned) * refunded / paid).quantize(ONE, rounding=ROUND_HALF_UP))


def _reversal(program: LoyaltyProgram, account_id: int, lot: int, points: int, key: str, reason: str,
              source_type: str, source_id: int, at: dt.datetime) -> Posting:
    return Posting(account_id=account_id, kind=EntryKind.REVERSE, amount=-points, key=key, reason=reason,
                   source_type=source_type, source_id=str(source_id), occurred_at=at,
                   business_date=business_date(program, at), into_debt=True, prefer_lots=(lot,))


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
    rules = defaultdict(list)
    for rule in EventEarnRule.objects.filter(program_id__in=list(index.programs), is_active=True).order_by("pk"):
        rules[(rule.program_id, rule.event_kind)].append(rule)
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
    result.add(post(postings, by_id, now=now, existing=known))
    result.upgrades += upgrade_tiers(pairs=pairs, programs=index.programs, now=now)


def _event_points_used(candidates: list, accounts: dict) -> dict:
    """Event points already earned per account and day/month, and earnings per account, rule and day
    on the candidates' days (read after the accounts were locked)."""
    used = {"day": defaultdict(int), "month": defaultdict(int), "count": defaultdict(int)}
    account_ids = sorted({a.pk for a in accounts.values()})
    days = {c[5] for c in candidates}
    first = min(days).replace(day=1)
    last = max(days)
    rows = PointsEntry.objects.filter(among("account_id", account_ids), source_type=SourceType.EVENT,
                                      kind=EntryKind.EARN, business_date__gte=first, business_date__lte=last)
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
