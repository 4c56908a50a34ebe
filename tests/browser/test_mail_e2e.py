"""The first journey: Alice sends a certified message, watches the receipts; Bob reads it."""

from __future__ import annotations

import os
import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from pecmail.mail.models import Delivery, Message
from tests.browser.conftest import login, no_horizontal_overflow
from tests.conftest import PASSWORD, make_mailbox
from tests.mail.conftest import _provider_dir, provider  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

DOMAIN = settings.PEC_DOMAIN
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def people(transactional_db, provider):  # noqa: F811 - the imported fixture
    return {
        "alice": make_mailbox("alice", "Alice Rossi"),
        "bob": make_mailbox("bob", "Bob Bianchi"),
        "carol": make_mailbox("carol", "Carol Verdi"),
    }


def require_quill() -> None:
    """The journey types rich text: Quill must be vendored (``make frontend``)."""
    from pecmail.mail.views.compose import quill_available

    if quill_available():
        return
    message = "static/vendor/quill is missing: run `make frontend`"
    if os.environ.get("PECMAIL_REQUIRE_BROWSER") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def watch_console(page) -> list[str]:
    errors: list[str] = []

    def on_console(msg) -> None:
        # The browser asks for /favicon.ico on its own; the app has none.
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"{msg.text} at {msg.location.get('url')}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/**")


def compose(page, *, to: str, cc: str = "", subject: str) -> None:
    page.get_by_role("link", name="New message").click()
    page.wait_for_url("**/messages/compose/")
    page.get_by_label("To", exact=True).fill(to)
    if cc:
        page.get_by_label("Cc", exact=True).fill(cc)
    page.get_by_label("Subject", exact=True).fill(subject)


