"""Loyalty figures against a plain-Python reference over the same rows: points earned, spent,
expired, reversed and outstanding, active point users, coupons and coupon-driven sales, tiers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from siyu.analytics.metrics import loyalty, resolve_filters
from siyu.loyalty.ledger import verify_ledger
from siyu.loyalty.models import PointsAccount
from siyu.org.models import Role
from tests.analytics.loyalty_world import JUNE_1, MAY_1, LoyaltyReference, build_loyalty_world
from tests.factories import make_brand, make_member, make_staff, make_store, make_token

pytestmark = pytest.mark.django_db

MAY = {"start": dt.date(2026, 5, 1), "end": dt.date(2026, 5, 31)}
FILTERS = [{}, {"brand": "brand-a"}, {"brand": "brand-b"}, {"store": "sh-01"}, {"region": "east"},
           {"channel": "pos-gz-01"}, {"brand": "brand-a", "region": "north"}]


@pytest.fixture
def world(db):
    return build_loyalty_world()


def filters(**codes):
    return resolve_filters(**MAY, **codes)


def reference(**codes) -> LoyaltyReference:
    return LoyaltyReference(MAY_1, JUNE_1, **codes)


@pytest.mark.parametrize("codes", FILTERS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "all")
def test_every_figure_equals_the_reference_for_the_period_and_the_one_before(world, codes):
    expected = reference(**codes)
    narrowed = filters(**codes)

    points, coupons, sales = loyalty.points(narrowed), loyalty.coupons(narrowed), loyalty.coupon_sales(narrowed)

    assert points["period"] == expected.points()
    assert points["previous"] == expected.previous().points()
    assert loyalty.balances(narrowed) == expected.balances()
    assert coupons["period"] == expected.coupons()
    assert coupons["previous"] == expected.previous().coupons()
    assert sales["period"] == expected.coupon_sales()
    assert sales["previous"] == expected.previous().coupon_sales()
    tiers = {p["program"]: {t["tier"]: t["members"] for t in p["tiers"]} for p in loyalty.tiers(narrowed)}
    assert tiers == expected.tiers()


def test_the_world_moves_points_every_way_and_the_ledger_holds(world):
    """The reference is only worth something if the world has every kind of movement in May."""
    may = reference().points()

    assert all(may[name] for name in ("earned", "redeemed", "expired", "reversed", "adjusted", "settled"))
    assert may["net_change"] == (may["earned"] - may["redeemed"] - may["expired"] - may["reversed"]
                                 + may["adjusted"] - may["settled"])
    assert verify_ledger() == (PointsAccount.objects.count(), [])


def test_a_refund_takes_back_the_points_and_what_was_spent_is_owed(world):
    bob = world.members["bob"]
    narrowed = filters(store="sh-01")

    points, balances = loyalty.points(narrowed)["period"], loyalty.balances(narrowed)

    # bob's 100-yuan order earned 100, he spent 150 of his 180, the full refund took back the 30 left
    # and recorded 70 as debt; his next 50 points paid 50 of it: 20 owed.
    assert PointsAccount.objects.get(program=world.vip, member=bob).debt == 20
    assert points["reversed"] == 30
    assert points["settled"] == 50
    assert balances["owed"] == 20


def test_points_expire_in_the_period_they_fall_due(world):
    april = loyalty.points(resolve_filters(start=dt.date(2026, 4, 1), end=dt.date(2026, 4, 30)))["period"]
    may = loyalty.points(filters())["period"]

    assert april["expired"] == reference().previous().points()["expired"] > 0
    assert may["expired"] == reference().points()["expired"] > 0


def test_an_empty_period_has_zeros_and_no_rate(world):
    empty = resolve_filters(start=dt.date(2025, 1, 1), end=dt.date(2025, 1, 31))

    points, coupons, sales = loyalty.points(empty), loyalty.coupons(empty), loyalty.coupon_sales(empty)

    assert set(points["period"].values()) == {0}
    assert coupons["period"] == {"issued": 0, "redeemed_of_issued": 0, "redemption_rate": None, "redeemed": 0}
    assert sales["period"] == {"orders": 0, "amount": Decimal("0.00")}
    # what is outstanding now does not depend on the period
    assert loyalty.balances(empty) == loyalty.balances(filters()) == reference().balances()


def test_a_member_with_no_account_counts_nowhere(world):
    store = make_store("xx-01", brand=make_brand("brand-a"))
    make_member(name="新会员", store=store)

    narrowed = filters(store="xx-01")

    assert loyalty.balances(narrowed) == {"outstanding": 0, "owed": 0, "members_with_points": 0}
    assert loyalty.points(narrowed)["period"]["active_members"] == 0
    assert all(t["members"] == 0 for p in loyalty.tiers(narrowed) for t in p["tiers"])
    assert not PointsAccount.objects.filter(member=world.members["hal"]).exists()


def test_a_brand_sees_its_programs_only(world):
    brand_b = loyalty.tiers(filters(brand="brand-b"))

    assert [p["program"] for p in brand_b] == ["all"]
    assert [p["program"] for p in loyalty.tiers(filters(brand="brand-a"))] == ["all", "vip"]


def test_no_program_no_figures(db):
    assert not loyalty.loyalty_exists()
    assert loyalty.tiers(filters()) == []
    assert loyalty.balances(filters()) == {"outstanding": 0, "owed": 0, "members_with_points": 0}


def test_the_section_costs_one_query_per_figure_group_and_one_for_the_programs(world, django_assert_num_queries):
    narrowed = filters(brand="brand-a", store="sh-01")

    with django_assert_num_queries(5):
        loyalty.summary(narrowed)


def test_the_api_serves_the_loyalty_metrics_with_their_definitions(world):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {make_token('bi', 'analytics:read')}", HTTP_ACCEPT_LANGUAGE="en")
    query = {"start": "2026-05-01", "end": "2026-05-31", "brand": "brand-a"}

    points = client.get("/api/v1/analytics/metrics/loyalty_points", query).json()
    coupons = client.get("/api/v1/analytics/metrics/loyalty_coupons", query).json()
    tiers = client.get("/api/v1/analytics/metrics/loyalty_tiers", query).json()

    expected = reference(brand="brand-a")
    assert points["value"]["period"] == expected.points()
    assert points["value"]["now"] == expected.balances()
    assert points["definition"].startswith("From the points ledger")
    assert coupons["value"]["period"]["issued"] == expected.coupons()["issued"]
    assert coupons["value"]["period"]["redemption_rate"] == str(expected.coupons()["redemption_rate"])
    assert coupons["value"]["sales"]["period"]["amount"] == str(expected.coupon_sales()["amount"])
    assert {p["program"] for p in tiers["value"]} == {"all", "vip"}


def test_a_store_managers_scope_narrows_to_the_members_of_their_store(world):
    manager = make_staff("manager-sh", role=Role.STORE_MANAGER, store=make_store("sh-01"))
    scoped = resolve_filters(**MAY, staff=manager, everyone=False)
    expected = reference(store="sh-01")

    assert loyalty.points(scoped)["period"] == expected.points()
    assert loyalty.balances(scoped) == expected.balances()
    assert loyalty.coupons(scoped)["period"] == expected.coupons()
