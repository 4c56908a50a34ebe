"""Compose in the browser: autosave, drag & drop, contact suggestions, list shortcuts."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from pecmail.mail.models import Draft
from tests.browser.conftest import login
from tests.conftest import PASSWORD, make_mailbox
from tests.mail.ui_factories import store

pytestmark = pytest.mark.browser


@pytest.fixture
def alice(transactional_db):
    return make_mailbox("alice", "Alice Rossi")


def test_it_autosaves_the_draft_every_thirty_seconds(browser_page, live_server, alice):
    page = browser_page
    login(page, live_server, alice.address, PASSWORD)
    # A fake clock: the 30-second timer is advanced, never waited for.
    page.clock.install()
    page.goto(f"{live_server.url}/messages/compose/")
    page.get_by_label("Subject", exact=True).fill("Written, not saved")
    assert Draft.objects.filter(mailbox=alice).exists() is False
    page.clock.run_for(31_000)
    expect(page.locator("[data-autosave-status]")).to_contain_text("Draft saved at")
    draft = Draft.objects.get(mailbox=alice)
    assert draft.subject == "Written, not saved"
    expect(page).to_have_url(re.compile(rf"/messages/drafts/{draft.pk}/$"))
    # Nothing changed since: the next tick saves nothing new.
    page.get_by_label("Subject", exact=True).fill("Changed")
    page.clock.run_for(31_000)
    expect(page.locator("[data-autosave-status]")).to_contain_text("Draft saved at")
    draft.refresh_from_db()
    assert draft.subject == "Changed"
    assert Draft.objects.filter(mailbox=alice).count() == 1


def test_it_uploads_dropped_files_with_progress(browser_page, live_server, alice):
    page = browser_page
    login(page, live_server, alice.address, PASSWORD)
    page.goto(f"{live_server.url}/messages/compose/")
    page.locator("[data-dropzone]").evaluate(
        """zone => {
            const data = new DataTransfer();
            data.items.add(new File(["%PDF-1.4 one"], "one.pdf", {type: "application/pdf"}));
            data.items.add(new File(["hello"], "two.txt", {type: "text/plain"}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }"""
    )
    items = page.locator("[data-attachment-list] li[data-size]")
    expect(items).to_have_count(2)
    expect(page.locator("[data-attachment-list]")).to_contain_text("one.pdf")
    expect(page.locator("[data-attachment-list]")).to_contain_text("two.txt")
    draft = Draft.objects.get(mailbox=alice)
    assert sorted(draft.attachments.values_list("filename", flat=True)) == ["one.pdf", "two.txt"]
    expect(page.locator("[data-size-current]")).to_contain_text("× 1")
    items.first.get_by_role("button").click()
    expect(items).to_have_count(1)


def test_it_suggests_contacts_while_typing_an_address(browser_page, live_server, alice):
    from pecmail.contacts import services as contacts

    contacts.contact_add_from_address(owner=alice.owner, address="dario@pec.example.it", name="Dario Neri")
    page = browser_page
    login(page, live_server, alice.address, PASSWORD)
    page.goto(f"{live_server.url}/messages/compose/")
    page.get_by_label("To", exact=True).press_sequentially("dar")
    option = page.locator("#address-suggestions option")
    expect(option.first).to_have_attribute("value", re.compile(r"dario@pec\.example\.it"))


def test_it_moves_through_the_list_with_j_k_and_opens_with_enter(browser_page, live_server, alice):
    import datetime as dt

    store(alice, subject="Older one", date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    store(alice, subject="Newer one", text="n", date=dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    page = browser_page
    login(page, live_server, alice.address, PASSWORD)
    # The shortcuts live in a deferred script: wait until it has run.
    page.wait_for_load_state("load")
    page.locator("body").press("j")
    expect(page.locator(".msg-row.current")).to_contain_text("Newer one")
    page.keyboard.press("j")
    expect(page.locator(".msg-row.current")).to_contain_text("Older one")
    page.keyboard.press("k")
    expect(page.locator(".msg-row.current")).to_contain_text("Newer one")
    page.keyboard.press("Enter")
    expect(page.locator("#msg-subject")).to_contain_text("Newer one")
    page.wait_for_load_state("load")
    page.keyboard.press("r")
    page.wait_for_url(re.compile(r"/reply/$"))
    expect(page.get_by_label("Subject", exact=True)).to_have_value("Re: Newer one")
    page.go_back()
    page.keyboard.press("#")
    expect(page.locator(".flash")).to_contain_text("Message moved to the Trash.")
    page.wait_for_load_state("load")
    page.keyboard.press("/")
    expect(page.locator("#mail-search-q")).to_be_focused()


def test_it_fits_the_list_and_the_reading_pane_on_a_phone(phone_page, live_server, alice):
    from tests.browser.conftest import no_horizontal_overflow

    message = store(
        alice,
        subject="A very long subject " * 8,
        sender="Someone With A Long Name <someone.with.a.very.long.address@pec.example.it>",
        html="<table width='900'><tr><td>" + "wide " * 200 + "</td></tr></table>",
        attachments=[("a-file-with-a-very-long-name-" * 4 + ".pdf", "application/pdf", b"%PDF-1.4")],
    )
    page = phone_page
    login(page, live_server, alice.address, PASSWORD)
    expect(page.locator(".msg-row")).to_have_count(1)
    assert no_horizontal_overflow(page) is True
    page.goto(f"{live_server.url}/messages/{message.pk}/")
    expect(page.locator("iframe.message-frame")).to_be_visible()
    assert no_horizontal_overflow(page) is True


PICKER_LABEL = "el => getComputedStyle(el, '::before').content.replace(/^\"|\"$/g, '')"


def test_it_names_the_font_and_size_choices_in_italian(browser_page, live_server, alice):
    from pecmail.mail.views.compose import quill_available

    if not quill_available():
        pytest.skip("Quill is not vendored (make frontend)")
    page = browser_page
    login(page, live_server, alice.address, PASSWORD)
    page.context.add_cookies([{"name": "django_language", "value": "it", "url": live_server.url}])
    page.goto(f"{live_server.url}/messages/compose/")
    size = page.locator(".ql-toolbar .ql-picker.ql-size")
    font = page.locator(".ql-toolbar .ql-picker.ql-font")
    expect(size.locator(".ql-picker-label")).to_have_attribute("data-label", "Normale")
    assert size.locator(".ql-picker-label").evaluate(PICKER_LABEL) == "Normale"
    assert font.locator(".ql-picker-label").evaluate(PICKER_LABEL) == "Senza grazie"
    sizes = [item.evaluate(PICKER_LABEL) for item in size.locator(".ql-picker-item").all()]
    fonts = [item.evaluate(PICKER_LABEL) for item in font.locator(".ql-picker-item").all()]
    assert sizes == ["Piccolo", "Normale", "Grande", "Enorme"]
    assert fonts == ["Senza grazie", "Con grazie", "Monospaziato"]
    # Choosing one shows its Italian name on the picker itself.
    size.locator(".ql-picker-label").click()
    size.locator(".ql-picker-item[data-value='28px']").click()
    assert size.locator(".ql-picker-label").evaluate(PICKER_LABEL) == "Enorme"
