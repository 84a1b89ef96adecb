"""Tiers (会员等级) and paid membership (付费会员).

A member's *figures* in a program are counted over the program's tier window ending at ``now``:
the paid amount net of refunds and the number of not fully refunded counted orders placed in the
program's stores (a group-wide program also counts orders without a store), and the points
earned net of reversals. The *qualifying tier* is the highest-ranked tier whose thresholds the
figures meet (``any`` or ``all`` of them); a tier without thresholds is the entry tier, which
everyone holds without a row.

- **Upgrade** is immediate: ingestion calls :func:`upgrade_tiers` for the members that earned.
- **Retention** (保级): a tier is kept until ``retained_until`` (reached or re-qualified + the
  tier's retention days).
- **Downgrade** happens in :func:`evaluate_tiers` (the nightly task): once the retention period
  is over, a member who still qualifies is kept for another period; otherwise they move straight
  to the tier they now qualify for.

Every change is a :class:`TierChange` row with its reason and the figures it was decided on.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, F, Max, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.commerce.models import Order
from siyu.core.db import among, insert_rows, note_bulk_write, update_rows
from siyu.core.errors import Conflict, ValidationError
from siyu.loyalty.ledger import lock_accounts
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
from siyu.members.models import Member


@dataclass
class Figures:
    paid: Decimal = Decimal("0.00")
    orders: int = 0
    points: int = 0

    def as_json(self) -> dict:
        return {"paid": str(self.paid), "orders": self.orders, "points": self.points}


def qualifies(tier: Tier, figures: Figures) -> bool:
    met = []
    if tier.min_paid_amount is not None:
        met.append(figures.paid >= tier.min_paid_amount)
    if tier.min_order_count is not None:
        met.append(figures.orders >= tier.min_order_count)
    if tier.min_points_earned is not None:
        met.append(figures.points >= tier.min_points_earned)
    if not met:
        return True  # the entry tier
    return all(met) if tier.requires == TierRequirement.ALL else any(met)


def qualifying_tier(tiers: list[Tier], figures: Figures) -> Tier | None:
    """The highest-ranked of ``tiers`` (sorted by rank) that ``figures`` reach, or None."""
    return next((t for t in reversed(tiers) if qualifies(t, figures)), None)


def entry_tier(tiers: list[Tier]) -> Tier | None:
    return tiers[0] if tiers and not tiers[0].thresholds else None


def program_tiers(program_ids: Iterable[int]) -> dict[int, list[Tier]]:
    tiers: dict[int, list[Tier]] = defaultdict(list)
    for tier in Tier.objects.filter(program_id__in=set(program_ids)).order_by("program_id", "rank"):
        tiers[tier.program_id].append(tier)
    return tiers


def window_start(program: LoyaltyProgram, now: dt.datetime) -> dt.datetime | None:
    return now - dt.timedelta(days=program.tier_window_days) if program.tier_window_days else None


def figures_of(program: LoyaltyProgram, tiers: list[Tier], now: dt.datetime, *, members: dict) -> dict[int, Figures]:
    """``{member_id: Figures}`` over the tier window, for the members that ``members`` selects as
    lookups on the member id (``{"in": ids}``, ``{"gte": low, "lt": high}``)."""
    from siyu.loyalty.models import PointsEntry

    since = window_start(program, now)
    figures: dict[int, Figures] = defaultdict(Figures)
    if any(t.min_paid_amount is not None or t.min_order_count is not None for t in tiers):
        orders = Order.objects.filter(_on("member_id", members), is_counted=True, ordered_at__lte=now)
        if since:
            orders = orders.filter(ordered_at__gte=since)
        if program.scope == ProgramScope.GROUP:
            orders = orders.filter(Q(store__brand__group_id=program.group_id) | Q(store__isnull=True))
        else:
            orders = orders.filter(store__brand_id=program.brand_id)
        for member_id, paid, count in orders.order_by().values("member_id").annotate(
                paid=Sum(F("paid_amount") - F("refunded_amount")),
                count=Count("pk", filter=Q(refunded_amount__lt=F("paid_amount")))).values_list(
                "member_id", "paid", "count"):
            figures[member_id].paid = Decimal(paid or 0).quantize(Decimal("0.01"))
            figures[member_id].orders = count
    if any(t.min_points_earned is not None for t in tiers):
        entries = PointsEntry.objects.filter(program=program, kind__in=[EntryKind.EARN, EntryKind.REVERSE],
                                             occurred_at__lte=now)
        if since:
            entries = entries.filter(occurred_at__gte=since)
        entries = entries.filter(_on("account__member_id", members)).order_by().values("account__member_id")
        for member_id, points in entries.annotate(points=Sum(F("amount") - F("debt_delta"))).values_list(
                "account__member_id", "points"):
            figures[member_id].points = int(points or 0)
    return figures


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


def _decide(program, tiers, figures: dict[int, Figures], rows: dict[int, MemberTier], now, *, downgrade: bool,
            result: TierResult) -> None:
    """Upgrade (and with ``downgrade``, renew or downgrade) the members in ``figures`` ∪ ``rows``."""
    entry = entry_tier(tiers)
    created, changed, dropped, history = [], [], [], []
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
                changed.append(row)
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
    stamp = timezone.now()
    insert_rows(MemberTier, ("program_id", "member_id", "tier_id", "achieved_at", "retained_until", "updated_at"),
                [(program.pk, *row, stamp) for row in created])
    update_rows(MemberTier, ["tier_id", "achieved_at", "retained_until"],
                [(row.pk, row.tier_id, row.achieved_at, row.retained_until) for row in changed],
                also={"updated_at": stamp})
    if dropped:
        MemberTier.objects.filter(pk__in=dropped).delete()
    insert_rows(TierChange, ("program_id", "member_id", "from_tier_id", "to_tier_id", "reason", "figures",
                             "changed_at"), [(program.pk, *row[:4], json.dumps(row[4]), row[5]) for row in history])
    note_bulk_write(TierChange, len(history))


def _locked_rows(program: LoyaltyProgram, tiers: list[Tier], members: dict) -> dict[int, MemberTier]:
    """The members' tier rows, locked in id order (without joining the tiers: that would lock them too)."""
    by_pk = {t.pk: t for t in tiers}
    rows = {}
    for row in MemberTier.objects.select_for_update().filter(_on("member_id", members), program=program).order_by("pk"):
        row.tier = by_pk[row.tier_id]
        rows[row.member_id] = row
    return rows


