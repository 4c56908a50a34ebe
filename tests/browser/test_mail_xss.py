"""The XSS corpus, delivered as real messages and opened in Chromium.

No dialog may open, no request may leave for another host, and the message frame is an
opaque origin: the app's cookies are out of its reach.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.conftest import PASSWORD, make_mailbox
from tests.mail.test_xss import HEADER_PAYLOADS, HTML_PAYLOADS, store_corpus

pytestmark = pytest.mark.browser


def test_it_opens_every_corpus_message_without_effect(browser_page, live_server, transactional_db):
    page = browser_page
    alice = make_mailbox("alice", "Alice Rossi")
    messages = store_corpus(alice)
    assert len(messages) == len(HTML_PAYLOADS) + len(HEADER_PAYLOADS) >= 30

    # Only the app itself (live_server listens on loopback) may be reached.
    local_hosts = {"127.0.0.1", urlsplit(live_server.url).hostname}
    dialogs: list[str] = []
    escaped: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_route(route) -> None:
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith(("data:", "about:", "blob:")) or host in local_hosts:
            route.continue_()
        else:
            escaped.append(route.request.url)
            route.abort()

    page.on("dialog", on_dialog)
    page.route("**/*", on_route)
    login(page, live_server, alice.address, PASSWORD)
    app_cookies = page.evaluate("document.cookie")
    assert "csrftoken=" in app_cookies  # readable by the app page: the witness for the frame check

    for message in messages:
        page.goto(f"{live_server.url}/messages/{message.pk}/")
        frame_element = page.locator("iframe.message-frame")
        if frame_element.count():
            expect(frame_element).to_have_attribute("sandbox", "allow-popups allow-popups-to-escape-sandbox")
            frame = frame_element.element_handle().content_frame()
            frame.wait_for_load_state("load")
            # Hover and click through the content, as a reader would.
            for element in frame.locator("a, img, div, p").all()[:5]:
                # An invisible element cannot be hovered: that is fine.
                with contextlib.suppress(Exception):
                    element.hover(timeout=500)
            seen = frame.evaluate(
                "() => { try { return 'cookie:' + document.cookie; } catch (e) { return 'blocked:' + e.name; } }"
            )
            assert seen == "blocked:SecurityError", (message.subject, seen)
            assert frame.evaluate("() => window.origin") == "null"
        page.wait_for_load_state("load")

    # The list with every hostile subject and sender on one page.
    page.goto(f"{live_server.url}/messages/")
    page.wait_for_load_state("load")
    assert dialogs == []
    assert escaped == []
