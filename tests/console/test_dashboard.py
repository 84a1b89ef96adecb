"""The console's home is the operator's dashboard: exact figures, filters, data scope, exports."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.analytics.metrics_world import Reference, build_world
from tests.console.conftest import PASSWORD
from tests.factories import make_user

pytestmark = pytest.mark.django_db

MAY = {"start": "2026-05-01", "end": "2026-05-31"}
MAY_REF = {"start": dt.date(2026, 5, 1), "end": dt.date(2026, 6, 1)}


@pytest.fixture
def world(db):
    return build_world()


def login(user, language="en") -> Client:
    client = Client(headers={"Accept-Language": language})
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def boss(db):
    return get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)


def kpi(html: str, key: str) -> str:
    """The data-raw value of one KPI card."""
    marker = f'data-kpi="{key}" data-raw="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


def test_the_home_page_shows_the_kpis_of_the_period_exactly(world, boss):
    expected = Reference(**MAY_REF)
    share, parts = expected.member_share(), expected.contribution()

    response = login(boss).get("/console/", MAY)

    html = response.content.decode()
    assert response.status_code == 200
    assert kpi(html, "amount") == str(share["amount"])
    assert kpi(html, "member_share") == str(share["by_amount"])
    assert kpi(html, "active_members") == str(parts["active_members"])
    assert kpi(html, "aov") == str(parts["average_order_value"])
    assert kpi(html, "new_members") == str(expected.new_members()["new_members"])
    assert kpi(html, "repurchase") == str(expected.repurchase()["rate"])
    amount = f"¥{share['amount']:,.2f}"
    assert amount in html  # ¥ and thousands separators
    assert f"{share['by_amount'] * 100:.1f}%" in html
    assert 'id="chart-trend"' in html and "analytics/dashboard.js" in html
    assert "Cohort retention" in html and "RFM grid" in html
    before = Reference(start=dt.date(2026, 3, 31), end=MAY_REF["start"]).contribution()
    change = parts["amount"] - before["amount"]
    assert f"members' sales {'-' if change < 0 else ''}¥{abs(change):,.2f} vs the previous period" in html


def test_the_dashboard_speaks_chinese_too(world, boss):
    from django.utils import translation

    from siyu.analytics.models import RfmClass

    amount = Reference(**MAY_REF).member_share()["amount"]
    html = login(boss, "zh-hans").get("/console/", MAY).content.decode()

    assert 'lang="zh-hans"' in html
    with translation.override("zh-hans"):
        label = str(RfmClass.IMPORTANT_VALUE.label)
    assert label in html
    assert f"¥{amount:,.2f}" in html


def test_a_filter_narrows_every_figure(world, boss):
    expected = Reference(**MAY_REF, store="sh-01")

    html = login(boss).get("/console/", {**MAY, "store": "sh-01"}).content.decode()

    assert kpi(html, "amount") == str(expected.member_share()["amount"])
    assert kpi(html, "active_members") == str(expected.contribution()["active_members"])
    assert '<option value="sh-01" selected>' in html
    from siyu.org.models import Store

    store_id = Store.objects.get(code="sh-01").pk
    orders_link = (f"/console/commerce/order/?ordered_at_from=2026-05-01&amp;ordered_at_to=2026-05-31"
                   f"&amp;store__id__exact={store_id}")
    assert orders_link in html  # the figures drill down to the orders behind them


def test_the_order_list_a_kpi_links_to_holds_the_orders_counted(world, boss):
    client = login(boss)
    html = client.get("/console/", {**MAY, "store": "sh-01"}).content.decode()
    start = html.index('data-kpi="amount"')
    link = html[html.index('href="', start) + 6:html.index('"', html.index('href="', start) + 6)].replace("&amp;", "&")

    listing = client.get(link)

    assert listing.status_code == 200
    expected = Reference(**MAY_REF, store="sh-01")
    counted = [o for o in expected.orders if expected.order_ok(o)]
    assert all(f"/console/commerce/order/{o['pk']}/change/" in listing.content.decode() for o in counted)


def test_a_store_manager_sees_only_their_stores_members(world):
    user = make_user("mgr", "commerce.view_order")
    world.manager.user = user
    world.manager.save()
    expected = Reference(**MAY_REF, scope_store="sh-01")

    html = login(user).get("/console/", MAY).content.decode()

    assert kpi(html, "amount") == str(expected.member_share()["amount"])
    assert kpi(html, "active_members") == str(expected.contribution()["active_members"])
    assert expected.member_share()["amount"] != Reference(**MAY_REF).member_share()["amount"]


def test_users_who_may_not_view_orders_get_the_plain_app_list(world):
    user = make_user("clerk", "members.view_member")

    response = login(user).get("/console/", MAY)

    assert response.status_code == 200
    assert b'id="siyu-dashboard"' not in response.content
    assert login(user).get("/console/analytics/export/kpis.csv").status_code == 403
    assert login(user).get("/console/analytics/loyalty-section/").status_code == 403


def test_bad_filters_are_reported_and_dropped(world, boss):
    html = login(boss).get("/console/", {**MAY, "brand": "no-such"}).content.decode()

    assert "brand: no brand with code no-such" in html
    assert kpi(html, "amount") == str(Reference(**MAY_REF).member_share()["amount"])


def test_tables_export_to_csv_and_xlsx_with_the_same_figures(world, boss):
    from openpyxl import load_workbook

    client = login(boss)
    expected = Reference(**MAY_REF).channel_mix()

    as_csv = client.get("/console/analytics/export/channels.csv", MAY)
    as_xlsx = client.get("/console/analytics/export/channels.xlsx", MAY)

    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert rows[0][0] == "channel"
    assert [(r[0], int(r[2]), r[4]) for r in rows[1:]] == [(c["channel"], c["orders"], str(c["amount"]))
                                                           for c in expected]
    sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert [(r[0], r[2]) for r in values[1:]] == [(c["channel"], c["orders"]) for c in expected]
    assert as_xlsx["Content-Disposition"] == 'attachment; filename="channels-2026-05-01-2026-06-01.xlsx"'
    for table in ("kpis", "trend", "cohorts", "rfm", "products", "league"):
        assert client.get(f"/console/analytics/export/{table}.xlsx", MAY).status_code == 200
    assert client.get("/console/analytics/export/secrets.csv").status_code == 404
    assert client.get("/console/analytics/export/kpis.pdf").status_code == 404


def test_the_dashboard_runs_a_bounded_number_of_queries(world, boss, django_assert_max_num_queries):
    client = login(boss)
    client.get("/console/", MAY)  # warm the session and content types

    with django_assert_max_num_queries(40):
        client.get("/console/", MAY)


def test_one_click_on_the_rfm_grid_makes_a_segment_of_that_class(world, boss):
    from siyu.analytics.services import recompute_models
    from siyu.segments.models import Segment

    recompute_models(now=dt.datetime(2026, 6, 10, 4, 0, tzinfo=dt.UTC))
    client = login(boss)
    html = client.get("/console/", {**MAY, "brand": "brand-a"}).content.decode()
    assert 'data-make-segment="important_value"' in html

    response = client.post("/console/analytics/rfm-segment/", {"rfm_class": "general_retain", "brand": "brand-a"})
    again = client.post("/console/analytics/rfm-segment/", {"rfm_class": "general_retain", "brand": "brand-a"})

    assert response.status_code == 302
    assert response["Location"] == "/console/segment-builder/edit/rfm-brand-a-general-retain/"
    assert again["Location"] == response["Location"]
    segment = Segment.objects.get(code="rfm-brand-a-general-retain")  # the second click updated it
    assert segment.rule == {"model": "rfm_class", "op": "eq", "value": "general_retain", "brand": "brand-a"}
    from siyu.analytics.models import MemberRfm

    assert segment.size == MemberRfm.objects.filter(brand__code="brand-a", rfm_class="general_retain").count() > 0
    assert client.post("/console/analytics/rfm-segment/", {"rfm_class": "nonsense"}).status_code == 404


def test_making_a_segment_needs_the_permission(world):
    user = make_user("viewer", "commerce.view_order")

    html = login(user).get("/console/", MAY).content.decode()

    assert "data-make-segment" not in html
    assert login(user).post("/console/analytics/rfm-segment/", {"rfm_class": "general_retain"}).status_code == 403