def upgrade_tiers(*, pairs: Iterable[tuple[int, int]], programs: dict[int, LoyaltyProgram],
                  now: dt.datetime | None = None) -> int:
    """Upgrade the ``(program_id, member_id)`` members who now qualify for a higher tier (ingestion).

    Never downgrades: that waits for the retention period and :func:`evaluate_tiers`. Returns the
    number of upgrades.
    """
    now = now or timezone.now()
    members = defaultdict(set)
    for program_id, member_id in pairs:
        members[program_id].add(member_id)
    if not members:
        return 0
    tiers = program_tiers(members)
    result = TierResult()
    for program_id, ids in sorted(members.items()):
        if not any(t.thresholds for t in tiers.get(program_id, [])):
            continue
        program = programs[program_id]
        rows = _locked_rows(program, tiers[program_id], {"in": sorted(ids)})
        top = tiers[program_id][-1]
        # Members on the top tier cannot go higher: only the others' figures are counted.
        climbing = sorted(m for m in ids if m not in rows or rows[m].tier_id != top.pk)
        if not climbing:
            continue
        figures = figures_of(program, tiers[program_id], now, members={"in": climbing})
        _decide(program, tiers[program_id], {m: figures.get(m, Figures()) for m in climbing},
                {m: rows[m] for m in climbing if m in rows}, now, downgrade=False, result=result)
    return result.upgraded


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
