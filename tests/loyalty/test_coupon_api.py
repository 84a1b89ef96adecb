"""Coupons and the points mall over HTTP: issuing to every kind of target, redeeming against an
order, rewards for points, and the error codes an integration sees."""

from __future__ import annotations

import pytest

from siyu.loyalty.coupon_models import Coupon, CouponKind, RewardKind, Validity
from siyu.segments.services import save_segment, take_snapshot
from tests.factories import make_member
from tests.loyalty.coupon_fixtures import grant, make_reward, make_template, place_order, points

pytestmark = pytest.mark.django_db

#: Templates valid for 30 days from the moment the API issues them (the requests run "now").
NOW_ON = {"validity": Validity.DAYS, "valid_days": 30}


def test_issuing_to_one_member_then_listing_their_coupons(api, program, member):
    make_template(program=program, **NOW_ON)

    status, issued = api("post", "/loyalty/coupons/issue", {"template": "ten-off", "member": member.code,
                                                            "idempotency_key": "welcome-1"})
    again = api("post", "/loyalty/coupons/issue", {"template": "ten-off", "member": member.code,
                                                   "idempotency_key": "welcome-1"})
    _s, page = api("get", f"/loyalty/members/{member.code}/coupons")

    assert status == 200 and issued["issued"] == 1 and not issued["replayed"]
    assert again[1]["replayed"] and Coupon.objects.count() == 1
    assert [(c["template"], c["state"], c["kind"]) for c in page["coupons"]] == [("ten-off", "issued", "amount_off")]


def test_issuing_to_a_list_reports_who_was_skipped_and_why(api, program, member):
    make_template(program=program, total_stock=2, **NOW_ON)
    others = [make_member(store=member.store) for _ in range(2)]

    _s, body = api("post", "/loyalty/coupons/issue", {
        "template": "ten-off", "member_ids": [member.pk, *(m.pk for m in others), 99999999],
        "idempotency_key": "list-1"})

    assert body["requested"] == 4 and body["issued"] == 2
    assert body["skipped"] == {"out_of_stock": 1, "unknown_member": 1}


def test_issuing_to_a_snapshot_and_to_a_segment(api, program, member):
    make_template(program=program, **NOW_ON)
    make_template("five-off", program=program, amount_off="5.00", **NOW_ON)
    make_member(city="上海")
    save_segment(code="sh", name="上海", rule={"attr": "city", "op": "eq", "value": "上海"})
    snapshot = take_snapshot(segment=save_segment(code="sh", name="上海",
                                                  rule={"attr": "city", "op": "eq", "value": "上海"}))

    by_snapshot = api("post", "/loyalty/coupons/issue", {"template": "ten-off", "snapshot": snapshot.pk,
                                                         "idempotency_key": "618-a"})
    by_segment = api("post", "/loyalty/coupons/issue", {"template": "five-off", "segment": "sh",
                                                        "idempotency_key": "618-b"})

    assert by_snapshot[1]["issued"] == snapshot.size == 1
    assert by_segment[1]["issued"] == 1


def test_issuing_needs_exactly_one_target_and_a_valid_rule(api, program, member):
    make_template(program=program, **NOW_ON)

    none = api("post", "/loyalty/coupons/issue", {"template": "ten-off", "idempotency_key": "x"})
    bad_rule = api("post", "/loyalty/coupons/issue", {"template": "ten-off", "rule": {"attr": "shoe"},
                                                      "idempotency_key": "y"})
    unknown = api("post", "/loyalty/coupons/issue", {"template": "nope", "member": member.code,
                                                     "idempotency_key": "z"})

    assert none[0] == 400 and none[1]["error"]["code"] == "invalid_target"
    assert bad_rule[0] == 400 and bad_rule[1]["error"]["field"] == "attr"
    assert unknown[0] == 404 and unknown[1]["error"]["code"] == "unknown_template"
    assert not Coupon.objects.exists()


def test_redeeming_against_an_order_once(api, program, member):
    make_template("full-100", program=program, kind=CouponKind.THRESHOLD, amount_off="20.00", min_amount="100.00",
                  **NOW_ON)
    api("post", "/loyalty/coupons/issue", {"template": "full-100", "member": member.code, "idempotency_key": "k"})
    code = Coupon.objects.get().code
    order = place_order(member, "150.00")
    small = place_order(member, "80.00")
    body = {"code": code, "channel": "pos-sh-01", "external_id": order.external_id}

    first = api("post", "/loyalty/coupons/redeem", body)
    again = api("post", "/loyalty/coupons/redeem", body)
    other = api("post", "/loyalty/coupons/redeem", {**body, "external_id": small.external_id})

    assert first[0] == 200 and first[1]["discount"] == "20.00" and not first[1]["replayed"]
    assert again[1]["replayed"] and again[1]["discount"] == "20.00"
    assert other[0] == 409 and other[1]["error"]["code"] == "coupon_redeemed"


def test_a_coupon_below_its_threshold_is_refused(api, program, member):
    make_template("full-100", program=program, kind=CouponKind.THRESHOLD, amount_off="20.00", min_amount="100.00",
                  **NOW_ON)
    api("post", "/loyalty/coupons/issue", {"template": "full-100", "member": member.code, "idempotency_key": "k"})
    order = place_order(member, "80.00")

    status, body = api("post", "/loyalty/coupons/redeem", {"code": Coupon.objects.get().code, "channel": "pos-sh-01",
                                                           "external_id": order.external_id})

    assert status == 409 and body["error"]["code"] == "threshold_not_met"
    assert Coupon.objects.get().state == "issued"


def test_rewards_on_offer_and_a_double_tap_redeems_once(api, program, member):
    make_reward(program, "mug", points=300, stock=5)
    make_reward(program, "voucher", points=100, kind=RewardKind.CASH, cash_amount="10.00")
    grant(member, program, 500)
    body = {"member": member.code, "idempotency_key": "tap-1"}

    _s, rewards = api("get", "/loyalty/rewards")
    first = api("post", "/loyalty/rewards/mug/redeem", body)
    again = api("post", "/loyalty/rewards/mug/redeem", body)

    assert [r["code"] for r in rewards] == ["mug", "voucher"] and rewards[1]["cash_amount"] == "10.00"
    assert first[0] == again[0] == 200 and first[1]["id"] == again[1]["id"] and first[1]["points"] == 300
    assert points(member, program) == 200


def test_a_reward_beyond_the_balance_is_refused_cleanly(api, program, member):
    reward = make_reward(program, "mug", points=300, stock=5)
    grant(member, program, 100)

    status, body = api("post", "/loyalty/rewards/mug/redeem", {"member": member.code, "idempotency_key": "t"})

    reward.refresh_from_db()
    assert status == 409 and body["error"]["code"] == "insufficient_points"
    assert points(member, program) == 100 and reward.stock == 5
    assert api("post", "/loyalty/rewards/nope/redeem", {"member": member.code, "idempotency_key": "u"})[0] == 404


def test_issuing_to_more_member_ids_than_a_batch_holds_is_413_and_issues_nothing(api, program, member):
    make_template(program=program, **NOW_ON)

    status, body = api("post", "/loyalty/coupons/issue", {
        "template": "ten-off", "member_ids": [member.pk] * 5001, "idempotency_key": "too-many"})

    assert status == 413
    assert (body["error"]["code"], body["error"]["field"]) == ("batch_too_large", "member_ids")
    assert "5,000" in body["error"]["message"] and "5,001" in body["error"]["message"]
    assert Coupon.objects.count() == 0
