"""The Options pages in a real browser: a rule made with the seed's labels, every page on a phone."""

from __future__ import annotations

import pytest
from django.conf import settings
from playwright.sync_api import expect

from pecmail.options.models import Rule
from tests.browser.conftest import login, no_horizontal_overflow

pytestmark = pytest.mark.browser

PAGES = ["/options/", "/options/notifications/", "/options/rules/", "/options/security/"]


def test_it_adds_a_forward_rule_with_the_seed_labels(browser_page, live_server, demo_user):
    page = browser_page
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    page.get_by_role("link", name="Options").click()
    page.get_by_role("link", name="Message rules").click()
    form = page.locator("#new-rule")
    expect(form.get_by_role("heading", name="New rule")).to_be_visible()
    form.get_by_label("Rule name").fill("Copia in ufficio")
    # The match and text fields show only for a condition that needs them (static/js/options.js).
    expect(form.get_by_label("Text")).to_be_hidden()
    form.get_by_label("Select").select_option(label="Subject")
    expect(form.get_by_label("Text")).to_be_visible()
    form.get_by_label("Select").select_option(label="All messages")
    expect(form.get_by_label("Text")).to_be_hidden()
    form.get_by_label("Forward to address").fill("ufficio@example.com")
    form.get_by_label("Active").check()
    form.get_by_role("button", name="Add rule").click()
    page.wait_for_url("**/options/rules/")
    expect(page.locator(".options-rules")).to_contain_text("Copia in ufficio")
    rule = Rule.objects.get(mailbox=demo_user)
    assert (rule.field, rule.forward_to, rule.active) == ("all", "ufficio@example.com", True)
    assert violations == []


def test_every_options_page_fits_a_phone_and_works_with_the_keyboard(phone_page, live_server, demo_user):
    page = phone_page
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    for path in PAGES:
        page.goto(f"{live_server.url}{path}")
        assert no_horizontal_overflow(page) is True, path
    page.goto(f"{live_server.url}/options/")
    page.get_by_label("Display name").fill("Studio Rossi")
    page.get_by_label("Display name").press("Enter")
    page.wait_for_url("**/options/")
    expect(page.get_by_text("Options saved.")).to_be_visible()
    demo_user.refresh_from_db()
    assert demo_user.display_name == "Studio Rossi"
