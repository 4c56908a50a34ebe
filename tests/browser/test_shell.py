import pytest

from tests.browser.conftest import login, no_horizontal_overflow

pytestmark = pytest.mark.browser

TABS = ["Messages", "Contacts", "Calendar", "Tasks", "Search", "Options"]


def test_it_logs_in_through_the_form_and_shows_six_tabs_on_a_desktop(browser_page, live_server, demo_user, settings):
    login(browser_page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    nav = browser_page.locator("nav.tabs")
    for name in TABS:
        assert nav.get_by_role("link", name=name, exact=True).is_visible() is True
    assert nav.locator("[aria-current=page]").inner_text().strip() == "Messages"
    assert no_horizontal_overflow(browser_page) is True


def test_it_shows_every_tab_on_a_375px_phone_without_horizontal_overflow(phone_page, live_server, demo_user, settings):
    login(phone_page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    nav = phone_page.locator("nav.tabs")
    for name in TABS:
        link = nav.get_by_role("link", name=name, exact=True)
        link.scroll_into_view_if_needed()
        assert link.is_visible() is True
    assert no_horizontal_overflow(phone_page) is True
    # Every tab is reachable: following the last one opens its page.
    nav.get_by_role("link", name="Options", exact=True).click()
    phone_page.wait_for_url("**/options/")
    assert phone_page.locator("nav.tabs [aria-current=page]").inner_text().strip() == "Options"
    assert no_horizontal_overflow(phone_page) is True
