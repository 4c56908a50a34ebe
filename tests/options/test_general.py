"""General parameters: each one saved through the page and seen taking effect where it is used."""

from __future__ import annotations

import email
import email.policy
import email.utils
import zoneinfo

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import formats, timezone

from pecmail.mail import services as mail_services
from pecmail.mail import storage
from pecmail.mail.models import Folder, Mailbox, Message
from pecmail.options import selectors
from pecmail.options.middleware import UserPreferencesMiddleware
from pecmail.options.models import Preferences
from pecmail.transport.services import inbound_admission
from tests.conftest import PASSWORD

FORM = {
    "display_name": "Alice Rossi",
    "accept_ordinary_mail": "1",
    "signature": "",
    "language": "",
    "time_zone": "",
    "page_size": "50",
    "receipt_type": "completa",
    "reading_pane": "right",
    "receipts": "grouped",
}


def save(client, **changes):
    return client.post(reverse("options:index"), {**FORM, **changes})


def ordinary_raw(subject: str, n: int = 0) -> bytes:
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "mario@example.com"
    msg["To"] = "alice@pec.localhost"
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(timezone.now())
    msg["Message-ID"] = email.utils.make_msgid(idstring=str(n))
    msg.set_content("testo")
    return msg.as_bytes()


def test_it_shows_the_form_with_the_current_values(alice_client):
    response = alice_client.get(reverse("options:index"))
    assert response.status_code == 200
    assert response.context["tab"] == "options"
    page = response.content.decode()
    assert 'value="Alice Rossi"' in page
    assert 'for="id_time_zone"' in page


def test_it_puts_the_new_display_name_in_the_from_of_the_next_message(alice_client, alice):
    assert save(alice_client, display_name="Studio Legale Rossi").status_code == 302
    alice.refresh_from_db()
    sent = mail_services.message_submit(
        mailbox=alice,
        to=["bob@pec.localhost"],
        cc=[],
        subject="Ciao",
        body_text="x",
        body_html=None,
        attachments=[],
    )
    raw = email.message_from_bytes(storage.raw_get(sent.raw_sha256))
    assert email.utils.parseaddr(raw["From"]) == ("Studio Legale Rossi", alice.address)
    assert sent.from_name == "Studio Legale Rossi"


def test_it_refuses_ordinary_mail_when_asked(alice_client, alice, provider):
    save(alice_client, accept_ordinary_mail="0")
    alice.refresh_from_db()
    assert alice.accept_ordinary_mail is False
    assert inbound_admission(raw=ordinary_raw("spam"), rcpt_tos=[alice.address]).accept is False
    save(alice_client, accept_ordinary_mail="1")
    assert Mailbox.objects.get(pk=alice.pk).accept_ordinary_mail is True
    assert inbound_admission(raw=ordinary_raw("ok"), rcpt_tos=[alice.address]).accept is True


def test_it_offers_the_signature_to_compose(alice_client, alice):
    save(alice_client, signature="Avv. Alice Rossi\nVia Roma 1")
    assert selectors.signature_for(alice) == ("Avv. Alice Rossi\nVia Roma 1", False)
    response = alice_client.get(reverse("mail:compose"))
    assert "Avv. Alice Rossi" in response.context["form"].initial["body_text"]


def test_it_stores_an_html_signature_sanitised(alice_client, alice):
    save(
        alice_client,
        signature='<b>Alice</b><script>alert(1)</script><img src=x onerror="alert(1)">',
        signature_is_html="on",
    )
    text, is_html = selectors.signature_for(alice)
    assert is_html is True
    assert "<b>Alice</b>" in text
    assert "script" not in text
    assert "onerror" not in text


def test_it_starts_compose_with_the_default_receipt_type(alice_client, alice):
    save(alice_client, receipt_type="sintetica")
    assert selectors.default_receipt_type_for(alice.owner) == "sintetica"
    response = alice_client.get(reverse("mail:compose"))
    assert response.context["form"].initial["receipt_type"] == "sintetica"


