"""Compose and reader details found by QA: labelled link input, attach icon, phone delivery table."""

from __future__ import annotations

import pytest

from tests.browser.conftest import login
from tests.conftest import PASSWORD, make_mailbox

pytestmark = pytest.mark.browser


@pytest.fixture
def alice(transactional_db):
    return make_mailbox("alice", "Alice Rossi")


def test_it_labels_the_editor_link_input_in_italian(browser_page, live_server, alice):
    from pecmail.mail.views.compose import quill_available

    if not quill_available():
        pytest.skip("Quill is not vendored (make frontend)")
    page = browser_page
    login(page, live_server, alice.address, PASSWORD)
    page.context.add_cookies([{"name": "django_language", "value": "it", "url": live_server.url}])
    page.goto(f"{live_server.url}/messages/compose/")
    page.wait_for_selector(".ql-toolbar")
    link_input = page.locator("#editor input[data-link]")
    assert link_input.count() == 1
    assert link_input.get_attribute("aria-label") == "Indirizzo del collegamento"


def test_it_loads_the_attach_icon_image(browser_page, live_server, alice):
    page = browser_page
    login(page, live_server, alice.address, PASSWORD)
    page.goto(f"{live_server.url}/messages/compose/")
    icon = page.locator("label[for=id_attach] img.attach-icon")
    icon.wait_for()
    assert icon.evaluate("img => img.complete && img.naturalWidth > 0") is True
