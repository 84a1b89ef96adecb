"""Coupons (优惠券): issue to members, a segment snapshot or a rule; redeem against an order;
release when the order closes; expire.

Locks: issuing locks the template row (so stock and per-member limits are checked and counted
by one issuer at a time); redeeming locks the coupon row; releasing locks the order's coupons in
id order. The points mall issues after locking its reward row and the points account, so the
order is always reward → points account → coupon template → coupon, and nothing here waits for
a lock in the opposite order.
"""

from __future__ import annotations

import datetime as dt
import secrets
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.commerce.models import Order, OrderLine, OrderStatus
from siyu.core.db import chunked
from siyu.core.errors import Conflict, NotFound, ValidationError
from siyu.core.money import CENT, ZERO
from siyu.loyalty.coupon_models import (
    Coupon,
    CouponIssue,
    CouponKind,
    CouponState,
    CouponTemplate,
    IssueTarget,
    Validity,
)
from siyu.members.models import Member, MemberStatus

CHUNK = 1000
#: How many skipped members an issue run lists (all are counted).
SKIPPED_DETAIL = 1000
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I


class SkipReason:
    LIMIT_REACHED = "limit_reached"
    OUT_OF_STOCK = "out_of_stock"
    MEMBER_INACTIVE = "member_inactive"
    UNKNOWN_MEMBER = "unknown_member"


def new_coupon_code() -> str:
    """16 characters of a 32-letter alphabet (80 random bits); the unique constraint has the last word."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(16))


# Issuing ---------------------------------------------------------------------------------------------

@dataclass
class IssueResult:
    """What an issue run did; a replay (same key) returns the first run's result with ``replayed``."""

    issue_id: int
    template: str
    requested: int
    issued: int
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_members: list[tuple[int, str]] = field(default_factory=list)
    replayed: bool = False

    @classmethod
    def of(cls, issue: CouponIssue, template: CouponTemplate, *, replayed: bool) -> IssueResult:
        return cls(issue.pk, template.code, issue.requested, issue.issued, dict(issue.skipped),
                   [(m, r) for m, r in issue.skipped_members], replayed)

    def as_dict(self) -> dict:
        return {"issue_id": self.issue_id, "template": self.template, "requested": self.requested,
                "issued": self.issued, "skipped": self.skipped,
                "skipped_members": [list(s) for s in self.skipped_members], "replayed": self.replayed}


def issue_to_members(*, template: CouponTemplate, member_ids: Sequence[int], idempotency_key: str,
                     now: dt.datetime | None = None, actor: str = "") -> IssueResult:
    """Issue one coupon of ``template`` to each of ``member_ids`` (a batch; one member is a batch of one).

    Idempotency key: ``idempotency_key`` (unique over every issue run): a repeated call issues
    nothing more and returns the first run's result. Members are served in id order; those
    holding ``per_member_limit`` coupons of the template already (``limit_reached``), those
    beyond the stock (``out_of_stock``), merged, erased or frozen ones (``member_inactive``) and
    ids of no member (``unknown_member``) are skipped and reported. Rejects
    ``template_not_available`` (inactive, or its fixed dates are over), ``idempotency_key_required``,
    ``idempotency_key_reused`` (another template or target).
    """
    ids = sorted({int(m) for m in member_ids})
    return _issue(template=template, key=idempotency_key, target=IssueTarget.MEMBERS,
                  ref=str(ids[0]) if len(ids) == 1 else "", rule=None,
                  members=lambda after: ids[bisect_right(ids, after):][:CHUNK], now=now, actor=actor)


def issue_coupon(*, template: CouponTemplate, member, idempotency_key: str, now: dt.datetime | None = None,
                 actor: str = "") -> IssueResult:
    """Issue one coupon to one member: :func:`issue_to_members` with a batch of one."""
    return issue_to_members(template=template, member_ids=[getattr(member, "pk", member)],
                            idempotency_key=idempotency_key, now=now, actor=actor)


def issue_to_snapshot(*, template: CouponTemplate, snapshot, idempotency_key: str, now: dt.datetime | None = None,
                      actor: str = "") -> IssueResult:
    """Issue one coupon to every member of a segment snapshot (快照), as :func:`issue_to_members`."""
    from siyu.segments.models import SnapshotMember

    members = SnapshotMember.objects.filter(snapshot=snapshot).values_list("member_id", flat=True)
    return _issue(template=template, key=idempotency_key, target=IssueTarget.SNAPSHOT, ref=str(snapshot.pk),
                  rule=None, members=_keyset(members, "member_id"), now=now, actor=actor)


