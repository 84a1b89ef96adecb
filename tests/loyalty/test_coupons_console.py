"""Coupons and the points mall in the console (templates and rewards edited, facts read-only) and in
member merges (the survivor keeps every coupon and redemption)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from siyu.loyalty.coupon_models import Coupon, CouponTemplate, RewardRedemption
from siyu.loyalty.coupons import issue_coupon
from siyu.loyalty.mall import redeem_reward
from siyu.members.merge import merge_members
from tests.factories import make_member
from tests.loyalty.coupon_fixtures import NOW, grant, make_reward, make_template

pytestmark = pytest.mark.django_db


@pytest.fixture
def facts(program, member):
    grant(member, program, 500)
    template = make_template(program=program)
    issue_coupon(template=template, member=member, idempotency_key="k", now=NOW)
    redeem_reward(member=member, reward=make_reward(program), idempotency_key="tap", now=NOW)
    return template


@pytest.mark.parametrize("page", ["coupontemplate", "coupon", "couponissue", "reward", "rewardredemption"])
def test_every_coupon_and_mall_page_lists_and_opens(client, superuser, facts, page):
    client.force_login(superuser)
    model = {"coupontemplate": CouponTemplate, "coupon": Coupon, "rewardredemption": RewardRedemption}.get(page)

    assert client.get(f"/console/loyalty/{page}/").status_code == 200
    if model is not None:
        assert client.get(f"/console/loyalty/{page}/{model.objects.first().pk}/change/").status_code == 200


def test_an_operator_creates_a_template_in_the_console_and_issued_coupons_stay_read_only(client, superuser, facts,
                                                                                       program):
    client.force_login(superuser)
    coupon = Coupon.objects.get()

    response = client.post("/console/loyalty/coupontemplate/add/", {
        "code": "mj-100-20", "name": "满100减20", "program": program.pk, "kind": "threshold",
        "amount_off": "20.00", "min_amount": "100.00", "validity": "days", "valid_days": "7",
        "categories-TOTAL_FORMS": "1", "categories-INITIAL_FORMS": "0", "categories-0-category": "饮品"})
    denied = client.post(f"/console/loyalty/coupon/{coupon.pk}/change/", {"state": "expired"})

    assert response.status_code == 302, response.content.decode()[:2000]
    made = CouponTemplate.objects.get(code="mj-100-20")
    assert (made.amount_off, made.valid_days, list(made.categories.values_list("category", flat=True))) == (
        Decimal("20.00"), 7, ["饮品"])
    assert denied.status_code == 403 and Coupon.objects.get().state == "issued"


def test_a_threshold_template_without_its_minimum_is_refused_by_the_form(client, superuser, program):
    client.force_login(superuser)

    response = client.post("/console/loyalty/coupontemplate/add/", {
        "code": "bad", "name": "缺门槛", "program": program.pk, "kind": "threshold", "amount_off": "20.00",
        "min_amount": "0", "validity": "days", "valid_days": "7",
        "categories-TOTAL_FORMS": "0", "categories-INITIAL_FORMS": "0"})

    assert response.status_code == 200
    assert not CouponTemplate.objects.filter(code="bad").exists()


def test_a_merged_members_coupons_and_redemptions_go_to_the_survivor(program, member, facts):
    survivor = make_member()
    issue_coupon(template=facts, member=survivor, idempotency_key="k2", now=NOW)

    merge_members(survivor_id=survivor.pk, merged_id=member.pk, actor="test")

    assert Coupon.objects.filter(member=survivor).count() == 2
    assert RewardRedemption.objects.get().member_id == survivor.pk
