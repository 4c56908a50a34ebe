"""The footer's language select in a real browser: arrow keys do not submit it, a pointer pick does."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def language_posts(page) -> list[str]:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.post_data or "") if r.method == "POST" else None)
    return posts


def test_it_lets_a_keyboard_user_move_through_the_languages(browser_page, live_server):
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    posts = language_posts(page)
    select = page.locator("footer select#language")
    select.focus()
    page.keyboard.press("ArrowDown")
    expect(select).to_have_value("it")
    page.keyboard.press("ArrowUp")
    expect(select).to_have_value("en")
    page.keyboard.press("ArrowDown")
    expect(select).to_have_value("it")
    expect(select).to_be_focused()
    # Only the visible button applies the choice: exactly one submission, made by it.
    with page.expect_navigation():
        page.locator("footer .lang-switch__submit").press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "it")
    assert len(posts) == 1 and "language=it" in posts[0]


def test_it_applies_a_language_picked_with_the_pointer_at_once(browser_page, live_server):
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    select = page.locator("footer select#language")
    # A pointer press on the select, then the pick from its (native, unscriptable) list.
    select.dispatch_event("pointerdown")
    with page.expect_navigation():
        select.select_option("it")
    expect(page.locator("html")).to_have_attribute("lang", "it")