def issue_by_rule(*, template: CouponTemplate, idempotency_key: str, rule: Any = None, segment=None,
                  now: dt.datetime | None = None, actor: str = "") -> IssueResult:
    """Issue one coupon to every member of a segment rule tree or of a saved segment, evaluated
    now (定向发券), as :func:`issue_to_members`. Rejects ``invalid_rule`` (a ``RuleError`` with the node
    path) for a rule that does not parse, ``invalid_target`` unless exactly one of rule and segment is given."""
    from siyu.segments.selectors import rule_members, segment_members

    if (rule is None) == (segment is None):
        raise ValidationError(_("give a rule or a segment"), code="invalid_target", field="rule")
    members = segment_members(segment, now=now) if segment is not None else rule_members(rule, now=now)
    target, ref = (IssueTarget.SEGMENT, segment.code) if segment is not None else (IssueTarget.RULE, "")
    return _issue(template=template, key=idempotency_key, target=target, ref=ref,
                  rule=rule if segment is None else segment.rule,
                  members=_keyset(members.values_list("pk", flat=True), "pk"), now=now, actor=actor)


def _keyset(ids: QuerySet, column: str):
    """Pages of a member id query in id order, each page a fresh indexed probe after the last id."""
    def page(after: int) -> list[int]:
        return list(ids.filter(**{f"{column}__gt": after}).order_by(column)[:CHUNK])
    return page


def _issue(*, template, key, target, ref, rule, members, now, actor) -> IssueResult:
    if not (key or "").strip():
        raise ValidationError(_("an idempotency key is required"), code="idempotency_key_required",
                              field="idempotency_key")
    now = now or timezone.now()
    earlier = CouponIssue.objects.filter(idempotency_key=key).first()
    if earlier is not None:
        return _replayed(earlier, template, target)
    with transaction.atomic():
        template = CouponTemplate.objects.select_for_update().get(pk=template.pk)
        earlier = CouponIssue.objects.filter(idempotency_key=key).first()  # a twin that waited on the lock
        if earlier is not None:
            return _replayed(earlier, template, target)
        _check_available(template, now)
        try:
            with transaction.atomic():
                issue = CouponIssue.objects.create(template=template, idempotency_key=key, target=target,
                                                   target_ref=ref[:100], rule=rule, actor=actor[:200], issued_at=now)
        except IntegrityError:  # the same key for another template, committed meanwhile
            earlier = CouponIssue.objects.get(idempotency_key=key)
            return _replayed(earlier, template, target)
        valid_from, valid_until = coupon_window(template, now)
        left = template.stock_left
        skipped: Counter = Counter()
        detail: list[tuple[int, str]] = []
        requested = issued = 0

        def skip(member_id: int, reason: str) -> None:
            skipped[reason] += 1
            if len(detail) < SKIPPED_DETAIL:
                detail.append((member_id, reason))

        for ids in _pages(members):
            requested += len(ids)
            if left is not None and left <= 0:  # sold out: the rest are only counted
                for member_id in ids:
                    skip(member_id, SkipReason.OUT_OF_STOCK)
                continue
            status = dict(Member.objects.filter(pk__in=ids).values_list("pk", "status"))
            held = _held(template, ids) if template.per_member_limit is not None else {}
            coupons = []
            for member_id in ids:
                if member_id not in status:
                    skip(member_id, SkipReason.UNKNOWN_MEMBER)
                elif status[member_id] != MemberStatus.ACTIVE:
                    skip(member_id, SkipReason.MEMBER_INACTIVE)
                elif template.per_member_limit is not None and held.get(member_id, 0) >= template.per_member_limit:
                    skip(member_id, SkipReason.LIMIT_REACHED)
                elif left is not None and left <= 0:
                    skip(member_id, SkipReason.OUT_OF_STOCK)
                else:
                    coupons.append(Coupon(template=template, member_id=member_id, issue=issue, code=new_coupon_code(),
                                          issued_at=now, valid_from=valid_from, valid_until=valid_until))
                    if left is not None:
                        left -= 1
            Coupon.objects.bulk_create(coupons, batch_size=CHUNK)
            issued += len(coupons)
        if issued:
            # Conditional on the stock as well: the check constraint and this filter back the lock.
            counted = CouponTemplate.objects.filter(
                Q(total_stock__isnull=True) | Q(total_stock__gte=F("issued_count") + issued), pk=template.pk,
            ).update(issued_count=F("issued_count") + issued)
            if counted != 1:
                raise RuntimeError(f"coupon template {template.pk}: stock moved under its lock")
        issue.requested, issue.issued = requested, issued
        issue.skipped, issue.skipped_members = dict(skipped), [list(d) for d in detail]
        issue.save(update_fields=["requested", "issued", "skipped", "skipped_members"])
    return IssueResult.of(issue, template, replayed=False)


