"""Loyalty API: programs, a member's points, ledger, tier and benefits; spending and adjusting
points with an idempotency key."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from siyu.core.api_auth import AUTH_ERRORS, ErrorOut, Moment, api_source, require
from siyu.core.errors import NotFound, ValidationError
from siyu.loyalty.ledger import adjust_points, spend_points
from siyu.loyalty.models import LoyaltyProgram, PointsEntry
from siyu.loyalty.selectors import (
    active_paid_membership,
    current_tier,
    ledger_page,
    member_benefits,
    points_account,
)
from siyu.members.selectors import member_by_ref

router = Router(tags=["loyalty"])
ERRORS = {400: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, **AUTH_ERRORS}
KEY = Field(min_length=1, max_length=100, description="Unique per program: re-sending it returns the first result")


class ProgramOut(Schema):
    code: str
    name: str
    scope: str
    brand: str | None
    points_per_yuan: str
    is_active: bool

    @staticmethod
    def resolve_brand(program: LoyaltyProgram) -> str | None:
        return program.brand.code if program.brand_id else None

    @staticmethod
    def resolve_points_per_yuan(program: LoyaltyProgram) -> str:
        return f"{program.points_per_yuan:f}"


class TierOut(Schema):
    code: str
    name: str
    rank: int


class BenefitOut(Schema):
    name: str
    category: str
    kind: str
    description: str
    multiplier: str | None
    parameters: dict[str, Any] = Field(alias="value")

    @staticmethod
    def resolve_multiplier(benefit) -> str | None:
        return None if benefit.multiplier is None else f"{benefit.multiplier:f}"


class PaidMembershipOut(Schema):
    plan: str = Field(alias="plan.code")
    starts_at: Moment
    ends_at: Moment


class PointsOut(Schema):
    member_id: int
    member_code: str
    program: str
    balance: int
    debt: int = Field(description="Reversed points the member had already spent, settled by future earnings")
    tier: TierOut | None
    paid_membership: PaidMembershipOut | None
    benefits: list[BenefitOut]


class EntryOut(Schema):
    id: int
    kind: str
    amount: int
    debt_delta: int
    reason: str
    source_type: str
    source_id: str
    idempotency_key: str
    occurred_at: Moment
    business_date: str
    actor: str

    @staticmethod
    def resolve_business_date(entry: PointsEntry) -> str:
        return entry.business_date.isoformat()


class LedgerOut(Schema):
    entries: list[EntryOut]
    next: int | None = Field(description="Pass as `before` for the next (older) page; null on the last page")


class SpendIn(Schema):
    member: str = Field(description="Member id, code or `kind:value` identity (`phone:138…`)")
    program: str | None = Field(None, description="Program code; optional when only one program is active")
    amount: int = Field(gt=0)
    reason: str = Field(min_length=1, max_length=200)
    source: str = Field("", max_length=64, description="What the points paid for, e.g. the partner's order id")
    idempotency_key: str = KEY


class AdjustIn(Schema):
    member: str
    program: str | None = None
    amount: int = Field(description="Positive credits, negative debits; not 0")
    reason: str = Field(min_length=1, max_length=200)
    idempotency_key: str = KEY


def program_named(code: str | None) -> LoyaltyProgram:
    """The program ``code``, or the only active one when no code is given."""
    if code:
        program = LoyaltyProgram.objects.filter(code=code).first()
        if program is None:
            raise NotFound(_("no loyalty program %(code)s") % {"code": code}, code="unknown_program", field="program")
        return program
    active = list(LoyaltyProgram.objects.filter(is_active=True)[:2])
    if len(active) != 1:
        raise ValidationError(_("name the loyalty program (program=…): %(n)s are active") % {"n": len(active)},
                              code="program_required", field="program")
    return active[0]


@router.get("/loyalty/programs", auth=require("loyalty:read"), response={200: list[ProgramOut], **AUTH_ERRORS},
            summary="List loyalty programs")
def list_programs(request: HttpRequest):
    return LoyaltyProgram.objects.select_related("brand").order_by("code")


@router.get("/loyalty/members/{ref}/points", auth=require("loyalty:read"), response={200: PointsOut, **ERRORS},
            summary="A member's points balance, tier and benefits")
def get_points(request: HttpRequest, ref: str, program: str | None = None):
    """`ref` as in `GET /members/{ref}`. A member who never earned has balance 0 and the entry tier."""
    member = member_by_ref(ref).member
    chosen = program_named(program)
    account = points_account(member.pk, chosen)
    return {"member_id": member.pk, "member_code": member.code, "program": chosen.code,
            "balance": account.balance, "debt": account.debt, "tier": current_tier(member.pk, chosen),
            "paid_membership": active_paid_membership(member.pk, chosen),
            "benefits": member_benefits(member.pk, chosen)}


class LedgerQuery(Schema):
    program: str | None = None
    before: int | None = Field(None, description="Cursor from the previous page")
    limit: int = Field(50, ge=1, le=500)


@router.get("/loyalty/members/{ref}/ledger", auth=require("loyalty:read"), response={200: LedgerOut, **ERRORS},
            summary="A member's points ledger, newest first")
def get_ledger(request: HttpRequest, ref: str, query: Query[LedgerQuery]):
    member = member_by_ref(ref).member
    entries = ledger_page(member.pk, program_named(query.program), before_id=query.before, limit=query.limit + 1)
    more = len(entries) > query.limit
    entries = entries[:query.limit]
    return {"entries": entries, "next": entries[-1].pk if more else None}


@router.post("/loyalty/points/spend", auth=require("loyalty:write"), response={200: EntryOut, **ERRORS},
             summary="Spend a member's points")
def post_spend(request: HttpRequest, payload: SpendIn):
    """Spends from the lots closest to expiry first. `409 insufficient_points` when the balance is
    smaller (nothing is written); the same `idempotency_key` again returns the first entry."""
    member = member_by_ref(payload.member).member
    return spend_points(member=member, program=program_named(payload.program), amount=payload.amount,
                        reason=payload.reason, source=("redemption", payload.source or payload.idempotency_key),
                        idempotency_key=payload.idempotency_key, actor=api_source(request))


@router.post("/loyalty/points/adjust", auth=require("loyalty:write"), response={200: EntryOut, **ERRORS},
             summary="Adjust a member's points (audited)")
def post_adjust(request: HttpRequest, payload: AdjustIn):
    """A manual correction with a reason, written to the audit trail. A credit settles any debt first."""
    member = member_by_ref(payload.member).member
    return adjust_points(member=member, program=program_named(payload.program), amount=payload.amount,
                         reason=payload.reason, actor=api_source(request), idempotency_key=payload.idempotency_key)
