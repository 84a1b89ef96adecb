"""The points mall (积分商城): a redemption moves points and stock together or not at all, and says why."""

from __future__ import annotations

from decimal import Decimal

import pytest

from siyu.core.errors import Conflict, ValidationError
from siyu.loyalty.coupon_models import Coupon, CouponTemplate, Reward, RewardKind, RewardRedemption
from siyu.loyalty.ledger import verify_ledger
from siyu.loyalty.mall import member_redemptions, redeem_reward, rewards_on_offer
from siyu.loyalty.models import EntryKind, PointsEntry, SourceType
from siyu.members.models import MemberStatus
from tests.factories import make_member
from tests.loyalty.coupon_fixtures import DAY, NOW, grant, make_reward, make_template, points

pytestmark = pytest.mark.django_db


def stock(reward) -> tuple[int | None, int]:
    row = Reward.objects.get(pk=reward.pk)
    return row.stock, row.redeemed_count


def refused(error: str, **kwargs) -> None:
    entries, redemptions = PointsEntry.objects.count(), RewardRedemption.objects.count()
    with pytest.raises((Conflict, ValidationError)) as caught:
        redeem_reward(now=NOW, **kwargs)
    assert caught.value.code == error
    assert (PointsEntry.objects.count(), RewardRedemption.objects.count()) == (entries, redemptions)


def test_redeeming_spends_the_points_through_the_ledger_and_takes_the_stock(program, member):
    grant(member, program, 500)
    mug = make_reward(program, points=200, stock=5)

    redemption = redeem_reward(member=member, reward=mug, idempotency_key="tap-1", now=NOW, actor="h5")

    assert points(member, program) == 300
    assert stock(mug) == (4, 1)
    assert (redemption.points, redemption.quantity, redemption.redeemed_at, redemption.coupon) == (200, 1, NOW, None)
    entry = redemption.points_entry
    assert (entry.kind, entry.amount, entry.source_type, entry.source_id, entry.idempotency_key) == (
        EntryKind.REDEEM, -200, SourceType.REDEMPTION, str(redemption.pk), "mall:tap-1")
    assert verify_ledger()[1] == []


def test_a_double_tap_with_the_same_key_returns_the_first_redemption(program, member):
    grant(member, program, 500)
    mug = make_reward(program, points=200, stock=5)
    first = redeem_reward(member=member, reward=mug, idempotency_key="tap", now=NOW)

    again = redeem_reward(member=member, reward=mug.pk, idempotency_key="tap", now=NOW + DAY)

    assert again.pk == first.pk
    assert (points(member, program), stock(mug), RewardRedemption.objects.count()) == (300, (4, 1), 1)


def test_a_key_reused_for_another_reward_is_refused(program, member):
    grant(member, program, 500)
    redeem_reward(member=member, reward=make_reward(program, "a"), idempotency_key="tap", now=NOW)

    refused("idempotency_key_reused", member=member, reward=make_reward(program, "b"), idempotency_key="tap")
    assert points(member, program) == 400


def test_not_enough_points_takes_nothing(program, member):
    grant(member, program, 199)
    mug = make_reward(program, points=200, stock=5)

    refused("insufficient_points", member=member, reward=mug, idempotency_key="tap")

    assert (points(member, program), stock(mug)) == (199, (5, 0))


def test_out_of_stock_takes_no_points(program, member):
    grant(member, program, 500)
    mug = make_reward(program, points=200, stock=1)
    redeem_reward(member=member, reward=mug, idempotency_key="first", now=NOW)

    refused("out_of_stock", member=member, reward=mug, idempotency_key="second")

    assert (points(member, program), stock(mug)) == (300, (0, 1))


def test_the_per_member_limit_counts_every_unit_redeemed(program, member):
    grant(member, program, 1000)
    mug = make_reward(program, points=100, per_member_limit=3)
    redeem_reward(member=member, reward=mug, idempotency_key="two", quantity=2, now=NOW)

    refused("limit_reached", member=member, reward=mug, idempotency_key="more", quantity=2)
    redeem_reward(member=member, reward=mug, idempotency_key="last", now=NOW)
    refused("limit_reached", member=member, reward=mug, idempotency_key="over")

    assert (points(member, program), stock(mug)) == (700, (None, 3))
    other = make_member()
    grant(other, program, 100)
    redeem_reward(member=other, reward=mug, idempotency_key="other", now=NOW)  # the limit is per member


