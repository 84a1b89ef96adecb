"""Coupons (优惠券): discounts to the cent, scope, validity, idempotent redemption, release on a closed
order, expiry."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from siyu.core.errors import Conflict, NotFound
from siyu.loyalty.coupon_models import Coupon, CouponKind, CouponState, Validity
from siyu.loyalty.coupons import (
    coupon_discount,
    expire_coupons,
    issue_coupon,
    redeem_coupon,
    release_coupons_for_orders,
    template_counts,
)
from tests.factories import make_brand, make_channel, make_member, make_product, make_store
from tests.loyalty.coupon_fixtures import DAY, NOW, make_template, place_order, set_status

pytestmark = pytest.mark.django_db


def given_coupon(member, template, key="k1", now=NOW) -> Coupon:
    assert issue_coupon(template=template, member=member, idempotency_key=key, now=now).issued == 1
    return Coupon.objects.get(issue__idempotency_key=key)


def refused(error: str, **kwargs) -> None:
    with pytest.raises(Conflict) as caught:
        redeem_coupon(now=NOW, **kwargs)
    assert caught.value.code == error


# Discounts ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("paid", "discount"), [("100.00", "20.00"), ("15.50", "15.50")])
def test_an_amount_off_coupon_takes_its_amount_off_but_never_more_than_the_order(program, member, paid, discount):
    coupon = given_coupon(member, make_template(program=program, amount_off=Decimal("20.00")))
    order = place_order(member, paid)

    result = redeem_coupon(code=coupon.code, order=order, now=NOW)

    assert result.discount == Decimal(discount)
    coupon.refresh_from_db()
    assert (coupon.state, coupon.order_id, coupon.discount, coupon.redeemed_at) == (
        CouponState.REDEEMED, order.pk, Decimal(discount), NOW)


@pytest.mark.parametrize(("paid", "discount"), [("66.66", "10.00"), ("100.00", "15.00"), ("1000.00", "50.00")])
def test_a_percent_off_coupon_rounds_to_the_cent_and_stops_at_its_cap(program, member, paid, discount):
    coupon = given_coupon(member, make_template(program=program, kind=CouponKind.PERCENT_OFF,
                                                percent_off=Decimal("15"), max_discount=Decimal("50.00")))

    result = redeem_coupon(code=coupon.code, order=place_order(member, paid), now=NOW)

    assert result.discount == Decimal(discount)


def test_a_threshold_coupon_needs_the_minimum_amount_before_discounts(program, member):
    template = make_template(program=program, kind=CouponKind.THRESHOLD, amount_off=Decimal("20.00"),
                             min_amount=Decimal("100.00"))
    coupon = given_coupon(member, template)

    refused("threshold_not_met", code=coupon.code, order=place_order(member, "99.99"))
    result = redeem_coupon(code=coupon.code, order=place_order(member, "80.00", total_amount="100.00"), now=NOW)

    assert result.discount == Decimal("20.00")


def test_gift_and_free_shipping_coupons_take_nothing_off_and_say_what_they_give(program, member):
    cake = make_product("GIFT-CAKE")
    gift = given_coupon(member, make_template("gift", program=program, kind=CouponKind.GIFT, gift_product=cake))
    shipping = given_coupon(member, make_template("ship", program=program, kind=CouponKind.FREE_SHIPPING), key="k2")
    order = place_order(member, "50.00")

    got_gift = redeem_coupon(code=gift.code, order=order, now=NOW)
    got_shipping = redeem_coupon(code=shipping.code, order=order, now=NOW)

    assert (got_gift.discount, got_gift.gift_product_id, got_gift.free_shipping) == (Decimal("0.00"), cake.pk, False)
    assert (got_shipping.discount, got_shipping.gift_product_id, got_shipping.free_shipping) == (
        Decimal("0.00"), None, True)


# Scope -----------------------------------------------------------------------------------------------------

def test_a_product_scoped_coupon_counts_only_the_lines_of_its_skus_and_categories(program, member):
    make_product("SKU-1")
    make_product("TEA-1", category="饮品")
    make_product("SKU-3")
    template = make_template(program=program, kind=CouponKind.PERCENT_OFF, percent_off=Decimal("10"),
                             min_amount=Decimal("50.00"), products=[make_product("SKU-1")], categories=["饮品"])
    coupon = given_coupon(member, template)
    lines = [{"sku": "SKU-1", "amount": "30.00"}, {"sku": "TEA-1", "amount": "20.00"},
             {"sku": "SKU-3", "amount": "50.00"}]
    other = place_order(member, "50.00", lines=[{"sku": "SKU-3", "amount": "50.00"}])
    small = place_order(member, "70.00", lines=[{"sku": "SKU-1", "amount": "30.00"},
                                                {"sku": "SKU-3", "amount": "40.00"}])

    refused("product_not_applicable", code=coupon.code, order=other)
    refused("threshold_not_met", code=coupon.code, order=small)  # 30.00 in scope < 50.00
    result = redeem_coupon(code=coupon.code, order=place_order(member, "100.00", lines=lines), now=NOW)

    assert result.discount == Decimal("5.00")  # 10% of the 50.00 in scope


def test_a_coupon_is_refused_outside_its_channels_and_stores(program, member, shop):
    online = make_channel("mini", kind="mini_program")
    by_channel = given_coupon(member, make_template("chan", program=program, channels=[online]))
    by_store = given_coupon(member, make_template("store", program=program, stores=[make_store("sh-02")]), key="k2")
    order = place_order(member, "100.00")  # at store sh-01, channel pos-sh-01

    refused("channel_not_applicable", code=by_channel.code, order=order)
    refused("store_not_applicable", code=by_store.code, order=order)
    assert redeem_coupon(code=by_channel.code, order=place_order(member, "100.00", channel="mini"),
                         now=NOW).discount == Decimal("10.00")


def test_a_brand_coupon_is_refused_in_another_brands_store(program, member, shop):
    coupon = given_coupon(member, make_template("brand-b", brand=make_brand("brand-b")))

    refused("store_not_applicable", code=coupon.code, order=place_order(member, "100.00"))


# Owner, state and validity ----------------------------------------------------------------------------------

def test_redeeming_again_for_the_same_order_returns_the_same_result_and_another_order_is_refused(program, member):
    coupon = given_coupon(member, make_template(program=program))
    order = place_order(member, "100.00")
    first = redeem_coupon(code=coupon.code, order=order, now=NOW)

    again = redeem_coupon(code=coupon.code.lower(), order=order.pk, now=NOW + DAY)

    assert (again.discount, again.order_id, again.replayed, first.replayed) == (Decimal("10.00"), order.pk, True, False)
    assert Coupon.objects.get(pk=coupon.pk).redeemed_at == NOW
    refused("coupon_redeemed", code=coupon.code, order=place_order(member, "100.00"))


def test_only_the_owner_can_redeem_a_coupon(program, member):
    coupon = given_coupon(member, make_template(program=program))
    stranger = make_member(name="李雷")

    refused("not_owner", code=coupon.code, order=place_order(stranger, "100.00"))
    refused("not_owner", code=coupon.code, order=place_order(member, "100.00"), member=stranger)
    assert Coupon.objects.get(pk=coupon.pk).state == CouponState.ISSUED


def test_unknown_codes_and_orders_are_not_found(program, member):
    coupon = given_coupon(member, make_template(program=program))
    with pytest.raises(NotFound) as caught:
        redeem_coupon(code="NOPE", order=place_order(member, "10.00"), now=NOW)
    assert caught.value.code == "coupon_not_found"
    with pytest.raises(NotFound) as caught:
        redeem_coupon(code=coupon.code, order=999_999, now=NOW)
    assert caught.value.code == "order_not_found"


def test_a_coupon_is_redeemable_only_inside_its_window(program, member):
    template = make_template(program=program, valid_from=NOW + DAY, valid_until=NOW + 10 * DAY)
    coupon = given_coupon(member, template)
    assert (coupon.valid_from, coupon.valid_until) == (NOW + DAY, NOW + 10 * DAY)

    refused("coupon_not_started", code=coupon.code, order=place_order(member, "100.00"))
    with pytest.raises(Conflict) as caught:
        redeem_coupon(code=coupon.code, order=place_order(member, "100.00"), now=NOW + 10 * DAY)
    assert caught.value.code == "coupon_expired"


def test_a_days_after_issue_coupon_is_valid_from_its_issue_for_that_many_days(program, member):
    template = make_template(program=program, validity=Validity.DAYS, valid_days=7)

    coupon = given_coupon(member, template, now=NOW - 3 * DAY)

    assert (coupon.issued_at, coupon.valid_from, coupon.valid_until) == (NOW - 3 * DAY, NOW - 3 * DAY, NOW + 4 * DAY)


def test_a_closed_order_takes_no_coupon(program, member):
    coupon = given_coupon(member, make_template(program=program))
    order = set_status(place_order(member, "100.00"), "closed")

    refused("order_closed", code=coupon.code, order=order)


# Release and expiry --------------------------------------------------------------------------------------------

def test_closing_the_order_through_ingestion_gives_the_coupon_back(program, member):
    # Ingestion releases at the wall clock's now: the coupon stays valid well past it.
    coupon = given_coupon(member, make_template(program=program, valid_until=max(NOW, timezone.now()) + 30 * DAY))
    order = place_order(member, "100.00")
    redeem_coupon(code=coupon.code, order=order, now=NOW)

    set_status(order, "closed")

    coupon.refresh_from_db()
    assert (coupon.state, coupon.order_id, coupon.discount, coupon.redeemed_at) == (
        CouponState.ISSUED, None, None, None)
    assert coupon.released_at is not None
    assert redeem_coupon(code=coupon.code, order=place_order(member, "30.00"), now=NOW).discount == Decimal("10.00")
    assert coupon.template.__class__.objects.get(pk=coupon.template_id).issued_count == 1


def test_an_order_that_is_not_closed_keeps_its_coupon_and_a_second_release_does_nothing(program, member):
    coupon = given_coupon(member, make_template(program=program))
    order = place_order(member, "100.00")
    redeem_coupon(code=coupon.code, order=order, now=NOW)

    set_status(order, "paid")
    assert release_coupons_for_orders(order_ids=[order.pk], now=NOW).as_dict() == {"released": 0, "expired": 0}
    assert Coupon.objects.get(pk=coupon.pk).state == CouponState.REDEEMED

    order.__class__.objects.filter(pk=order.pk).update(status="closed")  # closed elsewhere, released by the API
    assert release_coupons_for_orders(order_ids=[order.pk], now=NOW).released == 1
    assert release_coupons_for_orders(order_ids=[order.pk], now=NOW).released == 0


def test_a_coupon_released_after_its_validity_expires_at_once(program, member):
    coupon = given_coupon(member, make_template(program=program, valid_until=NOW + DAY))
    order = place_order(member, "100.00")
    redeem_coupon(code=coupon.code, order=order, now=NOW)
    order.__class__.objects.filter(pk=order.pk).update(status="closed")

    result = release_coupons_for_orders(order_ids=[order.pk], now=NOW + 2 * DAY)

    assert result.as_dict() == {"released": 0, "expired": 1}
    coupon.refresh_from_db()
    assert (coupon.state, coupon.order_id, coupon.expired_at) == (CouponState.EXPIRED, None, NOW + 2 * DAY)


def test_expiry_expires_unused_coupons_past_their_window_once_and_leaves_redeemed_ones(program, member):
    template = make_template(program=program, valid_until=NOW + DAY)
    used, unused = given_coupon(member, template, "a"), given_coupon(member, template, "b")
    later = given_coupon(member, make_template("later", program=program, valid_until=NOW + 9 * DAY), "c")
    redeem_coupon(code=used.code, order=place_order(member, "50.00"), now=NOW)

    assert expire_coupons(now=NOW + DAY) == 1
    assert expire_coupons(now=NOW + DAY) == 0

    states = dict(Coupon.objects.values_list("pk", "state"))
    assert states == {used.pk: CouponState.REDEEMED, unused.pk: CouponState.EXPIRED, later.pk: CouponState.ISSUED}
    assert Coupon.objects.get(pk=unused.pk).expired_at == NOW + DAY
    assert template_counts(template) == {"issued_count": 2, "issued": 0, "redeemed": 1, "expired": 1}
    refused("coupon_expired", code=unused.code, order=place_order(member, "50.00"))


def test_the_discount_is_computed_without_writing_anything(program, member):
    template = make_template(program=program, kind=CouponKind.PERCENT_OFF, percent_off=Decimal("12.5"))

    assert coupon_discount(template, place_order(member, "33.33")) == Decimal("4.17")
    assert not Coupon.objects.exists()


def test_the_nightly_run_expires_coupons(program, member):
    from siyu.core.nightly import run_nightly

    given_coupon(member, make_template(program=program, valid_until=NOW + DAY))

    run = run_nightly(now=NOW + 2 * DAY)

    assert run.results["expire_coupons"] == 1
    assert Coupon.objects.get().state == CouponState.EXPIRED
