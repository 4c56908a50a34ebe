"""Contacts in a real browser: create through the form, find in the list and by search."""

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.browser.conftest import login, no_horizontal_overflow

pytestmark = pytest.mark.browser

DETAIL = re.compile(r".*/contacts/\d+/$")


def test_it_creates_a_contact_through_the_form_and_finds_it(browser_page, live_server, demo_user):
    page = browser_page
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    page.goto(f"{live_server.url}/contacts/")
    page.get_by_role("link", name="New contact").click()
    page.get_by_label("First name").fill("Niccolò")
    page.get_by_label("Last name").fill("Ferrè")
    page.get_by_label("Company").fill("Studio Ferrè")
    page.locator("#id_addr-0-address").fill(f"niccolo@{settings.PEC_DOMAIN}")
    # A second address row comes from the "add another" button (static/js/contacts.js).
    page.get_by_role("button", name="Add another address").click()
    page.locator("#id_addr-1-kind").select_option("email")
    page.locator("#id_addr-1-address").fill("niccolo@example.com")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(DETAIL)
    assert page.locator("h1").inner_text().strip() == "Niccolò Ferrè"
    assert page.get_by_text("certified PEC").is_visible() is True
    assert page.get_by_text("niccolo@example.com").is_visible() is True

    page.goto(f"{live_server.url}/contacts/")
    page.get_by_label("Search contacts").fill("ferrè")
    page.get_by_label("Search contacts").press("Enter")
    page.wait_for_url("**/contacts/?q=*")
    expect(page.locator(".contact-list .gw-title")).to_have_text(["Niccolò Ferrè"])
    page.goto(f"{live_server.url}/contacts/?q=nobody")
    assert page.locator(".contact-list").count() == 0
    # The letter index leads to the contact too.
    page.goto(f"{live_server.url}/contacts/")
    page.locator(".gw-letters").get_by_role("link", name="F", exact=True).click()
    page.wait_for_url("**/contacts/?letter=F*")
    expect(page.locator(".contact-list .gw-title")).to_have_text(["Niccolò Ferrè"])


def test_it_works_on_a_phone_with_the_keyboard(phone_page, live_server, demo_user):
    page = phone_page
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    page.goto(f"{live_server.url}/contacts/new/")
    assert no_horizontal_overflow(page) is True
    page.get_by_label("First name").focus()
    page.keyboard.type("Anna")
    page.keyboard.press("Tab")
    page.keyboard.type("Neri")
    page.locator("#id_addr-0-address").fill("anna@example.com")
    page.get_by_role("button", name="Save").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(DETAIL)
    assert no_horizontal_overflow(page) is True
    page.goto(f"{live_server.url}/contacts/")
    assert page.locator(".contact-list .gw-title").all_inner_texts() == ["Anna Neri"]
    assert no_horizontal_overflow(page) is True
