"""Loyalty reads: a member's balance, ledger page, tier, benefits and paid membership."""

from __future__ import annotations

import datetime as dt

from django.db.models import F, Q
from django.utils import timezone

from siyu.loyalty.models import (
    Benefit,
    LoyaltyProgram,
    MemberTier,
    PaidMembership,
    PointsAccount,
    PointsEntry,
    Tier,
)
from siyu.loyalty.programs import active_programs
from siyu.loyalty.tiers import entry_tier


def program_for_brand(brand) -> LoyaltyProgram | None:
    """The active program a brand belongs to (its own, else its group's group-wide one)."""
    return active_programs().for_brand(brand.pk, brand.group_id)


def points_account(member_id: int, program: LoyaltyProgram) -> PointsAccount:
    """The member's account; an unsaved zero account when they never earned."""
    return (PointsAccount.objects.filter(program=program, member_id=member_id).first()
            or PointsAccount(program=program, member_id=member_id))


def ledger_page(member_id: int, program: LoyaltyProgram, *, before_id: int | None = None,
                limit: int = 50) -> list[PointsEntry]:
    """The member's ledger, newest first, keyset-paginated by entry id (``before_id``)."""
    entries = PointsEntry.objects.filter(program=program, account__member_id=member_id)
    if before_id is not None:
        entries = entries.filter(pk__lt=before_id)
    return list(entries.order_by("-pk")[:limit])


def expiring_points(member_id: int, program: LoyaltyProgram, *, limit: int = 10) -> list[PointsEntry]:
    """The member's lots with points left (credit entries): soonest to expire first, never-expiring last."""
    return list(PointsEntry.objects.filter(program=program, account__member_id=member_id, remaining__gt=0)
                .order_by(F("expires_at").asc(nulls_last=True), "pk")[:limit])


def current_tier(member_id: int, program: LoyaltyProgram) -> Tier | None:
    """The member's tier: their row's, else the program's entry tier (or None)."""
    row = MemberTier.objects.filter(program=program, member_id=member_id).select_related("tier").first()
    if row is not None:
        return row.tier
    return entry_tier(list(Tier.objects.filter(program=program).order_by("rank")))


def active_paid_membership(member_id: int, program: LoyaltyProgram,
                           now: dt.datetime | None = None) -> PaidMembership | None:
    now = now or timezone.now()
    return (PaidMembership.objects.filter(program=program, member_id=member_id, starts_at__lte=now, ends_at__gt=now)
            .select_related("plan").order_by("-ends_at").first())


def member_benefits(member_id: int, program: LoyaltyProgram, now: dt.datetime | None = None) -> list[Benefit]:
    """The active benefits of the member's tier and of their active paid membership."""
    tier = current_tier(member_id, program)
    paid = active_paid_membership(member_id, program, now)
    held = Q(pk__in=[])
    if tier is not None:
        held |= Q(tier=tier)
    if paid is not None:
        held |= Q(paid_plan_id=paid.plan_id)
    return list(Benefit.objects.filter(held, program=program, is_active=True).order_by("sort", "pk"))
