"""The account pages work in a real browser under the strict CSP (no violations, QR code shown)."""

import time

import pytest

from tests.browser.conftest import login, no_horizontal_overflow
from tests.foundation.test_login import totp

pytestmark = pytest.mark.browser

RECORD_CSP_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
"""


def violations(page) -> list[str]:
    return page.evaluate("window.__csp")


def test_it_enrols_totp_in_the_browser_without_csp_violations(browser_page, live_server, demo_user, settings):
    # Real time runs on in the server thread: accept the neighbouring 30 s window too, so a code
    # typed just before a window boundary is not refused.
    settings.MFA_TOTP_TOLERANCE = 1
    page = browser_page
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    assert violations(page) == []
    page.goto(f"{live_server.url}/accounts/2fa/")
    page.get_by_role("link", name="Activate").click()
    # allauth asks for the password again first.
    page.locator("input[name=password]").fill(settings.PEC_DEMO_PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    qr = page.locator("img.totp-qr")
    qr.wait_for()
    assert page.evaluate("document.querySelector('img.totp-qr').naturalWidth") > 0
    assert violations(page) == []
    secret = page.locator("#authenticator_secret").input_value()
    page.locator("input[name=code]").fill(totp(secret, time.time()))
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url("**/2fa/recovery-codes/")
    codes = page.locator("#recovery_codes").input_value().split()
    assert len(codes) == 10
    assert violations(page) == []
    page.goto(f"{live_server.url}/accounts/2fa/")
    assert "Authentication using an authenticator app is active." in page.content()
    assert violations(page) == []


def test_it_shows_the_login_and_account_pages_on_a_phone(phone_page, live_server, demo_user, settings):
    page = phone_page
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    page.goto(f"{live_server.url}/accounts/login/")
    assert no_horizontal_overflow(page) is True
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    for path in ("/accounts/2fa/", "/accounts/password/change/", "/accounts/sessions/"):
        page.goto(f"{live_server.url}{path}")
        assert no_horizontal_overflow(page) is True, path
    assert violations(page) == []
