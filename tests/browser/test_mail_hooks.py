"""From a delivered PEC in Bob's Inbox: create an event, add the sender to contacts, on a phone too."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from playwright.sync_api import expect

from pecmail.agenda.models import Event
from pecmail.contacts.models import Contact
from pecmail.mail import services
from pecmail.mail.models import Folder, Message
from tests.browser.conftest import login, no_horizontal_overflow
from tests.conftest import PASSWORD, make_mailbox
from tests.mail.conftest import _provider_dir, provider  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

SUBJECT = "Convocazione assemblea"


@pytest.fixture
def delivered(transactional_db, provider) -> Message:  # noqa: F811 - the imported fixture
    """alice's PEC to bob, through the real pipeline (eager tasks): bob's Inbox copy."""
    alice = make_mailbox("alice", "Alice Rossi")
    bob = make_mailbox("bob", "Bob Bianchi")
    services.message_submit(
        mailbox=alice,
        to=[bob.address],
        cc=[],
        subject=SUBJECT,
        body_text="Assemblea il 3 dicembre.",
        body_html=None,
        attachments=[],
    )
    return Message.objects.get(mailbox=bob, folder__role=Folder.Role.INBOX, kind=Message.Kind.CERTIFIED)


def open_in_inbox(page, live_server, message: Message) -> None:
    login(page, live_server, message.mailbox.address, PASSWORD)
    page.goto(f"{live_server.url}/messages/")
    page.locator(".msg-row", has_text=SUBJECT).locator(".msg-link").click()
    expect(page.locator(".reader-hooks")).to_be_visible()


def test_it_creates_an_event_from_a_pec_and_shows_it_in_the_calendar(browser_page, live_server, delivered):
    page = browser_page
    open_in_inbox(page, live_server, delivered)
    page.locator(".reader-hooks").get_by_role("link", name="Create event").click()
    page.wait_for_url(f"**/calendar/from-message/{delivered.pk}/")
    expect(page.get_by_label("Title")).to_have_value(delivered.subject)
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/calendar/events/\d+/$"))

    event = Event.objects.get(message=delivered)
    start = event.start.astimezone(ZoneInfo(event.time_zone))
    page.goto(f"{live_server.url}/calendar/month/{start.year}/{start.month}/")
    cell = page.locator(f"td[data-date='{start.date().isoformat()}']")
    cell.get_by_text(delivered.subject).click()
    page.wait_for_url(re.compile(rf"/calendar/events/{event.pk}/"))
    # Linked back: from the event to the message it came from.
    page.get_by_role("link", name=delivered.subject).click()
    page.wait_for_url(f"**/messages/{delivered.pk}/")
    expect(page.locator("#msg-subject")).to_contain_text(SUBJECT)


def test_it_adds_the_original_sender_and_compose_suggests_her(browser_page, live_server, delivered):
    page = browser_page
    open_in_inbox(page, live_server, delivered)
    alice = f"alice@{settings.PEC_DOMAIN}"
    page.locator(".reader-hooks").get_by_role("button", name="Add sender to contacts").click()
    page.wait_for_url(re.compile(r"/contacts/\d+/"))
    contact = Contact.objects.get(owner=delivered.mailbox.owner)
    assert list(contact.addresses.values_list("address", flat=True)) == [alice]

    page.goto(f"{live_server.url}/messages/compose/")
    # By surname: recent correspondents match by address only, so this one is the contact.
    page.get_by_label("To", exact=True).press_sequentially("Rossi")
    options = page.locator("#address-suggestions option")
    expect(options).to_have_count(1)
    expect(options.first).to_have_attribute("value", f'"Alice Rossi" <{alice}>')


def test_it_offers_the_actions_by_keyboard_on_a_phone(phone_page, live_server, delivered):
    page = phone_page
    login(page, live_server, delivered.mailbox.address, PASSWORD)
    page.goto(f"{live_server.url}/messages/{delivered.pk}/")
    hooks = page.locator(".reader-hooks")
    add = hooks.get_by_role("button", name="Add sender to contacts")
    event = hooks.get_by_role("link", name="Create event")
    task = hooks.get_by_role("link", name="Create task")
    for control in (add, event, task):
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    assert no_horizontal_overflow(page) is True
    # Tab order reaches them one after the other, and Enter follows the link.
    add.focus()
    page.keyboard.press("Tab")
    expect(event).to_be_focused()
    page.keyboard.press("Tab")
    expect(task).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/tasks/from-message/{delivered.pk}/")
