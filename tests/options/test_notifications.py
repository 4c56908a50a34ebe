"""Notices of new PEC to ordinary addresses: confirmed by a signed link, then one per new PEC."""

from __future__ import annotations

import re
import socket

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from pecmail.options import services
from pecmail.options.models import Notice, NotificationAddress
from tests.options.conftest import certified_in

HOME = "alice.home@example.com"


def confirm_link(message) -> str:
    match = re.search(r"http://testserver(/options/notifications/confirm/[^/\s]+/)", message.body)
    assert match is not None, message.body
    return match.group(1)


@pytest.fixture
def site(settings):
    settings.SITE_URL = "http://testserver"


def test_it_sends_a_confirmation_link_and_no_notice_before_the_click(
    alice_client, alice, bob, send_pec, site, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("options:notification_add"), {"address": HOME})
    assert response.status_code == 302
    entry = NotificationAddress.objects.get(user=alice.owner)
    assert entry.confirmed is False
    (confirmation,) = mail.outbox
    assert confirmation.to == [HOME]
    link = confirm_link(confirmation)
    send_pec(sender=bob, to=alice.address, subject="Prima")
    assert len(mail.outbox) == 1
    # The link shows a button; only its POST confirms.
    page = alice_client.get(link)
    assert page.status_code == 200
    entry.refresh_from_db()
    assert entry.confirmed is False
    assert alice_client.post(link).status_code == 200
    entry.refresh_from_db()
    assert entry.confirmed is True


def test_it_notifies_each_new_pec_with_sender_subject_time_and_link_but_no_content(
    alice, bob, send_pec, settings
):
    settings.SITE_URL = "https://webmail.example.it"
    NotificationAddress.objects.create(user=alice.owner, address=HOME, confirmed_at=timezone.now())
    send_pec(sender=bob, to=alice.address, subject="Diffida", body="Contenuto riservato")
    (notice,) = mail.outbox
    assert notice.to == [HOME]
    assert "bob@pec.localhost" in notice.body
    assert "Bob Bianchi" in notice.body
    assert "Diffida" in notice.body
    assert "https://webmail.example.it/" in notice.body
    assert "Contenuto riservato" not in notice.body
    assert notice.attachments == []
    (received,) = certified_in(alice)
    assert services.notices_send(message_id=received.pk) == 0
    assert len(mail.outbox) == 1
    assert Notice.objects.get(message=received).sent_at is not None


def test_it_does_not_notify_receipts(alice, bob, send_pec):
    NotificationAddress.objects.create(user=alice.owner, address=HOME, confirmed_at=timezone.now())
    send_pec(sender=alice, to=bob.address)
    assert mail.outbox == []


def test_it_writes_the_notice_in_the_users_language(alice, bob, send_pec):
    from pecmail.options.models import Preferences

    Preferences.objects.create(user=alice.owner, language="it")
    NotificationAddress.objects.create(user=alice.owner, address=HOME, confirmed_at=timezone.now())
    send_pec(sender=bob, to=alice.address)
    (notice,) = mail.outbox
    assert "Nuova PEC" in notice.subject


def test_it_refuses_a_pec_address(alice_client, alice):
    response = alice_client.post(reverse("options:notification_add"), {"address": "bob@pec.localhost"})
    assert response.status_code == 422
    assert NotificationAddress.objects.exists() is False


def test_it_refuses_an_expired_or_forged_link(alice, client, site):
    entry = NotificationAddress.objects.create(user=alice.owner, address=HOME)
    with time_machine.travel(timezone.now() - timezone.timedelta(days=4)):
        token = services.notification_token(entry)
    link = reverse("options:notify_confirm", args=[token])
    assert client.post(link).status_code == 400
    forged = reverse("options:notify_confirm", args=[services.notification_token(entry)[:-2] + "xx"])
    assert client.post(forged).status_code == 400
    entry.refresh_from_db()
    assert entry.confirmed is False


def test_it_sends_a_test_notice_only_to_a_confirmed_address(
    alice_client, alice, django_capture_on_commit_callbacks
):
    entry = NotificationAddress.objects.create(user=alice.owner, address=HOME)
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("options:notification_test", args=[entry.pk]))
    assert mail.outbox == []
    NotificationAddress.objects.filter(pk=entry.pk).update(confirmed_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("options:notification_test", args=[entry.pk]))
    assert response.status_code == 302
    (notice,) = mail.outbox
    assert notice.to == [HOME]
    assert "test" in notice.subject


def test_it_removes_an_address(alice_client, alice):
    entry = NotificationAddress.objects.create(user=alice.owner, address=HOME)
    assert alice_client.post(reverse("options:notification_delete", args=[entry.pk])).status_code == 302
    assert NotificationAddress.objects.exists() is False


def test_it_hides_alices_addresses_from_charlie(alice, charlie_client):
    entry = NotificationAddress.objects.create(user=alice.owner, address=HOME, confirmed_at=timezone.now())
    for name in ("notification_delete", "notification_test", "notification_resend"):
        assert charlie_client.post(reverse(f"options:{name}", args=[entry.pk])).status_code == 404
    assert HOME not in charlie_client.get(reverse("options:notifications")).content.decode()
    assert NotificationAddress.objects.filter(pk=entry.pk).exists() is True
    assert mail.outbox == []


def test_it_refuses_get_on_changes(alice_client, alice):
    entry = NotificationAddress.objects.create(user=alice.owner, address=HOME)
    assert alice_client.get(reverse("options:notification_delete", args=[entry.pk])).status_code == 405
    assert alice_client.get(reverse("options:notification_add")).status_code == 405


class Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_it_delivers_the_notice_to_a_real_smtp_server(alice, bob, send_pec, settings):
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings.MAILERS = {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": controller.port, "timeout": 10},
            }
        }
        NotificationAddress.objects.create(user=alice.owner, address=HOME, confirmed_at=timezone.now())
        send_pec(sender=bob, to=alice.address, subject="Verbale di assemblea")
    finally:
        controller.stop()
    (delivered,) = sink.messages
    assert delivered[1] == [HOME]
    assert b"Verbale di assemblea" in delivered[2]


def test_it_caps_the_number_of_addresses(alice_client, alice, settings):
    settings.PECMAIL_NOTIFY_MAX_ADDRESSES = 2
    for n in range(2):
        NotificationAddress.objects.create(user=alice.owner, address=f"a{n}@example.com")
    response = alice_client.post(reverse("options:notification_add"), {"address": "third@example.com"})
    assert response.status_code == 422
    assert "At most 2 addresses" in response.content.decode()
    assert NotificationAddress.objects.filter(user=alice.owner).count() == 2
