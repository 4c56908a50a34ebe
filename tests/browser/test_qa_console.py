"""A new user's first pages load without a console error (a 404, a CSP violation, a script error)."""

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.browser

PAGES = ["/contacts/", "/calendar/", "/tasks/", "/options/", "/accounts/password/change/", "/accounts/2fa/"]


def test_it_loads_the_login_page_and_every_tab_without_console_errors(
    browser_page, live_server, demo_user, settings
):
    errors: list[str] = []
    browser_page.on(
        "console", lambda m: errors.append(f"{browser_page.url}: {m.text}") if m.type == "error" else None
    )
    browser_page.on("pageerror", lambda e: errors.append(f"{browser_page.url}: {e}"))
    browser_page.goto(f"{live_server.url}/accounts/login/")
    browser_page.wait_for_load_state("networkidle")
    login(browser_page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    for path in PAGES:
        browser_page.goto(f"{live_server.url}{path}")
        browser_page.wait_for_load_state("networkidle")
    assert errors == []


def test_it_names_the_account_on_password_forms_for_password_managers(
    browser_page, live_server, demo_user, settings
):
    hints: list[str] = []
    browser_page.on("console", lambda m: hints.append(m.text) if "username" in m.text else None)
    login(browser_page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    for path in ("/accounts/password/change/", "/accounts/reauthenticate/"):
        browser_page.goto(f"{live_server.url}{path}")
        browser_page.wait_for_load_state("networkidle")
        field = browser_page.locator("main form input[autocomplete=username]")
        assert field.get_attribute("value") == demo_user.address
        assert field.get_attribute("name") is None
    assert hints == []
