"""The dashboard's loyalty section: loaded after the page (htmx) for the page's filters, the
figures of the period with their change, the tier table linking to each tier's members, the
exports; absent when no loyalty program exists."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from tests.analytics.loyalty_world import JUNE_1, MAY_1, LoyaltyReference, build_loyalty_world
from tests.console.test_dashboard import kpi, login

pytestmark = pytest.mark.django_db

MAY = {"start": "2026-05-01", "end": "2026-05-31"}
SECTION = "/console/analytics/loyalty-section/"


def test_the_dashboard_asks_for_the_section_with_its_filters(world, superuser):
    html = login(superuser).get("/console/", {**MAY, "brand": "brand-b"}).content.decode()

    assert f'hx-get="{SECTION}?start=2026-05-01&amp;end=2026-05-31&amp;brand=brand-b"' in html
    assert 'data-kpi="loyalty_earned"' not in html  # the ledger's sums come with the section


@pytest.fixture
def world(db):
    return build_loyalty_world()


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_loyalty_section_shows_the_figures_of_the_period(world, superuser, language):
    expected = LoyaltyReference(MAY_1, JUNE_1)
    points, now, coupons, sales = expected.points(), expected.balances(), expected.coupons(), expected.coupon_sales()

    response = login(superuser, language).get(SECTION, MAY)

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="loyalty"' in html and 'id="tiers"' in html
    assert kpi(html, "loyalty_earned") == str(points["earned"])
    assert kpi(html, "loyalty_redeemed") == str(points["redeemed"])
    assert kpi(html, "loyalty_expired") == str(points["expired"])
    assert kpi(html, "loyalty_reversed") == str(points["reversed"])
    assert kpi(html, "loyalty_net_change") == str(points["net_change"])
    assert kpi(html, "loyalty_active_members") == str(points["active_members"])
    assert kpi(html, "loyalty_outstanding") == str(now["outstanding"])
    assert kpi(html, "loyalty_members_with_points") == str(now["members_with_points"])
    assert kpi(html, "loyalty_coupons_issued") == str(coupons["issued"])
    assert kpi(html, "loyalty_coupons_redeemed") == str(coupons["redeemed"])
    assert kpi(html, "loyalty_redemption_rate") == str(coupons["redemption_rate"])
    assert kpi(html, "loyalty_coupon_sales") == str(sales["amount"])
    assert f"{points['earned']:,}" in html
    assert f"¥{sales['amount']:,.2f}" in html
    assert f"{coupons['redemption_rate'] * 100:.1f}%" in html
    for program, tiers in expected.tiers().items():
        for tier, members in tiers.items():
            assert f'data-tier="{program}:{tier}" data-members="{members}"' in html
    assert "/console/loyalty/membertier/?program__id__exact=" in html


def test_the_section_names_its_figures_and_their_change_in_english(world, superuser):
    now, previous = LoyaltyReference(MAY_1, JUNE_1).points(), LoyaltyReference(MAY_1, JUNE_1).previous().points()

    html = login(superuser, "en").get(SECTION, MAY).content.decode()

    for label in ("Points earned", "Points redeemed", "Points expired", "Active point users",
                  "Points outstanding (liability)", "Coupon redemption rate", "Coupon-driven sales",
                  "Members per tier (会员等级分布)"):
        assert label in html
    change = (Decimal(now["earned"]) - previous["earned"]) / previous["earned"] * 100
    assert change > 0
    card = html[html.index('data-kpi="loyalty_earned"'):html.index('data-kpi="loyalty_redeemed"')]
    assert f"▲ +{change:,.1f}%" in card


def test_a_brand_filter_narrows_the_section(world, superuser):
    expected = LoyaltyReference(MAY_1, JUNE_1, brand="brand-b")

    html = login(superuser).get(SECTION, {**MAY, "brand": "brand-b"}).content.decode()

    assert kpi(html, "loyalty_earned") == str(expected.points()["earned"])
    assert kpi(html, "loyalty_outstanding") == str(expected.balances()["outstanding"])
    assert 'data-tier="vip:' not in html


def test_the_loyalty_tables_export(world, superuser):
    client = login(superuser)

    figures = client.get("/console/analytics/export/loyalty.csv", MAY)
    tiers = client.get("/console/analytics/export/tiers.xlsx", MAY)

    rows = list(csv.reader(io.StringIO(figures.content.decode("utf-8-sig"))))
    assert rows[1] == ["points earned", str(LoyaltyReference(MAY_1, JUNE_1).points()["earned"]),
                       str(LoyaltyReference(MAY_1, JUNE_1).previous().points()["earned"])]
    assert tiers.status_code == 200 and tiers.content[:2] == b"PK"


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_without_a_loyalty_program_there_is_no_section(shop, superuser, language):
    client = login(superuser, language)
    html = client.get("/console/", MAY).content.decode()
    section = client.get(SECTION, MAY)

    assert 'id="kpis"' in html
    assert SECTION not in html
    assert section.status_code == 200 and 'id="loyalty"' not in section.content.decode()


def test_a_negative_figure_that_rises_reads_as_up():
    from siyu.console.dashboard import _change

    assert _change(50, -100) == {"up": True, "down": False, "text": "+150.0%"}
    assert _change(-150, -100) == {"up": False, "down": True, "text": "-50.0%"}
