"""The Search tab in Chromium: from the header box to highlighted, filtered results."""

from __future__ import annotations

import pytest

from tests.browser.conftest import login, no_horizontal_overflow
from tests.search.factories import store

pytestmark = pytest.mark.browser


def test_it_searches_from_the_header_and_filters_on_a_375px_phone(
    phone_page, live_server, demo_user, settings
):
    store(
        demo_user,
        subject="Fattura di novembre",
        text="La fattura è allegata, perché scade a breve.",
        attachments=(("fattura-novembre.pdf", "application/pdf", b"%PDF"),),
    )
    store(demo_user, subject="Sollecito fattura", text="Nessun allegato qui.")
    page = phone_page
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    header = page.locator("form.global-search")
    header.locator("input[name=q]").fill("perche")
    header.locator("button[type=submit]").click()
    page.wait_for_url("**/search/?q=perche")
    hits = page.locator(".search-hit")
    assert hits.count() == 1
    assert hits.first.locator("mark").first.inner_text().lower() == "perché"
    assert no_horizontal_overflow(page) is True

    page.locator("#id_q").fill("fattura")
    page.locator(".search-filters summary").click()
    page.get_by_label("Has attachments").check()
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**has_attachment=on**")
    assert [t.strip() for t in page.locator(".search-hit__subject").all_inner_texts()] == [
        "Fattura di novembre"
    ]
    assert no_horizontal_overflow(page) is True


def test_it_puts_the_cursor_in_the_search_box_on_slash(browser_page, live_server, demo_user, settings):
    store(demo_user, subject="Verbale", text="riunione")
    login(browser_page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    browser_page.goto(f"{live_server.url}/search/?q=riunione")
    browser_page.locator("body").click(position={"x": 5, "y": 300})
    browser_page.keyboard.press("/")
    assert browser_page.evaluate("document.activeElement.id") == "id_q"
