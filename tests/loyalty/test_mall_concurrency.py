"""Twenty parallel redemptions in the points mall (PostgreSQL and MariaDB; SQLite serialises all
writes anyway): of the last unit of stock, of the last points of one member, of one coupon by
twenty orders: exactly one goes through, and stock, balance and ledger are exact."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from siyu.core.errors import SiyuError
from siyu.loyalty.coupon_models import Coupon, CouponState, Reward, RewardRedemption
from siyu.loyalty.coupons import issue_coupon, redeem_coupon
from siyu.loyalty.ledger import verify_ledger
from siyu.loyalty.mall import redeem_reward
from siyu.loyalty.models import EntryKind, PointsEntry
from tests.factories import make_member
from tests.loyalty.coupon_fixtures import NOW, grant, make_reward, make_template, place_order, points

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite has no row locks"),
]

THREADS = 20


def race(work) -> list[str]:
    """Run ``work(n)`` for n in 0..19 in threads released together; each outcome is "ok" or an error code."""
    start = threading.Barrier(THREADS)
    outcomes: list[str] = []

    def run(n: int) -> None:
        try:
            start.wait()
            work(n)
            outcomes.append("ok")
        except SiyuError as exc:
            outcomes.append(exc.code)
        except BaseException as exc:  # handed back to the test
            outcomes.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


def test_twenty_members_racing_for_the_last_unit_get_one_unit_between_them(program):
    members = [make_member() for _ in range(THREADS)]
    for member in members:
        grant(member, program, 100)
    mug = make_reward(program, points=100, stock=1)

    outcomes = race(lambda n: redeem_reward(member=members[n], reward=mug.pk, idempotency_key=f"tap-{n}", now=NOW))

    assert outcomes == ["ok"] + ["out_of_stock"] * (THREADS - 1)
    assert Reward.objects.filter(pk=mug.pk).values_list("stock", "redeemed_count").get() == (0, 1)
    winner = RewardRedemption.objects.get()
    assert sorted(points(m, program) for m in members) == [0] + [100] * (THREADS - 1)
    assert points(winner.member, program) == 0
    assert PointsEntry.objects.filter(kind=EntryKind.REDEEM).count() == 1
    assert verify_ledger()[1] == []


def test_twenty_redemptions_by_one_member_whose_points_cover_one_let_one_through(program, member):
    grant(member, program, 100)
    mug = make_reward(program, points=100, stock=50)

    outcomes = race(lambda n: redeem_reward(member=member.pk, reward=mug.pk, idempotency_key=f"tap-{n}", now=NOW))

    assert outcomes == ["insufficient_points"] * (THREADS - 1) + ["ok"]
    assert points(member, program) == 0
    assert Reward.objects.filter(pk=mug.pk).values_list("stock", "redeemed_count").get() == (49, 1)
    assert RewardRedemption.objects.count() == 1
    assert PointsEntry.objects.filter(kind=EntryKind.REDEEM).count() == 1
    assert verify_ledger()[1] == []


def test_twenty_taps_with_one_key_make_one_redemption(program, member):
    grant(member, program, 1000)
    mug = make_reward(program, points=100, stock=50)

    outcomes = race(lambda n: redeem_reward(member=member.pk, reward=mug.pk, idempotency_key="tap", now=NOW))

    assert outcomes == ["ok"] * THREADS
    assert (points(member, program), RewardRedemption.objects.count()) == (900, 1)
    assert Reward.objects.filter(pk=mug.pk).values_list("stock", flat=True).get() == 49


def test_twenty_orders_racing_for_one_coupon_get_it_once(program, member):
    template = make_template(program=program)
    issue_coupon(template=template, member=member, idempotency_key="k", now=NOW)
    coupon = Coupon.objects.get()
    orders = [place_order(member, "100.00").pk for _ in range(THREADS)]

    outcomes = race(lambda n: redeem_coupon(code=coupon.code, order=orders[n], now=NOW))

    assert outcomes == ["coupon_redeemed"] * (THREADS - 1) + ["ok"]
    coupon.refresh_from_db()
    assert coupon.state == CouponState.REDEEMED and coupon.order_id in orders


def test_twenty_issuers_of_a_template_with_ten_left_issue_ten(program):
    members = [make_member() for _ in range(THREADS)]
    template = make_template(program=program, total_stock=10)

    outcomes = race(lambda n: issue_coupon(template=template, member=members[n], idempotency_key=f"k{n}", now=NOW))

    assert outcomes == ["ok"] * THREADS
    assert Coupon.objects.count() == 10
    assert template.__class__.objects.get(pk=template.pk).issued_count == 10
