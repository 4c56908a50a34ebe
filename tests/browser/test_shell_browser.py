import pytest

from tests.browser.conftest import login, no_horizontal_overflow

pytestmark = pytest.mark.browser

TABS = ["Messages", "Contacts", "Calendar", "Tasks", "Search", "Options"]


def test_it_logs_in_through_the_form_and_shows_six_tabs_on_a_desktop(
    browser_page, live_server, demo_user, settings
):
    login(browser_page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    nav = browser_page.locator("nav.tabs")
    for name in TABS:
        assert nav.get_by_role("link", name=name, exact=True).is_visible() is True
    assert nav.locator("[aria-current=page]").inner_text().strip() == "Messages"
    assert no_horizontal_overflow(browser_page) is True


def test_it_shows_every_tab_on_a_375px_phone_without_horizontal_overflow(
    phone_page, live_server, demo_user, settings
):
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


def test_it_is_keyboard_reachable_from_a_skip_link(browser_page, live_server, demo_user, settings):
    login(browser_page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    # A freshly loaded page, so the first Tab starts from the top of the document (under load the
    # redirect after login may still be settling when the key is pressed).
    browser_page.goto(f"{live_server.url}/messages/")
    browser_page.wait_for_load_state("load")
    browser_page.keyboard.press("Tab")
    focused = browser_page.evaluate("document.activeElement.className")
    assert focused == "skip-link"
    assert browser_page.locator(".skip-link").is_visible() is True
    browser_page.keyboard.press("Enter")
    assert browser_page.evaluate("document.activeElement.id") == "main"
    # Tabbing on from the top reaches the six tabs in order.
    browser_page.evaluate("document.activeElement.blur()")
    browser_page.goto(f"{live_server.url}/contacts/")
    names = []
    for _ in range(8):
        browser_page.keyboard.press("Tab")
        names.append(browser_page.evaluate("document.activeElement.textContent.trim()"))
    assert names[2:] == TABS  # after the skip link and the brand


def test_it_switches_to_italian_from_the_footer(phone_page, live_server, demo_user, settings):
    login(phone_page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    # Picked without a pointer (as a keyboard user would), the language applies with "Change".
    phone_page.locator("#language").select_option("it")
    with phone_page.expect_navigation():
        phone_page.locator(".lang-switch__submit").click()
    assert phone_page.locator("html").get_attribute("lang") == "it"
    nav = phone_page.locator("nav.tabs")
    for name in ("Messaggi", "Contatti", "Calendario", "Attività", "Cerca", "Opzioni"):
        assert nav.get_by_role("link", name=name, exact=True).count() == 1
    assert no_horizontal_overflow(phone_page) is True


def test_it_sends_the_global_search_to_the_search_tab(browser_page, live_server, demo_user, settings):
    login(browser_page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    browser_page.locator("#global-search-q").fill("fattura marzo")
    browser_page.locator("#global-search-q").press("Enter")
    browser_page.wait_for_url("**/search/?q=fattura+marzo")
    assert browser_page.locator("nav.tabs [aria-current=page]").inner_text().strip() == "Search"
