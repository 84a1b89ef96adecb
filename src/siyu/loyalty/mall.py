"""The points mall (积分商城): members spend points on goods, coupons or cash-like rewards.

A redemption is one transaction: the reward's stock and the member's points move together, or
nothing moves and the caller gets a coded ``Conflict``: ``not_available``, ``out_of_stock``,
``limit_reached``, ``insufficient_points`` (or ``member_inactive``, ``idempotency_key_reused``).

Lock order (documented so that no two redemptions can deadlock): the reward row first
(``SELECT … FOR UPDATE``; every redemption of one reward, and so one member's limit on it, is
serialised there), then the points account (``spend_points`` → the ledger's ``lock_accounts``),
then, for a coupon reward, the coupon template (``issue_to_members``). Nothing locks a points
account or a template and then waits for a reward.
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.errors import Conflict, NotFound, ValidationError
from siyu.loyalty.coupon_models import Coupon, Reward, RewardKind, RewardRedemption
from siyu.loyalty.coupons import SkipReason, issue_to_members
from siyu.loyalty.ledger import spend_points
from siyu.loyalty.models import SourceType
from siyu.members.models import Member, MemberStatus

#: How a coupon template's refusal to issue reads as a redemption error.
_SKIP_CODES = {SkipReason.OUT_OF_STOCK: "out_of_stock", SkipReason.LIMIT_REACHED: "limit_reached",
               SkipReason.MEMBER_INACTIVE: "member_inactive"}


def redeem_reward(*, member, reward, idempotency_key: str, quantity: int = 1, now: dt.datetime | None = None,
                  actor: str = "") -> RewardRedemption:
    """Redeem ``quantity`` of ``reward`` (a ``Reward`` or its id) for ``member``'s points.

    Idempotency key: ``idempotency_key`` (unique per program, at most 120 characters): a repeat
    (a double-tap, a retried request) returns the first redemption and changes nothing; the same
    key for another member, reward or quantity is ``idempotency_key_reused``. The points are spent
    through the ledger (``spend_points``, source ``redemption:<id>``, key ``mall:<key>``); a
    coupon reward issues one coupon of its template (quantity 1 only). Rejects
    ``invalid_quantity``, ``idempotency_key_required``, ``reward_not_found``, ``not_available``
    (off offer, outside its window, or its program inactive), ``member_inactive``,
    ``out_of_stock``, ``limit_reached`` (per member, counting earlier units) and
    ``insufficient_points``; a refusal writes nothing.
    """
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        raise ValidationError(_("redeem a positive whole quantity"), code="invalid_quantity", field="quantity")
    key = (idempotency_key or "").strip()
    if not key:
        raise ValidationError(_("an idempotency key is required"), code="idempotency_key_required",
                              field="idempotency_key")
    if len(key) > 120:
        raise ValidationError(_("the idempotency key is longer than 120 characters"), code="invalid_key",
                              field="idempotency_key")
    now = now or timezone.now()
    member_id = getattr(member, "pk", member)
    reward_id = getattr(reward, "pk", reward)
    with transaction.atomic():
        reward = Reward.objects.select_for_update().filter(pk=reward_id).first()  # lock 1: the stock row
        if reward is None:
            raise NotFound(_("reward not found"), code="reward_not_found", field="reward")
        earlier = RewardRedemption.objects.filter(program_id=reward.program_id, idempotency_key=key).first()
        if earlier is not None:
            return _replay(earlier, member_id, reward, quantity)
        _check(reward, member_id, quantity, now)
        points = reward.points_price * quantity
        try:
            with transaction.atomic():
                redemption = RewardRedemption.objects.create(
                    program_id=reward.program_id, reward=reward, member_id=member_id, quantity=quantity, points=points,
                    idempotency_key=key, redeemed_at=now, actor=actor[:200])
        except IntegrityError:  # the same key on another reward of the program, committed meanwhile
            earlier = RewardRedemption.objects.get(program_id=reward.program_id, idempotency_key=key)
            return _replay(earlier, member_id, reward, quantity)
        # lock 2: the points account; raises insufficient_points and everything rolls back
        entry = spend_points(member=member_id, program=reward.program, amount=points,
                             reason=_("points mall: %(reward)s × %(quantity)d") % {"reward": reward.name,
                                                                                  "quantity": quantity},
                             source=(SourceType.REDEMPTION, redemption.pk), idempotency_key=f"mall:{key}",
                             now=now, actor=actor)
        taken = Reward.objects.filter(Q(stock__isnull=True) | Q(stock__gte=quantity), pk=reward.pk).update(
            stock=F("stock") - quantity, redeemed_count=F("redeemed_count") + quantity)
        if taken != 1:
            raise RuntimeError(f"reward {reward.pk}: stock moved under its lock")
        redemption.points_entry = entry
        if reward.kind == RewardKind.COUPON:
            redemption.coupon = _issue_coupon(reward, redemption, now, actor)  # lock 3: the template
        redemption.save(update_fields=["points_entry", "coupon"])
    return redemption


def _replay(earlier: RewardRedemption, member_id: int, reward: Reward, quantity: int) -> RewardRedemption:
    if (earlier.member_id, earlier.reward_id, earlier.quantity) != (member_id, reward.pk, quantity):
        raise Conflict(_("this idempotency key was already used for another request"),
                       code="idempotency_key_reused", field="idempotency_key")
    return earlier


def _check(reward: Reward, member_id: int, quantity: int, now: dt.datetime) -> None:
    if (not reward.is_active or not reward.program.is_active or (reward.valid_from and now < reward.valid_from)
            or (reward.valid_until and now >= reward.valid_until)):
        raise Conflict(_("this reward is not on offer"), code="not_available", field="reward")
    status = Member.objects.filter(pk=member_id).values_list("status", flat=True).first()
    if status is None:
        raise NotFound(_("member not found"), code="unknown_member", field="member")
    if status != MemberStatus.ACTIVE:
        raise Conflict(_("this member cannot redeem rewards"), code="member_inactive", field="member")
    if reward.kind == RewardKind.COUPON and quantity != 1:
        raise ValidationError(_("coupon rewards are redeemed one at a time"), code="invalid_quantity",
                              field="quantity")
    if reward.stock is not None and reward.stock < quantity:
        raise Conflict(_("this reward is out of stock"), code="out_of_stock", field="reward")
    if reward.per_member_limit is not None:
        held = RewardRedemption.objects.filter(reward=reward, member_id=member_id).aggregate(
            n=Sum("quantity"))["n"] or 0
        if held + quantity > reward.per_member_limit:
            raise Conflict(_("at most %(limit)d per member: %(held)d redeemed already")
                           % {"limit": reward.per_member_limit, "held": held}, code="limit_reached", field="quantity")


def _issue_coupon(reward: Reward, redemption: RewardRedemption, now: dt.datetime, actor: str) -> Coupon:
    result = issue_to_members(template=reward.coupon_template, member_ids=[redemption.member_id],
                              idempotency_key=f"reward:{redemption.pk}", now=now, actor=actor)
    if not result.issued:
        reason = result.skipped_members[0][1] if result.skipped_members else SkipReason.OUT_OF_STOCK
        raise Conflict(_("the reward's coupon cannot be issued: %(reason)s") % {"reason": reason},
                       code=_SKIP_CODES.get(reason, "not_available"), field="reward")
    return Coupon.objects.get(issue_id=result.issue_id)


# Reads -------------------------------------------------------------------------------------------------

def rewards_on_offer(program, *, now: dt.datetime | None = None) -> list[Reward]:
    """The program's rewards on offer now, in their display order (sold-out ones included, last)."""
    now = now or timezone.now()
    rewards = Reward.objects.filter(program=program, is_active=True).filter(
        Q(valid_from__isnull=True) | Q(valid_from__lte=now), Q(valid_until__isnull=True) | Q(valid_until__gt=now))
    return sorted(rewards.select_related("coupon_template").order_by("sort", "pk"), key=lambda r: r.stock == 0)


def member_redemptions(member_id: int, *, program=None, before_id: int | None = None,
                       limit: int = 50) -> list[RewardRedemption]:
    """A member's redemptions, newest first, keyset-paginated by id (``before_id``)."""
    found = RewardRedemption.objects.filter(member_id=member_id).select_related("reward")
    if program is not None:
        found = found.filter(program=program)
    if before_id is not None:
        found = found.filter(pk__lt=before_id)
    return list(found.order_by("-pk")[:limit])
