"""A task made from a PEC message: prefilled, linked back, then ticked done."""

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from pecmail.mail.models import Folder, Message
from pecmail.todos.models import Task
from tests.browser.conftest import login

pytestmark = pytest.mark.browser


def test_it_creates_a_task_from_a_message_and_ticks_it_done(browser_page, live_server, demo_user):
    page = browser_page
    delivered = timezone.now() - dt.timedelta(days=3)
    message = Message.objects.create(
        mailbox=demo_user,
        folder=Folder.objects.get(mailbox=demo_user, role=Folder.Role.INBOX),
        raw_sha256="0" * 64,
        subject="Richiesta integrazione documenti",
        from_address="protocollo@pec.comune.example.it",
        date=delivered,
        kind=Message.Kind.CERTIFIED,
    )
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    page.goto(f"{live_server.url}/tasks/from-message/{message.pk}/")
    expect(page.get_by_label("Title")).to_have_value("Reply: Richiesta integrazione documenti")
    due = timezone.localtime(delivered).date() + dt.timedelta(days=10)
    expect(page.get_by_label("Due date")).to_have_value(due.isoformat())
    expect(page.get_by_text("Linked message:")).to_be_visible()
    page.get_by_label("Priority").select_option("1")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/tasks/all/")
    title = "Reply: Richiesta integrazione documenti"
    expect(page.locator(".task-list .gw-title")).to_have_text([title])
    expect(page.locator(".task-list .gw-meta")).to_contain_text("from a PEC message")
    page.get_by_role("button", name=f"Mark “{title}” done").click()
    expect(page.locator(".gw-empty")).to_have_text("No open tasks.")
    task = Task.objects.get(owner=demo_user.owner)
    assert (task.message_id, task.status, task.completed_at is not None) == (
        message.pk,
        Task.Status.DONE,
        True,
    )
