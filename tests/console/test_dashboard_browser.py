"""The dashboard in a real browser: Debian's Chromium driven by Playwright against ``live_server``.

Every row is written before the browser starts (Playwright's sync API runs an event loop in this
thread, and Django refuses ORM calls from it). Screenshots of the dashboard are kept in the
directory the test prints (``SIYU_DASHBOARD_SCREENSHOTS``, default a fresh temporary directory).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import tempfile
from urllib.parse import quote

import pytest

from tests.analytics.metrics_world import Reference, build_world
from tests.console.conftest import PASSWORD
from tests.console.test_browser import CHROMIUM, browser_page

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Chromium: make browser"),
]

MAY_QUERY = "start=2026-05-01&end=2026-05-31"
MAY_REF = {"start": dt.date(2026, 5, 1), "end": dt.date(2026, 6, 1)}


@pytest.fixture(scope="module")
def shots() -> str:
    folder = os.environ.get("SIYU_DASHBOARD_SCREENSHOTS") or tempfile.mkdtemp(prefix="siyu-dashboard-")
    os.makedirs(folder, exist_ok=True)
    print(f"\ndashboard screenshots: {folder}")
    return folder


def log_in(page, live_server, superuser, next_url: str) -> None:
    page.goto(f"{live_server.url}/console/login/?next={next_url}")
    page.fill("input[name=username]", superuser.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#siyu-dashboard[data-charts-ready='1']")


CANVAS_DRAWN = """(id) => {
    const canvas = document.getElementById(id);
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
    return {painted, width: canvas.width, height: canvas.height, hasChart: !!canvas.chart};
}"""


@pytest.mark.parametrize(("locale", "language", "lang_attr"), [("zh-CN", "zh", "zh-hans"), ("en-US", "en", "en")])
def test_the_dashboard_draws_its_figures_and_charts_in_both_languages(live_server, superuser, shots, locale,
                                                                      language, lang_attr):
    build_world()
    share = Reference(**MAY_REF).member_share()
    active = Reference(**MAY_REF).contribution()["active_members"]

    with browser_page(locale, height=1600) as page:
        log_in(page, live_server, superuser, quote(f"/console/?{MAY_QUERY}", safe="/"))
        lang = page.get_attribute("html", "lang")
        sales = page.inner_text("[data-kpi=amount] .sd-kpi-value")
        members = page.inner_text("[data-kpi=active_members] .sd-kpi-value")
        share_text = page.inner_text("[data-kpi=member_share] .sd-kpi-value")
        trend = page.evaluate(CANVAS_DRAWN, "chart-trend")
        channels = page.evaluate(CANVAS_DRAWN, "chart-channels")
        heat_cells = page.locator("#cohorts td.sd-heat").count()
        rfm_link = page.get_attribute("#rfm a[data-rfm=important_value]", "href")
        page.screenshot(path=os.path.join(shots, f"dashboard-{language}.png"), full_page=True)

    assert lang == lang_attr
    assert sales == f"¥{share['amount']:,.2f}"
    assert members == f"{active:,}"
    assert share_text == f"{share['by_amount'] * 100:.1f}%"
    assert trend["hasChart"] and trend["painted"] > 1000
    assert channels["hasChart"] and channels["painted"] > 1000
    assert heat_cells >= 2  # May: M0, M1 … up to today's month
    assert rfm_link.startswith("/console/analytics/memberrfm/?rfm_class__exact=important_value")


def test_changing_a_filter_redraws_the_figures_and_a_table_exports(live_server, superuser, shots):
    from openpyxl import load_workbook

    build_world()
    store = Reference(**MAY_REF, store="sh-01")
    expected_sales = f"¥{store.member_share()['amount']:,.2f}"
    expected_channels = [(c["channel"], c["orders"]) for c in store.channel_mix()]

    with browser_page("zh-CN", height=1600) as page:
        log_in(page, live_server, superuser, quote(f"/console/?{MAY_QUERY}", safe="/"))
        before = page.inner_text("[data-kpi=amount] .sd-kpi-value")
        page.select_option("#dashboard-filters select[name=store]", "sh-01")
        page.click("#dashboard-filters button[type=submit]")
        page.wait_for_url("**store=sh-01**")
        page.wait_for_selector("#siyu-dashboard[data-charts-ready='1']")
        after = page.inner_text("[data-kpi=amount] .sd-kpi-value")
        drawn = page.evaluate(CANVAS_DRAWN, "chart-trend")
        page.screenshot(path=os.path.join(shots, "dashboard-zh-store.png"), full_page=True)
        with page.expect_download() as download:
            page.click("a[href*='channels.xlsx']")
        content = download.value.path().read_bytes()
        name = download.value.suggested_filename

    assert after == expected_sales
    assert after != before
    assert drawn["painted"] > 1000
    assert name == "channels-2026-05-01-2026-06-01.xlsx"
    rows = list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
    assert [(r[0], r[2]) for r in rows[1:]] == expected_channels


def test_the_loyalty_section_arrives_after_the_page(live_server, superuser, shots):
    from tests.analytics.loyalty_world import JUNE_1, MAY_1, LoyaltyReference, build_loyalty_world

    build_loyalty_world()
    earned = LoyaltyReference(MAY_1, JUNE_1).points()["earned"]

    with browser_page("en-US", height=1800) as page:
        log_in(page, live_server, superuser, quote(f"/console/?{MAY_QUERY}", safe="/"))
        page.wait_for_selector("#loyalty [data-kpi=loyalty_earned]")
        shown = page.inner_text("#loyalty [data-kpi=loyalty_earned] .sd-kpi-value")
        tiers = page.locator("#tiers tbody tr").count()
        page.screenshot(path=os.path.join(shots, "dashboard-loyalty-en.png"), full_page=True)

    assert shown == f"{earned:,}"
    assert tiers >= 2
