"""Compose and reader details found by QA: labelled link input, attach icon, phone delivery table."""

from __future__ import annotations

import pytest

from tests.browser.conftest import login, no_horizontal_overflow
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


# How many line boxes the text of each matching element takes (words broken mid-way → more than one).
TEXT_LINES = """els => els.map(el => {
    const range = document.createRange();
    range.selectNodeContents(el);
    return new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top))).size;
})"""
ADDRESS_LINES = """(row, address) => {
    const walker = document.createTreeWalker(row, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const at = node.data.indexOf(address);
        if (at < 0) continue;
        const range = document.createRange();
        range.setStart(node, at);
        range.setEnd(node, at + address.length);
        return new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top))).size;
    }
    return 0;
}"""


def test_it_keeps_the_delivery_table_readable_on_a_375px_phone(phone_page, live_server, alice):
    from django.conf import settings

    from pecmail.mail.models import Delivery, Folder, Message
    from tests.browser.conftest import no_horizontal_overflow
    from tests.mail.ui_factories import store

    bob = f"bob@{settings.PEC_DOMAIN}"
    carol = f"carol.verdi@{settings.PEC_DOMAIN}"
    sent = store(
        alice,
        role=Folder.Role.SENT,
        sender=alice.from_header,
        to=f"{bob}, {carol}",
        subject="Fattura 42",
        fields={"kind": Message.Kind.SUBMITTED},
    )
    Delivery.objects.create(message=sent, recipient=bob, state=Delivery.State.DELIVERED)
    Delivery.objects.create(message=sent, recipient=carol, state=Delivery.State.QUEUED)
    page = phone_page
    login(page, live_server, alice.address, PASSWORD)
    page.context.add_cookies([{"name": "django_language", "value": "it", "url": live_server.url}])
    page.goto(f"{live_server.url}/messages/{sent.pk}/")
    table = page.locator("table.delivery-table")
    table.wait_for()
    assert no_horizontal_overflow(page) is True
    headers = table.locator("thead th")
    assert headers.first.inner_text() == "Destinatario"
    assert headers.evaluate_all(TEXT_LINES) == [1, 1, 1, 1]
    for address in (bob, carol):
        row = table.locator(f'tr.delivery[data-recipient="{address}"]')
        assert row.evaluate(ADDRESS_LINES, address) == 1
        assert row.locator("th").evaluate("th => th.scrollWidth <= th.clientWidth") is True
    states = table.locator("td .state")
    assert states.evaluate_all(TEXT_LINES) == [1, 1]


def test_the_sidebar_shows_the_space_used_and_its_warning_on_a_phone(phone_page, live_server, alice):
    from pecmail.mail import services
    from pecmail.mail.models import Mailbox

    raw = b"From: someone@example.test\r\nSubject: Grande\r\n\r\n" + b"x" * 4000 + b"\r\n"
    message = services.message_store(mailbox=alice, raw=raw)
    Mailbox.objects.filter(pk=alice.pk).update(quota_bytes=message.size + 200)
    page = phone_page
    login(page, live_server, alice.address, PASSWORD)
    page.goto(f"{live_server.url}/messages/")
    meter = page.get_by_label("Space used")
    assert meter.is_visible()
    assert int(meter.get_attribute("value")) >= 90
    warning = page.locator(".mailbox-space-warning")
    assert warning.is_visible() and "nearly full" in warning.inner_text()
    assert no_horizontal_overflow(page)
