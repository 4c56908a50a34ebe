"""A task made from a delivered PEC in Bob's Inbox: prefilled, linked back, then ticked done."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from pecmail.mail import services as mail_services
from pecmail.mail.models import Folder, Message
from pecmail.todos.models import Task
from tests.browser.conftest import login
from tests.conftest import PASSWORD, make_mailbox
from tests.mail.conftest import _provider_dir, provider  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

SUBJECT = "Richiesta integrazione documenti"


@pytest.fixture
def delivered(transactional_db, provider) -> Message:  # noqa: F811 - the imported fixture
    """alice's PEC to bob, through the real pipeline (eager tasks): bob's Inbox copy."""
    alice = make_mailbox("alice", "Alice Rossi")
    bob = make_mailbox("bob", "Bob Bianchi")
    mail_services.message_submit(
        mailbox=alice,
        to=[bob.address],
        cc=[],
        subject=SUBJECT,
        body_text="Servono i documenti.",
        body_html=None,
        attachments=[],
    )
    return Message.objects.get(mailbox=bob, folder__role=Folder.Role.INBOX, kind=Message.Kind.CERTIFIED)


def test_it_creates_a_task_from_a_message_and_ticks_it_done(browser_page, live_server, delivered):
    page = browser_page
    bob = delivered.mailbox
    login(page, live_server, bob.address, PASSWORD)
    page.goto(f"{live_server.url}/messages/")
    page.locator(".msg-row", has_text=SUBJECT).locator(".msg-link").click()
    page.locator(".reader-hooks").get_by_role("link", name="Create task").click()
    page.wait_for_url(f"**/tasks/from-message/{delivered.pk}/")
    expect(page.get_by_label("Title")).to_have_value(f"Reply: {SUBJECT}")
    due = timezone.localtime(delivered.date).date() + dt.timedelta(days=10)
    expect(page.get_by_label("Due date")).to_have_value(due.isoformat())
    expect(page.get_by_text("Linked message:")).to_be_visible()
    page.get_by_label("Priority").select_option("1")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/tasks/all/")
    title = f"Reply: {SUBJECT}"
    expect(page.locator(".task-list .gw-title")).to_have_text([title])
    expect(page.locator(".task-list .gw-meta")).to_contain_text("from a PEC message")
    page.get_by_role("button", name=f"Mark “{title}” done").click()
    expect(page.locator(".gw-empty")).to_have_text("No open tasks.")
    task = Task.objects.get(owner=bob.owner)
    assert (task.message_id, task.status, task.completed_at is not None) == (
        delivered.pk,
        Task.Status.DONE,
        True,
    )
