"""Tasks in a real browser: quick add, tick done, find it under Done."""

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.browser.conftest import login, no_horizontal_overflow

pytestmark = pytest.mark.browser

TITLE = "Rispondere all'Agenzia — è urgente"


def add_and_tick(page, live_server):
    page.goto(f"{live_server.url}/tasks/")
    page.get_by_label("New task").fill(TITLE)
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".task-list .gw-title")).to_have_text([TITLE])
    page.get_by_role("button", name=f"Mark “{TITLE}” done").click()
    expect(page.locator(".gw-empty")).to_have_text("Nothing due today.")
    page.get_by_role("link", name="Done", exact=True).click()
    page.wait_for_url("**/tasks/done/")
    expect(page.locator(".task-done .gw-title")).to_have_text([TITLE])
    expect(page.get_by_role("button", name=f"Reopen “{TITLE}”")).to_have_attribute("aria-pressed", "true")


def test_it_creates_a_task_and_ticks_it_done(browser_page, live_server, demo_user):
    login(browser_page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    add_and_tick(browser_page, live_server)


def test_it_creates_a_task_and_ticks_it_done_on_a_phone(phone_page, live_server, demo_user):
    login(phone_page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    add_and_tick(phone_page, live_server)
    assert no_horizontal_overflow(phone_page) is True
    phone_page.goto(f"{live_server.url}/tasks/new/")
    assert no_horizontal_overflow(phone_page) is True