def test_it_shows_as_many_messages_per_page_as_asked(alice_client, alice):
    for n in range(12):
        mail_services.message_store(mailbox=alice, raw=ordinary_raw(f"Messaggio {n}", n))
    save(alice_client, page_size="10")
    assert selectors.page_size_for(alice.owner) == 10
    response = alice_client.get(reverse("mail:index"))
    assert len(response.context["rows"]) == 10


def test_it_stores_the_reading_pane_position(alice_client, alice):
    save(alice_client, reading_pane="bottom")
    assert selectors.reading_pane_for(alice.owner) == "bottom"


def test_it_applies_the_language_at_once_and_at_the_next_login(client, alice):
    client.force_login(alice.owner)
    response = save(client, language="it")
    assert response.cookies["django_language"].value == "it"
    page = client.get(reverse("options:index")).content.decode()
    assert '<html lang="it">' in page
    # A new browser (no cookie) gets the language when the user logs in.
    client.logout()
    client.cookies.clear()
    response = client.post(reverse("account_login"), {"login": alice.address, "password": PASSWORD})
    assert response.status_code == 302
    assert response.cookies["django_language"].value == "it"
    assert '<html lang="it">' in client.get(reverse("options:index")).content.decode()


def test_it_activates_the_users_time_zone(alice_client, alice):
    save(alice_client, time_zone="America/New_York")
    assert Preferences.objects.get(user=alice.owner).time_zone == "America/New_York"
    seen = {}

    def view(request):
        seen["zone"] = timezone.get_current_timezone_name()
        from django.http import HttpResponse

        return HttpResponse()

    request = RequestFactory().get("/")
    request.session = alice_client.session
    UserPreferencesMiddleware(view)(request)
    assert seen["zone"] == "America/New_York"
    timezone.deactivate()


def test_it_restores_the_time_zone_at_login(client, alice):
    Preferences.objects.create(user=alice.owner, time_zone="Asia/Tokyo")
    client.force_login(alice.owner)
    assert client.session["pecmail_timezone"] == "Asia/Tokyo"
    response = client.get(reverse("options:security"))
    logins = response.context["logins"]
    assert logins
    tokyo = timezone.localtime(logins[0].at, zoneinfo.ZoneInfo("Asia/Tokyo"))
    rome = timezone.localtime(logins[0].at, zoneinfo.ZoneInfo("Europe/Rome"))
    page = response.content.decode()
    assert formats.date_format(tokyo, "SHORT_DATETIME_FORMAT") in page
    assert formats.date_format(rome, "SHORT_DATETIME_FORMAT") not in page


def test_it_files_receipts_in_a_receipts_folder_when_asked(alice_client, alice, bob, send_pec):
    save(alice_client, receipts="folder")
    sent = send_pec(sender=alice, to=bob.address)
    receipts = list(sent.receipts.all())
    assert {r.kind for r in receipts} == {Message.Kind.ACCEPTANCE, Message.Kind.DELIVERY}
    for receipt in receipts:
        assert receipt.folder.name == "Receipts"
        assert receipt.folder.role == Folder.Role.USER


def test_it_keeps_receipts_in_the_inbox_by_default(alice, bob, send_pec):
    sent = send_pec(sender=alice, to=bob.address)
    assert {r.folder.role for r in sent.receipts.all()} == {Folder.Role.INBOX}


def test_it_rejects_invalid_values(alice_client, alice):
    response = save(alice_client, page_size="7", time_zone="Mars/Olympus", receipt_type="x")
    assert response.status_code == 422
    assert Preferences.objects.filter(user=alice.owner).exists() is False


@pytest.mark.parametrize("method", ["put", "delete"])
def test_it_refuses_other_methods(alice_client, method):
    assert getattr(alice_client, method)(reverse("options:index")).status_code == 405


def test_it_asks_anonymous_users_to_log_in(client):
    assert client.get(reverse("options:index")).status_code == 302
    assert client.post(reverse("options:index"), FORM).status_code == 302


def test_it_needs_the_csrf_token(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice.owner)
    assert client.post(reverse("options:index"), {**FORM, "display_name": "Hacked"}).status_code == 403
    alice.refresh_from_db()
    assert alice.display_name == "Alice Rossi"
