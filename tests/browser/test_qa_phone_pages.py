"""A new user's pages on a 375px phone: none of them may scroll sideways."""

import pytest

from tests.browser.conftest import login, no_horizontal_overflow

pytestmark = pytest.mark.browser

PAGES = [
    "/accounts/password/change/",
    "/accounts/2fa/",
    "/accounts/sessions/",
    "/contacts/",
    "/contacts/new/",
    "/contacts/groups/",
    "/contacts/import/",
    "/calendar/",
    "/calendar/list/",
    "/calendar/events/new/",
    "/calendar/calendars/",
    "/calendar/settings/",
    "/tasks/",
    "/tasks/new/",
    "/tasks/lists/",
    "/options/",
    "/options/notifications/",
    "/options/rules/",
    "/options/security/",
]


def test_it_keeps_every_account_and_groupware_page_within_a_375px_phone(
    phone_page, live_server, demo_user, settings
):
    login(phone_page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    wide = []
    for path in PAGES:
        response = phone_page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        if no_horizontal_overflow(phone_page) is not True:
            wide.append(path)
    assert wide == []
