"""RFM scores and classes per brand: quintiles, fixed thresholds, the window, removal."""

from __future__ import annotations

from decimal import Decimal

import pytest

from siyu.analytics.models import MemberRfm, ModelChange, RfmMethod, RfmSettings
from siyu.analytics.services import recompute_rfm
from siyu.core.errors import ValidationError
from tests.analytics.conftest import NOW, brand_of, buy
from tests.factories import make_member

pytestmark = pytest.mark.django_db

COLUMNS = ("frequency", "monetary", "r_score", "f_score", "m_score", "rfm_class")


def rfm_of(member, brand) -> tuple:
    """Recency (whole days up to ``NOW``), frequency, monetary, the scores and the class."""
    row = MemberRfm.objects.get(member=member, brand=brand)
    return (row.recency_days_at(NOW), *(getattr(row, c) for c in COLUMNS))


def test_quintiles_score_each_dimension_among_the_brands_buyers(shop, other_shop):
    m1, m2, m3, m4, m5 = (make_member() for _ in range(5))
    buy(m1, shop, 5, "1000.00", refunded="100.00")
    for days in (10, 200, 300):
        buy(m2, shop, days, "50.00")
    buy(m2, other_shop, 1, "5000.00")  # another brand: not in brand A's figures
    for days in (100, 120):
        buy(m3, shop, days, "400.00")
    buy(m3, shop, 400, "9999.00")  # outside the 365-day window
    for days in (200, 210, 220, 230):
        buy(m4, shop, days, "10.00")
    buy(m4, shop, 3, "9999.00", counted=False)  # closed order: not a sale
    for days in (2, 20, 40, 60, 80):
        buy(m5, shop, days, "100.00")

    written = recompute_rfm(now=NOW)

    a = brand_of(shop)
    assert written == 6  # five buyers of brand A, one of brand B
    assert rfm_of(m1, a) == (5, 1, Decimal("900.00"), 4, 1, 5, "important_develop")
    assert rfm_of(m2, a) == (10, 3, Decimal("150.00"), 3, 3, 2, "general_value")
    assert rfm_of(m3, a) == (100, 2, Decimal("800.00"), 2, 2, 4, "important_retain")
    assert rfm_of(m4, a) == (200, 4, Decimal("40.00"), 1, 4, 1, "general_keep")
    assert rfm_of(m5, a) == (2, 5, Decimal("500.00"), 5, 5, 3, "important_value")
    assert rfm_of(m2, brand_of(other_shop)) == (1, 1, Decimal("5000.00"), 1, 1, 1, "general_retain")


def test_quintile_ties_split_by_member_id(shop):
    members = [make_member() for _ in range(7)]
    for member in members:
        buy(member, shop, 10, "100.00")

    recompute_rfm(now=NOW)

    # seven equal buyers: NTILE(5) gives the first two tiles two members each, in member id order
    scores = list(MemberRfm.objects.order_by("member_id").values_list("r_score", "f_score", "m_score"))
    assert scores == [(1, 1, 1), (1, 1, 1), (2, 2, 2), (2, 2, 2), (3, 3, 3), (4, 4, 4), (5, 5, 5)]


def test_fixed_thresholds_include_their_cut_points(shop):
    RfmSettings.objects.create(brand=brand_of(shop), method=RfmMethod.THRESHOLDS, recency_days=[7, 30, 90, 180],
                               frequency=[2, 3, 5, 8], monetary=[100, "300", 800, 2000])
    a, b, c, d, e = (make_member() for _ in range(5))
    buy(a, shop, 7, "99.99")
    buy(b, shop, 8, "50.00")
    buy(b, shop, 20, "50.00")
    for days in (90, 100, 110):
        buy(c, shop, days, "100.00")
    for days in range(181, 189):
        buy(d, shop, days, "250.00")
    for days, paid in zip((180, 181, 182, 183, 184), ("200.00", "200.00", "200.00", "100.00", "99.99"), strict=True):
        buy(e, shop, days, paid)

    recompute_rfm(now=NOW)

    brand = brand_of(shop)
    assert rfm_of(a, brand) == (7, 1, Decimal("99.99"), 5, 1, 1, "general_develop")
    assert rfm_of(b, brand) == (8, 2, Decimal("100.00"), 4, 2, 2, "general_develop")
    assert rfm_of(c, brand) == (90, 3, Decimal("300.00"), 3, 3, 3, "important_value")
    assert rfm_of(d, brand) == (181, 8, Decimal("2000.00"), 1, 5, 5, "important_keep")
    assert rfm_of(e, brand) == (180, 5, Decimal("799.99"), 2, 4, 3, "important_keep")


def test_a_member_whose_orders_left_the_window_loses_the_row_and_the_change_is_recorded(shop):
    member = make_member()
    buy(member, shop, 300, "100.00")
    recompute_rfm(now=NOW)
    brand = brand_of(shop)
    assert MemberRfm.objects.filter(member=member, brand=brand).exists()

    RfmSettings.objects.create(brand=brand, window_days=200)
    recompute_rfm(now=NOW)

    assert not MemberRfm.objects.filter(member=member).exists()
    history = list(ModelChange.objects.filter(member=member).order_by("id").values_list("kind", "old_value",
                                                                                          "new_value"))
    assert history == [("rfm", "", "general_retain"), ("rfm", "general_retain", "")]


def test_a_brand_with_unusable_thresholds_is_refused(shop):
    RfmSettings.objects.create(brand=brand_of(shop), method=RfmMethod.THRESHOLDS, recency_days=[90, 30, 7, 1],
                               frequency=[2, 3, 5, 8], monetary=[100, 300, 800, 2000])
    buy(make_member(), shop, 1)

    with pytest.raises(ValidationError) as raised:
        recompute_rfm(now=NOW)

    assert raised.value.code == "invalid_rfm_settings"
    assert raised.value.field == "recency_days"
    assert not MemberRfm.objects.exists()


def test_only_the_given_brands_are_recomputed(shop, other_shop):
    member = make_member()
    buy(member, shop, 1)
    buy(member, other_shop, 1)

    recompute_rfm(brand_ids=[brand_of(other_shop).pk], now=NOW)

    assert list(MemberRfm.objects.values_list("brand__code", flat=True)) == ["brand-b"]