@pytest.mark.parametrize("change", [{"is_active": False}, {"valid_from": NOW + DAY}, {"valid_until": NOW}])
def test_a_reward_off_offer_is_not_available(program, member, change):
    grant(member, program, 500)

    refused("not_available", member=member, reward=make_reward(program, **change), idempotency_key="tap")

    assert points(member, program) == 500


def test_a_reward_of_an_inactive_program_is_not_available(program, member):
    grant(member, program, 500)
    mug = make_reward(program)
    program.__class__.objects.filter(pk=program.pk).update(is_active=False)

    refused("not_available", member=member, reward=mug, idempotency_key="tap")


def test_a_frozen_member_cannot_redeem(program, member):
    grant(member, program, 500)
    member.__class__.objects.filter(pk=member.pk).update(status=MemberStatus.FROZEN)

    refused("member_inactive", member=member, reward=make_reward(program), idempotency_key="tap")


def test_quantity_multiplies_the_price_and_the_stock_taken(program, member):
    grant(member, program, 1000)
    mug = make_reward(program, points=150, stock=10)

    redemption = redeem_reward(member=member, reward=mug, idempotency_key="three", quantity=3, now=NOW)

    assert (redemption.points, points(member, program), stock(mug)) == (450, 550, (7, 3))
    refused("invalid_quantity", member=member, reward=mug, idempotency_key="zero", quantity=0)


def test_a_coupon_reward_issues_a_coupon_of_its_template(program, member):
    grant(member, program, 500)
    template = make_template(program=program, amount_off=Decimal("30.00"))
    reward = make_reward(program, "coupon-30", points=300, kind=RewardKind.COUPON, coupon_template=template)

    redemption = redeem_reward(member=member, reward=reward, idempotency_key="tap", now=NOW)

    coupon = Coupon.objects.get()
    assert redemption.coupon == coupon
    assert (coupon.member_id, coupon.template_id, coupon.state, coupon.issue.idempotency_key) == (
        member.pk, template.pk, "issued", f"reward:{redemption.pk}")
    assert points(member, program) == 200
    assert CouponTemplate.objects.get(pk=template.pk).issued_count == 1


def test_a_coupon_reward_whose_template_ran_out_takes_nothing(program, member):
    grant(member, program, 500)
    template = make_template(program=program, total_stock=0)
    reward = make_reward(program, "coupon", points=100, kind=RewardKind.COUPON, coupon_template=template, stock=9)

    refused("out_of_stock", member=member, reward=reward, idempotency_key="tap")

    assert (points(member, program), stock(reward), Coupon.objects.count()) == (500, (9, 0), 0)


def test_a_coupon_reward_at_the_templates_member_limit_is_limit_reached(program, member):
    grant(member, program, 500)
    template = make_template(program=program, per_member_limit=1)
    reward = make_reward(program, "coupon", points=100, kind=RewardKind.COUPON, coupon_template=template)
    redeem_reward(member=member, reward=reward, idempotency_key="one", now=NOW)

    refused("limit_reached", member=member, reward=reward, idempotency_key="two")

    assert points(member, program) == 400


def test_a_cash_like_reward_records_its_value(program, member):
    grant(member, program, 500)
    cash = make_reward(program, "red-packet", points=500, kind=RewardKind.CASH, cash_amount=Decimal("5.00"))

    redemption = redeem_reward(member=member, reward=cash, idempotency_key="tap", now=NOW)

    assert (redemption.reward.cash_amount, points(member, program)) == (Decimal("5.00"), 0)


def test_the_mall_lists_rewards_on_offer_and_a_members_redemptions(program, member):
    grant(member, program, 500)
    first = make_reward(program, "a", sort=1)
    sold_out = make_reward(program, "b", stock=0, sort=0)
    make_reward(program, "c", is_active=False)
    make_reward(program, "d", valid_until=NOW)
    redemption = redeem_reward(member=member, reward=first, idempotency_key="tap", now=NOW)

    assert [r.code for r in rewards_on_offer(program, now=NOW)] == ["a", "b"]
    assert sold_out.stock == 0
    assert member_redemptions(member.pk) == [redemption]
