"""The console in a real browser: Debian's Chromium driven by Playwright against ``live_server``.

Every row a test needs is written before the browser starts: Playwright's sync API runs an
event loop in this thread, and Django refuses ORM calls from a thread with a running loop.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.console.conftest import PASSWORD

CHROMIUM = os.environ.get("SIYU_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
#: Where the zh-hans console index is captured for a look by a person (``/tmp`` on Linux).
SCREENSHOT = os.environ.get("SIYU_CONSOLE_SCREENSHOT", os.path.join(tempfile.gettempdir(), "console-zh.png"))

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Chromium: make browser"),
]

SIDEBAR_GROUPS = {
    "zh-CN": ["会员中心", "交易", "行为事件", "组织架构", "集成"],
    "en-US": ["Member center", "Commerce", "Events", "Organisation", "Integrations"],
}


@contextmanager
def browser_page(locale: str, *, height: int = 900) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale=locale, viewport={"width": 1440, "height": height})
            page = context.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


@pytest.mark.parametrize(("locale", "texts", "absent"), [
    ("zh-CN", ["用户名", "密码", "私域", "欢迎回到"], "Username"),
    ("en-US", ["Username", "Password", "Siyu", "Welcome back to"], "用户名"),
])
def test_the_login_page_speaks_the_browsers_language(live_server, locale, texts, absent):
    with browser_page(locale) as page:
        page.goto(f"{live_server.url}/console/login/")
        visible = page.inner_text("body")
        lang = page.get_attribute("html", "lang")

    for text in texts:
        assert text in visible
    assert absent not in visible
    assert lang == ("zh-hans" if locale == "zh-CN" else "en")


def test_the_language_can_be_switched_on_the_login_page(live_server):
    with browser_page("zh-CN") as page:
        page.goto(f"{live_server.url}/console/login/")
        page.click("#login-languages button[lang=en]")
        page.wait_for_selector("text=Username")
        visible = page.inner_text("body")

    assert "Welcome back to" in visible


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_a_superuser_logs_in_and_sees_the_sidebar_groups(live_server, superuser, locale):
    with browser_page(locale, height=1500) as page:
        page.goto(f"{live_server.url}/console/login/")
        page.fill("input[name=username]", superuser.username)
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/console/")
        page.wait_for_load_state("networkidle")
        sidebar = page.inner_text("#nav-sidebar")
        import_link = page.get_attribute("a[href='/console/import/']", "href")
        if locale == "zh-CN":
            page.screenshot(path=SCREENSHOT)

    for group in SIDEBAR_GROUPS[locale]:
        assert group in sidebar
    assert import_link == "/console/import/"


def test_the_segment_builder_counts_live_and_saves_the_tree(live_server, superuser, shop):
    from siyu.segments.models import Segment

    with browser_page("zh-CN", height=1200) as page:
        page.goto(f"{live_server.url}/console/login/?next=/console/segment-builder/")
        page.fill("input[name=username]", superuser.username)
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#preview-count[data-count='5']")  # every active member

        first = page.locator("#rule-tree [data-path='all[0]']")
        first.locator("select").nth(1).select_option("store")
        page.locator("#rule-tree [data-path='all[0]'] select").nth(3).select_option("sh-01")
        page.wait_for_selector("#preview-count[data-count='3']")

        add_label = page.inner_text("#rule-tree > fieldset > div:last-child [data-action=add-condition]")
        page.click("#rule-tree > fieldset > div:last-child [data-action=add-condition]")
        page.wait_for_selector("#preview-error[data-field='all[1].value']")  # an empty city is refused
        invalid = page.get_attribute("#rule-tree [data-invalid]", "data-path")
        page.locator("#rule-tree [data-path='all[1]'] input[type=text]").fill("北京")
        page.wait_for_selector("#preview-count[data-count='0']")  # every member lives in 上海
        page.locator("#rule-tree [data-path='all[1]'] input[type=checkbox]").click()  # re-renders the tree
        page.wait_for_selector("#preview-count[data-count='3']")
        sql = page.text_content("#preview-sql")  # inside a closed <details>
        page.screenshot(path=SCREENSHOT.replace(".png", "-segment-builder.png"))

        page.fill("input[name=name]", "上海店非北京")
        page.fill("input[name=code]", "sh-not-bj")
        page.click("#segment-form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/console/segment-builder/edit/sh-not-bj/")
        saved_message = page.inner_text("body")

    assert add_label == "+ 添加条件"
    assert invalid == "all[1]"
    assert "sh-01" in sql
    assert "3" in saved_message and "上海店非北京" in saved_message
    segment = Segment.objects.get(code="sh-not-bj")
    assert segment.rule == {"all": [{"attr": "store", "op": "eq", "value": "sh-01"},
                                    {"not": {"attr": "city", "op": "eq", "value": "北京"}}]}
    assert segment.size == 3
