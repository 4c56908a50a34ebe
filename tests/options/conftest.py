"""Fixtures of the Options tests: the provider identity (shared with the Messages tests) and a PEC sender."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.utils import timezone, translation

from pecmail.mail import services as mail_services
from pecmail.mail.models import Folder, Message
from tests.browser.conftest import _playwright, browser_page, demo_user, phone_page  # noqa: F401 - reused
from tests.mail.conftest import _provider_dir, provider  # noqa: F401 - fixtures reused as they are

DOMAIN = django_settings.PEC_DOMAIN


@pytest.fixture(autouse=True)
def _reset_locale():
    """Pages in Italian or another time zone must not leak into the next test's thread state."""
    yield
    translation.deactivate()
    timezone.deactivate()


@pytest.fixture
def send_pec(provider, django_capture_on_commit_callbacks):  # noqa: F811
    """Submit a PEC and run everything the commits enqueue: acceptance, delivery, rules, notices."""

    def run(*, sender, to, subject="Fattura 42", body="In allegato la fattura."):
        with django_capture_on_commit_callbacks(execute=True):
            sent = mail_services.message_submit(
                mailbox=sender,
                to=[to] if isinstance(to, str) else to,
                cc=[],
                subject=subject,
                body_text=body,
                body_html=None,
                attachments=[],
            )
        sent.refresh_from_db()
        return sent

    return run


def inbox(mailbox):
    return Message.objects.filter(mailbox=mailbox, folder__role=Folder.Role.INBOX).order_by("id")


def certified_in(mailbox):
    return Message.objects.filter(mailbox=mailbox, kind=Message.Kind.CERTIFIED).order_by("id")
