"""Coupons and points mall API: a member's coupons, issuing (to members, a snapshot, a segment or
a rule), redeeming against an order; rewards on offer and redeeming them for points."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from siyu.core.api_auth import AUTH_ERRORS, MAX_BATCH_ROWS, ErrorOut, Moment, api_source, require
from siyu.core.errors import BatchTooLarge, NotFound, ValidationError
from siyu.loyalty.api import KEY, program_named
from siyu.loyalty.coupon_models import CouponState, CouponTemplate, Reward
from siyu.loyalty.coupons import (
    issue_by_rule,
    issue_coupon,
    issue_to_members,
    issue_to_snapshot,
    member_coupons,
    redeem_coupon,
)
from siyu.loyalty.mall import redeem_reward
from siyu.members.selectors import member_by_ref

router = Router(tags=["loyalty"])
ERRORS = {400: ErrorOut, 404: ErrorOut, 409: ErrorOut, 413: ErrorOut, 422: ErrorOut, **AUTH_ERRORS}


def _money(value) -> str | None:
    return None if value is None else f"{value:.2f}"


class CouponOut(Schema):
    code: str
    template: str
    name: str
    kind: str
    state: str
    issued_at: Moment
    valid_from: Moment
    valid_until: Moment
    order_id: int | None
    discount: str | None
    redeemed_at: Moment | None

    @staticmethod
    def resolve_template(coupon) -> str:
        return coupon.template.code

    @staticmethod
    def resolve_name(coupon) -> str:
        return coupon.template.name

    @staticmethod
    def resolve_kind(coupon) -> str:
        return coupon.template.kind

    @staticmethod
    def resolve_discount(coupon) -> str | None:
        return _money(coupon.discount)


class CouponPageOut(Schema):
    coupons: list[CouponOut]
    next: int | None = Field(description="Pass as `before` for the next (older) page; null on the last page")


class CouponQuery(Schema):
    state: CouponState | None = None
    before: int | None = None
    limit: int = Field(50, ge=1, le=500)


class IssueIn(Schema):
    template: str = Field(description="Coupon template code")
    member: str | None = Field(None, description="One member: id, code or `kind:value` identity")
    member_ids: list[int] | None = Field(None, description=f"Member ids, at most {MAX_BATCH_ROWS:,}")
    snapshot: int | None = Field(None, description="A segment snapshot id: its frozen members")
    segment: str | None = Field(None, description="A saved segment code: its members now")
    rule: dict[str, Any] | None = Field(None, description="A segment rule tree: its members now")
    idempotency_key: str = KEY


class IssueOut(Schema):
    issue_id: int
    template: str
    requested: int
    issued: int
    skipped: dict[str, int] = Field(description="Members skipped, by reason: limit_reached, out_of_stock, …")
    skipped_members: list[tuple[int, str]]
    replayed: bool


class RedeemCouponIn(Schema):
    code: str
    channel: str = Field(description="The order's channel code")
    external_id: str = Field(description="The order's id in that channel")
    member: str | None = Field(None, description="Optional: refuse unless this member owns the coupon")


class CouponRedemptionOut(Schema):
    code: str
    order_id: int
    kind: str
    discount: str
    gift_product_id: int | None
    free_shipping: bool
    replayed: bool


class RewardOut(Schema):
    code: str
    name: str
    description: str
    kind: str
    points_price: int
    cash_amount: str | None
    stock: int | None
    per_member_limit: int | None
    valid_from: Moment | None
    valid_until: Moment | None

    @staticmethod
    def resolve_cash_amount(reward) -> str | None:
        return _money(reward.cash_amount)


class RedeemRewardIn(Schema):
    member: str
    program: str | None = None
    quantity: int = Field(1, ge=1, le=100)
    idempotency_key: str = Field(min_length=1, max_length=120)


class RewardRedemptionOut(Schema):
    id: int
    reward: str
    member_id: int
    quantity: int
    points: int
    coupon: str | None
    redeemed_at: Moment

    @staticmethod
    def resolve_reward(redemption) -> str:
        return redemption.reward.code

    @staticmethod
    def resolve_coupon(redemption) -> str | None:
        return redemption.coupon.code if redemption.coupon_id else None


@router.get("/loyalty/members/{ref}/coupons", auth=require("loyalty:read"), response={200: CouponPageOut, **ERRORS},
            summary="A member's coupons, newest first")
def get_coupons(request: HttpRequest, ref: str, query: Query[CouponQuery]):
    member = member_by_ref(ref).member
    coupons = member_coupons(member.pk, state=query.state, before_id=query.before, limit=query.limit + 1)
    more = len(coupons) > query.limit
    coupons = coupons[:query.limit]
    return {"coupons": coupons, "next": coupons[-1].pk if more else None}


@router.post("/loyalty/coupons/issue", auth=require("loyalty:write"), response={200: IssueOut, **ERRORS},
             summary="Issue coupons to members, a snapshot, a segment or a rule")
def post_issue(request: HttpRequest, payload: IssueIn):
    """Give exactly one target: `member`, `member_ids`, `snapshot`, `segment` or `rule`. Each
    member gets one coupon; members over the per-member limit or beyond the stock are skipped and
    counted by reason. The same `idempotency_key` again issues nothing more and returns the first run.
    More than 5,000 `member_ids` answer 413 `batch_too_large`, as every batch endpoint does."""
    template = CouponTemplate.objects.filter(code=payload.template).first()
    if template is None:
        raise NotFound(_("no coupon template %(code)s") % {"code": payload.template}, code="unknown_template",
                       field="template")
    targets = [name for name in ("member", "member_ids", "snapshot", "segment", "rule")
               if getattr(payload, name) is not None]
    if len(targets) != 1:
        raise ValidationError(_("give exactly one of member, member_ids, snapshot, segment or rule"),
                              code="invalid_target", field="member")
    common = {"template": template, "idempotency_key": payload.idempotency_key, "actor": api_source(request)}
    if payload.member is not None:
        result = issue_coupon(member=member_by_ref(payload.member).member, **common)
    elif payload.member_ids is not None:
        if len(payload.member_ids) > MAX_BATCH_ROWS:
            raise BatchTooLarge(
                _("issue to at most %(max)s member ids per request, this one lists %(n)s; split the list or "
                  "issue to a snapshot or a segment") % {"max": f"{MAX_BATCH_ROWS:,}",
                                                          "n": f"{len(payload.member_ids):,}"},
                field="member_ids")
        result = issue_to_members(member_ids=payload.member_ids, **common)
    elif payload.snapshot is not None:
        from siyu.segments.models import Snapshot

        snapshot = Snapshot.objects.filter(pk=payload.snapshot).first()
        if snapshot is None:
            raise NotFound(_("no snapshot %(id)s") % {"id": payload.snapshot}, code="unknown_snapshot",
                           field="snapshot")
        result = issue_to_snapshot(snapshot=snapshot, **common)
    elif payload.segment is not None:
        from siyu.segments.models import Segment

        segment = Segment.objects.filter(code=payload.segment).first()
        if segment is None:
            raise NotFound(_("no segment %(code)s") % {"code": payload.segment}, code="unknown_segment",
                           field="segment")
        result = issue_by_rule(segment=segment, **common)
    else:
        result = issue_by_rule(rule=payload.rule, **common)
    return result.as_dict()


@router.post("/loyalty/coupons/redeem", auth=require("loyalty:write"), response={200: CouponRedemptionOut, **ERRORS},
             summary="Redeem a coupon against an order")
def post_redeem_coupon(request: HttpRequest, payload: RedeemCouponIn):
    """Idempotent per order: redeeming the same coupon for the same order again answers the same
    discount with `replayed`; another order gets `409 coupon_redeemed`. Other refusals (409):
    `not_owner`, `order_closed`, `coupon_expired`, `coupon_not_started`, `channel_not_applicable`,
    `store_not_applicable`, `product_not_applicable`, `threshold_not_met`. The coupon goes back
    to the member when the order is closed."""
    from siyu.commerce.models import Order

    order = Order.objects.filter(channel__code=payload.channel, external_id=payload.external_id).first()
    if order is None:
        raise NotFound(_("order not found"), code="order_not_found", field="external_id")
    member = member_by_ref(payload.member).member if payload.member else None
    return redeem_coupon(code=payload.code, order=order, member=member).as_dict()


@router.get("/loyalty/rewards", auth=require("loyalty:read"), response={200: list[RewardOut], **ERRORS},
            summary="Points mall rewards on offer")
def list_rewards(request: HttpRequest, program: str | None = None):
    return Reward.objects.filter(program=program_named(program), is_active=True).order_by("sort", "pk")


@router.post("/loyalty/rewards/{code}/redeem", auth=require("loyalty:write"),
             response={200: RewardRedemptionOut, **ERRORS}, summary="Redeem a reward for points")
def post_redeem_reward(request: HttpRequest, code: str, payload: RedeemRewardIn):
    """Points and stock move together or not at all. Refusals (409 unless noted):
    `insufficient_points`, `out_of_stock`, `limit_reached`, `not_available`, `member_inactive`.
    A double-tap with the same `idempotency_key` returns the first redemption."""
    program = program_named(payload.program)
    reward = Reward.objects.filter(program=program, code=code).first()
    if reward is None:
        raise NotFound(_("reward not found"), code="reward_not_found", field="code")
    member = member_by_ref(payload.member).member
    return redeem_reward(member=member, reward=reward, quantity=payload.quantity,
                         idempotency_key=payload.idempotency_key, actor=api_source(request))
