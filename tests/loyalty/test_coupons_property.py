"""Random sequences of coupon issues, redemptions, order closings, expiries, points grants and points
mall redemptions keep the invariants: issued = outstanding + redeemed + expired for every template,
stock never negative and never oversold, no coupon redeemed twice, per-member limits held, every
balance = the sum of its ledger, and replaying a call changes nothing."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from siyu.commerce.models import Order
from siyu.commerce.services import record_orders
from siyu.core.errors import SiyuError
from siyu.loyalty.coupon_models import (
    Coupon,
    CouponKind,
    CouponState,
    CouponTemplate,
    Reward,
    RewardKind,
    RewardRedemption,
)
from siyu.loyalty.coupons import expire_coupons, issue_to_members, redeem_coupon
from siyu.loyalty.ledger import adjust_points, verify_ledger
from siyu.loyalty.mall import redeem_reward
from siyu.loyalty.models import EntryKind, PointsAccount, PointsEntry
from tests.factories import make_channel, make_member, make_program, make_store

MEMBERS, ORDERS = 3, 6
REFUSALS = {"coupon_redeemed", "coupon_expired", "order_closed", "not_owner", "threshold_not_met",
            "template_not_available", "insufficient_points", "out_of_stock", "limit_reached", "not_available"}

step = st.one_of(
    st.tuples(st.just("issue"), st.integers(0, 1), st.sets(st.integers(0, MEMBERS - 1), min_size=1), st.integers(0, 5)),
    st.tuples(st.just("redeem"), st.integers(0, 30), st.integers(0, ORDERS - 1), st.booleans()),
    st.tuples(st.just("redeem"), st.integers(0, 30), st.integers(0, ORDERS - 1), st.just(True)),
    st.tuples(st.just("close"), st.integers(0, ORDERS - 1)),
    st.tuples(st.just("expire"), st.integers(0, 12)),
    st.tuples(st.just("grant"), st.integers(0, MEMBERS - 1), st.integers(1, 300)),
    st.tuples(st.just("grant"), st.integers(0, MEMBERS - 1), st.integers(1, 300)),
    st.tuples(st.just("mall"), st.integers(0, MEMBERS - 1), st.integers(0, 1), st.integers(1, 2), st.integers(0, 5)),
    st.tuples(st.just("replay"), st.integers(0, 30)),
)


def _state() -> tuple:
    return (list(Coupon.objects.order_by("pk").values_list("pk", "state", "order_id", "discount")),
            list(CouponTemplate.objects.order_by("pk").values_list("pk", "issued_count")),
            list(Reward.objects.order_by("pk").values_list("pk", "stock", "redeemed_count")),
            list(PointsEntry.objects.order_by("pk").values_list("pk", "amount")),
            list(RewardRedemption.objects.order_by("pk").values_list("pk", "points")))


def _check_invariants(templates, rewards, initial_stock, fresh_redeems, releases) -> None:
    for template in CouponTemplate.objects.all():
        states = Counter(dict(Coupon.objects.filter(template=template).values("state").annotate(n=Count("pk"))
                              .values_list("state", "n")))
        assert template.issued_count == sum(states.values())
        assert template.issued_count - states[CouponState.REDEEMED] - states[CouponState.EXPIRED] == \
            states[CouponState.ISSUED]
        assert template.total_stock is None or template.issued_count <= template.total_stock
        if template.per_member_limit is not None:
            assert not Coupon.objects.filter(template=template).values("member").annotate(n=Count("pk")).filter(
                n__gt=template.per_member_limit).exists()
    for coupon in Coupon.objects.all():
        redeemed_now = coupon.state == CouponState.REDEEMED
        assert fresh_redeems[coupon.pk] - releases[coupon.pk] == int(redeemed_now)  # never redeemed twice
        assert redeemed_now == (coupon.order_id is not None)
        if redeemed_now:
            assert Order.objects.get(pk=coupon.order_id).member_id == coupon.member_id
    for reward in Reward.objects.all():
        taken = RewardRedemption.objects.filter(reward=reward).aggregate(n=Sum("quantity"))["n"] or 0
        assert reward.redeemed_count == taken
        if reward.stock is not None:
            assert reward.stock >= 0
            assert reward.stock + taken == initial_stock[reward.pk]
        if reward.per_member_limit is not None:
            assert not RewardRedemption.objects.filter(reward=reward).values("member").annotate(
                n=Sum("quantity")).filter(n__gt=reward.per_member_limit).exists()
    assert verify_ledger()[1] == []
    for account in PointsAccount.objects.all():
        assert account.balance >= 0
        assert account.balance == sum(account.entries.values_list("amount", flat=True))
    for redemption in RewardRedemption.objects.select_related("points_entry"):
        assert (redemption.points_entry.kind, redemption.points_entry.amount) == (EntryKind.REDEEM,
                                                                                   -redemption.points)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=3, max_size=18))
def test_coupons_and_the_mall_keep_their_invariants_through_any_history(steps):
    with transaction.atomic():
        channel = make_channel("pos-sh-01", store=make_store("sh-01"))
        program = make_program()
        now = timezone.now()
        members = [make_member(store=channel.store) for _ in range(MEMBERS)]
        templates = [
            CouponTemplate.objects.create(code="pct", name="85折", program=program, kind=CouponKind.PERCENT_OFF,
                                          percent_off=15, max_discount=20, total_stock=4, per_member_limit=2,
                                          valid_until=now + dt.timedelta(days=6)),
            CouponTemplate.objects.create(code="mj", name="满100减20", program=program, kind=CouponKind.THRESHOLD,
                                          amount_off=20, min_amount=100, valid_until=now + dt.timedelta(days=9)),
        ]
        rewards = [
            Reward.objects.create(program=program, code="mug", name="杯子", kind=RewardKind.GOODS, points_price=100,
                                  stock=3, per_member_limit=2),
            Reward.objects.create(program=program, code="coupon", name="兑券", kind=RewardKind.COUPON,
                                  points_price=50, coupon_template=templates[0]),
        ]
        initial_stock = {r.pk: r.stock for r in rewards}
        rows = [{"channel": channel.code, "external_id": f"O{n}", "member_id": members[n % MEMBERS].pk,
                 "paid_amount": f"{40 + 30 * n}.00", "ordered_at": now.isoformat(), "status": "pending"}
                for n in range(ORDERS)]
        record_orders(rows=rows, source="prop")
        orders = list(Order.objects.filter(channel=channel).order_by("external_id").values_list("pk", flat=True))
        fresh_redeems: Counter = Counter()
        releases: Counter = Counter()
        done: list = []

        for n, (kind, *args) in enumerate(steps):
            call = None
            if kind == "issue":
                which, who, key = args
                call = (issue_to_members, {"template": templates[which], "member_ids": [members[m].pk for m in who],
                                           "idempotency_key": f"issue-{which}-{key}", "now": now})
            elif kind == "redeem":
                coupons = list(Coupon.objects.order_by("pk").values_list("code", "member_id"))
                if coupons:
                    code, owner = coupons[args[0] % len(coupons)]
                    order = orders[args[1]]
                    if args[2]:  # one of the owner's orders
                        mine = list(Order.objects.filter(pk__in=orders, member_id=owner).order_by("pk")
                                    .values_list("pk", flat=True))
                        order = mine[args[1] % len(mine)]
                    call = (redeem_coupon, {"code": code, "order": order, "now": now})
            elif kind == "close":
                order_id = orders[args[0]]
                for coupon_id in Coupon.objects.filter(order_id=order_id, state=CouponState.REDEEMED).values_list(
                        "pk", flat=True):
                    releases[coupon_id] += 1
                call = (record_orders, {"rows": [dict(rows[args[0]], status="closed")], "source": "prop"})
            elif kind == "expire":
                call = (expire_coupons, {"now": now + dt.timedelta(days=args[0])})
            elif kind == "grant":
                who, amount = args
                call = (adjust_points, {"member": members[who], "program": program, "amount": amount,
                                        "reason": "补发", "actor": "prop", "idempotency_key": f"grant-{n}"})
            elif kind == "mall":
                who, which, quantity, key = args
                quantity = 1 if rewards[which].kind == RewardKind.COUPON else quantity
                call = (redeem_reward, {"member": members[who], "reward": rewards[which], "quantity": quantity,
                                        "idempotency_key": f"tap-{who}-{which}-{quantity}-{key}", "now": now})
            elif kind == "replay" and done:
                function, kwargs = done[args[0] % len(done)]
                if function is redeem_coupon:  # a replay only while that redemption stands
                    replayable = Coupon.objects.filter(code=kwargs["code"], order_id=kwargs["order"]).exists()
                else:
                    replayable = function not in (record_orders, expire_coupons)  # the clock and orders move on
                if replayable:
                    before = _state()
                    function(**kwargs)
                    assert _state() == before
            if call is not None:
                before = _state()
                try:
                    outcome = call[0](**call[1])
                except SiyuError as error:
                    assert error.code in REFUSALS, error.code
                    assert _state() == before
                    event(f"refused: {error.code}")
                else:
                    if call[0] is redeem_coupon and not outcome.replayed:
                        fresh_redeems[outcome.coupon_id] += 1
                    done.append(call)
            _check_invariants(templates, rewards, initial_stock, fresh_redeems, releases)

        for state in CouponState.values:
            if Coupon.objects.filter(state=state).exists():
                event(f"a coupon ended {state}")
        if any(releases.values()):
            event("released a coupon")
        transaction.set_rollback(True)