def test_it_sends_a_certified_message_and_bob_reads_it(browser_page, live_server, people):
    require_quill()
    page = browser_page
    errors = watch_console(page)
    alice, bob = people["alice"], people["bob"]
    login(page, live_server, alice.address, PASSWORD)
    compose(page, to=bob.address, cc=people["carol"].address, subject="Fattura 42")
    page.get_by_label("Priority", exact=True).check()
    editor = page.locator("#editor .ql-editor")
    expect(editor).to_be_visible()
    editor.click()
    page.keyboard.type("Gentile Bob, ")
    page.keyboard.press("Control+b")
    page.keyboard.type("importo dovuto")
    page.keyboard.press("Control+b")
    page.keyboard.type(".")
    page.get_by_label("Attach").set_input_files(
        [{"name": "fattura.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    expect(page.locator("[data-attachment-list] li[data-size]")).to_have_count(1)
    expect(page.locator("[data-attachment-list]")).to_contain_text("fattura.pdf")
    send = page.get_by_role("button", name="Send", exact=True)
    expect(send).to_be_enabled()
    send.click()
    page.wait_for_url(re.compile(r"/messages/\d+/$"))

    sent = Message.objects.get(mailbox=alice, kind=Message.Kind.SUBMITTED)
    # Each recipient's state at a glance, each receipt one click away.
    bob_row = page.locator(f'tr.delivery[data-recipient="{bob.address}"]')
    carol_row = page.locator(f'tr.delivery[data-recipient="{people["carol"].address}"]')
    expect(bob_row.locator(".state")).to_have_text("Delivered")
    expect(carol_row.locator(".state")).to_have_text("Delivered")
    expect(bob_row).to_contain_text("Delivery receipt (Complete)")
    expect(carol_row).to_contain_text("Delivery receipt (Synthetic)")
    receipts = page.locator(".receipt-list")
    expect(receipts).to_contain_text("Acceptance receipt")
    expect(receipts.locator(".receipt-avvenuta-consegna")).to_have_count(2)
    assert Delivery.objects.filter(message=sent, state=Delivery.State.DELIVERED).count() == 2
    bob_row.locator(".receipt-link a").click()
    expect(page.locator(".certified")).to_contain_text(bob.address)
    sign_out(page)

    login(page, live_server, bob.address, PASSWORD)
    row = page.locator(".msg-row", has_text="Fattura 42")
    expect(row.locator(".mark.priority")).to_have_count(1)
    expect(row.locator(".kind")).to_have_text("Certified message")
    row.locator(".msg-link").click()
    expect(page.locator(".badge.priority-high")).to_have_text("High priority")
    certified = page.locator(".certified")
    expect(certified).to_contain_text("Certified data")
    expect(certified).to_contain_text(alice.address)
    expect(certified).to_contain_text(bob.address)
    expect(certified.locator(".pec-id")).not_to_be_empty()
    expect(certified.locator(".sig-ok")).to_be_visible()
    frame = page.frame_locator("iframe.message-frame")
    expect(frame.locator("strong")).to_have_text("importo dovuto")
    with page.expect_download() as download:
        page.locator(".attachments").get_by_role("link", name=re.compile("fattura.pdf")).click()
    assert download.value.suggested_filename == "fattura.pdf"
    with open(download.value.path(), "rb") as handle:
        assert handle.read() == PDF
    assert errors == []


def test_it_marks_a_missing_local_mailbox_not_delivered_with_the_notice(browser_page, live_server, people):
    require_quill()
    page = browser_page
    login(page, live_server, people["alice"].address, PASSWORD)
    ghost = f"ghost@{DOMAIN}"
    compose(page, to=ghost, subject="Nobody home")
    page.locator("#editor .ql-editor").click()
    page.keyboard.type("Hello?")
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_url(re.compile(r"/messages/\d+/$"))
    row = page.locator(f'tr.delivery[data-recipient="{ghost}"]')
    expect(row.locator(".state")).to_have_text("Not delivered")
    expect(row).to_contain_text("Non-delivery notice")
    row.locator(".receipt-link a").click()
    expect(page.locator(".certified")).to_contain_text("no-dest")
    expect(page.locator(".attachments")).to_contain_text("daticert.xml")


def test_it_validates_addresses_as_you_type_and_keeps_the_draft(browser_page, live_server, people):
    page = browser_page
    login(page, live_server, people["alice"].address, PASSWORD)
    compose(page, to="bob@, ", subject="Draft in progress")
    to = page.get_by_label("To", exact=True)
    expect(to).to_have_attribute("aria-invalid", "true")
    to.fill(people["bob"].address)
    expect(to).to_have_attribute("aria-invalid", "false")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(r"/messages/drafts/\d+/$"))
    expect(page.get_by_label("Subject", exact=True)).to_have_value("Draft in progress")


def test_it_composes_full_screen_on_a_phone(phone_page, live_server, people):
    page = phone_page
    login(page, live_server, people["alice"].address, PASSWORD)
    assert no_horizontal_overflow(page) is True
    page.get_by_role("link", name="New message").click()
    page.wait_for_url("**/messages/compose/")
    expect(page.locator(".mail-sidebar")).to_be_hidden()
    for label in ("To", "Cc", "Subject", "Priority", "Confidential"):
        expect(page.get_by_label(label, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible()
    assert no_horizontal_overflow(page) is True


def test_it_lists_the_shortcuts_under_the_question_mark(browser_page, live_server, people):
    page = browser_page
    login(page, live_server, people["alice"].address, PASSWORD)
    # The shortcuts live in a deferred script: wait until it has run.
    page.wait_for_load_state("load")
    page.locator("body").press("?")
    dialog = page.locator("#shortcut-help")
    expect(dialog).to_be_visible()
    for key in ("j", "k", "Enter", "c", "r", "#", "/"):
        expect(dialog.locator("kbd", has_text=key).first).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    page.keyboard.press("c")
    page.wait_for_url("**/messages/compose/")


def test_the_delivery_section_fills_in_without_a_reload_as_receipts_arrive(
    browser_page, live_server, people, monkeypatch
):
    """Sent while the worker is busy: the page shows the wait, then the receipts on their own."""
    from pecmail.mail import pipeline, services, tasks

    alice, bob = people["alice"], people["bob"]
    with monkeypatch.context() as held:  # the worker has not picked it up yet
        held.setattr(tasks.message_accept, "delay_on_commit", lambda *args, **kwargs: None)
        sent = services.message_submit(
            mailbox=alice,
            to=[bob.address],
            cc=[],
            subject="Attesa",
            body_text="Testo.",
            body_html=None,
            attachments=[],
        )
    page = browser_page
    errors = watch_console(page)
    login(page, live_server, alice.address, PASSWORD)
    page.goto(f"{live_server.url}/messages/{sent.pk}/")
    section = page.locator("section.deliveries")
    expect(section).to_contain_text("Waiting for acceptance")
    assert section.get_attribute("data-poll-url")
    pipeline.message_accept(message_id=sent.pk)  # the worker's turn (local delivery follows its commit)
    expect(section.locator(".state-delivered")).to_have_count(1, timeout=15_000)
    expect(section).to_contain_text("Acceptance receipt")
    expect(section).to_contain_text("Delivery receipt")
    assert page.url.endswith(f"/messages/{sent.pk}/")  # no reload, no navigation
    expect(section).not_to_have_attribute("data-poll-url", re.compile(".*"))
    assert errors == []