def _pages(members) -> Iterator[list[int]]:
    after = 0
    while True:
        ids = members(after)
        if not ids:
            return
        yield ids
        after = ids[-1]


def _held(template: CouponTemplate, ids: list[int]) -> dict[int, int]:
    """How many coupons of ``template`` each member holds (any state: the limit counts every coupon issued)."""
    return dict(Coupon.objects.filter(template=template, member_id__in=ids).order_by().values("member_id")
                .annotate(n=Count("pk")).values_list("member_id", "n"))


def _replayed(earlier: CouponIssue, template: CouponTemplate, target: str) -> IssueResult:
    if earlier.template_id != template.pk or earlier.target != target:
        raise Conflict(_("this idempotency key was already used for another request"),
                       code="idempotency_key_reused", field="idempotency_key")
    return IssueResult.of(earlier, template, replayed=True)


def _check_available(template: CouponTemplate, now: dt.datetime) -> None:
    if not template.is_active or (template.validity == Validity.FIXED and template.valid_until <= now):
        raise Conflict(_("coupon template %(code)s is not available for issue") % {"code": template.code},
                       code="template_not_available", field="template")


def coupon_window(template: CouponTemplate, issued_at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``(valid_from, valid_until)`` of a coupon issued at ``issued_at``: the template's fixed
    dates, or from the issue until ``valid_days`` × 24 hours later."""
    if template.validity == Validity.DAYS:
        return issued_at, issued_at + dt.timedelta(days=template.valid_days)
    return template.valid_from or issued_at, template.valid_until


# Redeeming ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CouponRedemption:
    """A coupon redeemed against an order: the discount (0.00 for gift and free-shipping coupons),
    the gift product, whether shipping is free. ``replayed`` when it was redeemed earlier."""

    code: str
    coupon_id: int
    order_id: int
    kind: str
    discount: Decimal
    gift_product_id: int | None = None
    free_shipping: bool = False
    replayed: bool = False

    def as_dict(self) -> dict:
        return {"code": self.code, "order_id": self.order_id, "kind": self.kind, "discount": str(self.discount),
                "gift_product_id": self.gift_product_id, "free_shipping": self.free_shipping,
                "replayed": self.replayed}


def _refuse(message: str, code: str, field_name: str = "code") -> Conflict:
    return Conflict(message, code=code, field=field_name)


def redeem_coupon(*, code: str, order, member=None, now: dt.datetime | None = None) -> CouponRedemption:
    """Redeem the coupon ``code`` against ``order`` (an ``Order`` or its id); returns the discount.

    Idempotent by ``(coupon, order)``: redeeming again for the same order changes nothing and
    returns the same result (``replayed``); for another order it is refused. Checks, in order:
    ``coupon_not_found``, ``order_not_found``, ``coupon_redeemed`` (against another order),
    ``not_owner`` (the order's or the given member is not the coupon's), ``order_closed``,
    ``coupon_expired``, ``coupon_not_started``, ``channel_not_applicable``,
    ``store_not_applicable`` (store outside the scope, or of another brand),
    ``product_not_applicable`` (no line in the product scope), ``threshold_not_met``.
    """
    now = now or timezone.now()
    order_id = getattr(order, "pk", order)
    with transaction.atomic():
        coupon = Coupon.objects.select_for_update().filter(code=(code or "").strip().upper()).first()
        if coupon is None:
            raise NotFound(_("no coupon has this code"), code="coupon_not_found", field="code")
        order = Order.objects.filter(pk=order_id).select_related("store").first()
        if order is None:
            raise NotFound(_("order not found"), code="order_not_found", field="order")
        template = CouponTemplate.objects.select_related("program").get(pk=coupon.template_id)
        if coupon.state == CouponState.REDEEMED:
            if coupon.order_id == order.pk:
                return _redemption(coupon, template, replayed=True)
            raise _refuse(_("this coupon was already used on another order"), "coupon_redeemed")
        member_id = getattr(member, "pk", member)
        if order.member_id != coupon.member_id or (member_id is not None and member_id != coupon.member_id):
            raise _refuse(_("this coupon belongs to another member"), "not_owner")
        if order.status == OrderStatus.CLOSED:
            raise _refuse(_("the order is closed"), "order_closed", "order")
        if coupon.state == CouponState.EXPIRED or now >= coupon.valid_until:
            raise _refuse(_("this coupon has expired"), "coupon_expired")
        if now < coupon.valid_from:
            raise _refuse(_("this coupon is not valid yet"), "coupon_not_started")
        discount = coupon_discount(template, order)
        coupon.state, coupon.order, coupon.discount, coupon.redeemed_at = CouponState.REDEEMED, order, discount, now
        updated = Coupon.objects.filter(pk=coupon.pk, state=CouponState.ISSUED).update(
            state=CouponState.REDEEMED, order=order, discount=discount, redeemed_at=now)
        if updated != 1:
            raise RuntimeError(f"coupon {coupon.pk} changed under its lock")
    return _redemption(coupon, template, replayed=False)


def _redemption(coupon: Coupon, template: CouponTemplate, *, replayed: bool) -> CouponRedemption:
    return CouponRedemption(code=coupon.code, coupon_id=coupon.pk, order_id=coupon.order_id, kind=template.kind,
                            discount=coupon.discount, gift_product_id=template.gift_product_id
                            if template.kind == CouponKind.GIFT else None,
                            free_shipping=template.kind == CouponKind.FREE_SHIPPING, replayed=replayed)


def coupon_discount(template: CouponTemplate, order: Order) -> Decimal:
    """The discount ``template`` gives on ``order`` (0.01 yuan, never more than the amount in scope),
    or ``Conflict`` when the order's channel, store, products or amount do not qualify."""
    channels = set(template.channels.values_list("pk", flat=True))
    if channels and order.channel_id not in channels:
        raise _refuse(_("this coupon cannot be used in this channel"), "channel_not_applicable", "order")
    stores = set(template.stores.values_list("pk", flat=True))
    if stores and order.store_id not in stores:
        raise _refuse(_("this coupon cannot be used in this store"), "store_not_applicable", "order")
    brands = _brands(template)
    if brands is not None and order.store_id is not None and order.store.brand_id not in brands:
        raise _refuse(_("this coupon cannot be used in this store"), "store_not_applicable", "order")
    base = _amount_in_scope(template, order)
    if base is None:
        raise _refuse(_("no product of the order can use this coupon"), "product_not_applicable", "order")
    if base < template.min_amount:
        raise _refuse(_("the order amount %(amount)s is below the coupon's minimum %(minimum)s")
                      % {"amount": base, "minimum": template.min_amount}, "threshold_not_met", "order")
    if template.kind in (CouponKind.AMOUNT_OFF, CouponKind.THRESHOLD):
        discount = template.amount_off
    elif template.kind == CouponKind.PERCENT_OFF:
        discount = (base * template.percent_off / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        if template.max_discount is not None:
            discount = min(discount, template.max_discount)
    else:  # gift, free shipping: nothing off the goods
        discount = ZERO
    return min(discount, base).quantize(CENT)


def _brands(template: CouponTemplate) -> set[int] | None:
    """The brands whose stores take the coupon; None for any store of the group's brands."""
    if template.brand_id is not None:
        return {template.brand_id}
    if template.program.brand_id is not None:
        return {template.program.brand_id}
    from siyu.org.models import Brand

    return set(Brand.objects.filter(group_id=template.program.group_id).values_list("pk", flat=True))


def _amount_in_scope(template: CouponTemplate, order: Order) -> Decimal | None:
    """The order amount (before discounts, else paid) or, with a product scope, the amount of its
    lines in scope; None when no line is in scope."""
    products = set(template.products.values_list("pk", flat=True))
    categories = set(template.categories.values_list("category", flat=True))
    if not products and not categories:
        return order.total_amount if order.total_amount > 0 else order.paid_amount
    lines = OrderLine.objects.filter(order=order).filter(
        Q(product_id__in=products) | Q(product__category__in=categories))
    amounts = list(lines.values_list("amount", flat=True))
    return sum(amounts, ZERO) if amounts else None


# Releasing and expiring ---------------------------------------------------------------------------

@dataclass
class ReleaseResult:
    released: int = 0  # back to issued
    expired: int = 0  # released past their validity: expired at once

    def as_dict(self) -> dict:
        return {"released": self.released, "expired": self.expired}


def release_coupons_for_orders(*, order_ids: Iterable[int], now: dt.datetime | None = None) -> ReleaseResult:
    """Give back the coupons redeemed against those of ``order_ids`` that are closed (交易关闭).

    A released coupon is ``issued`` again (redeemable on another order) or, past its validity,
    ``expired``; it still counts as issued against the template's stock. Orders that are not
    closed keep their coupons. Idempotent: a second call finds nothing redeemed and does nothing.
    """
    now = now or timezone.now()
    result = ReleaseResult()
    for chunk in chunked(sorted({int(o) for o in order_ids}), CHUNK):
        with transaction.atomic():
            # The common case (orders without coupons) costs one indexed probe.
            used = set(Coupon.objects.filter(order_id__in=chunk, state=CouponState.REDEEMED)
                       .values_list("order_id", flat=True))
            closed = list(Order.objects.filter(pk__in=used, status=OrderStatus.CLOSED)
                          .values_list("pk", flat=True)) if used else []
            ids = list(Coupon.objects.select_for_update().filter(order_id__in=closed, state=CouponState.REDEEMED)
                       .order_by("pk").values_list("pk", flat=True)) if closed else []
            if not ids:
                continue
            cleared = {"order": None, "discount": None, "redeemed_at": None, "released_at": now}
            result.released += Coupon.objects.filter(pk__in=ids, valid_until__gt=now).update(
                state=CouponState.ISSUED, **cleared)
            result.expired += Coupon.objects.filter(pk__in=ids, valid_until__lte=now).update(
                state=CouponState.EXPIRED, expired_at=now, **cleared)
    return result


def expire_coupons(*, now: dt.datetime | None = None, chunk: int = 5000) -> int:
    """Expire every issued coupon whose validity ended by ``now`` (nightly); returns how many.

    Set-based per chunk of due coupons (the ``state, valid_until`` index), each chunk its own
    transaction; the update re-checks the state, so a coupon redeemed meanwhile stays redeemed.
    Redeemed coupons never expire; running twice expires nothing more.
    """
    now = now or timezone.now()
    expired = 0
    while True:
        ids = list(Coupon.objects.filter(state=CouponState.ISSUED, valid_until__lte=now)
                   .order_by("pk").values_list("pk", flat=True)[:chunk])
        if not ids:
            return expired
        with transaction.atomic():
            expired += Coupon.objects.filter(pk__in=ids, state=CouponState.ISSUED, valid_until__lte=now).update(
                state=CouponState.EXPIRED, expired_at=now)


# Reads -------------------------------------------------------------------------------------------------

def member_coupons(member_id: int, *, state: str | None = None, before_id: int | None = None,
                   limit: int = 50) -> list[Coupon]:
    """A member's coupons, newest first, keyset-paginated by id (``before_id``)."""
    coupons = Coupon.objects.filter(member_id=member_id).select_related("template")
    if state:
        coupons = coupons.filter(state=state)
    if before_id is not None:
        coupons = coupons.filter(pk__lt=before_id)
    return list(coupons.order_by("-pk")[:limit])


def template_counts(template: CouponTemplate) -> dict[str, int]:
    """Coupons of ``template`` by state, and the template's issued counter as stored."""
    counts = dict(Coupon.objects.filter(template=template).order_by().values("state")
                  .annotate(n=Count("pk")).values_list("state", "n"))
    issued_count = CouponTemplate.objects.filter(pk=template.pk).values_list("issued_count", flat=True).get()
    return {"issued_count": issued_count, **{s: counts.get(s, 0) for s in CouponState.values}}
