"""The reading pane's hooks into the other tabs: add the sender to contacts, create an event or a task."""

from __future__ import annotations

import email
import html
import re

import pytest
from django.conf import settings
from django.urls import reverse

from pecmail.contacts.models import Contact
from pecmail.mail import services
from pecmail.mail.models import Folder, Message
from pecmail.mail.storage import raw_get
from tests.mail.ui_factories import store


def hooks(page: str) -> str:
    """The hooks group of a rendered reading pane."""
    start = page.index('class="reader-hooks"')
    return page[start : page.index("</div>", start)]


def hidden(section: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', section)
    assert found is not None, name
    return html.unescape(found.group(1))


@pytest.fixture
def message(alice):
    return store(alice, subject="Fattura 42", sender="Mario Rossi <mario@example.org>")


@pytest.fixture
def delivered(alice, bob, provider, django_capture_on_commit_callbacks) -> Message:
    """A PEC alice sent to bob, delivered through the real pipeline: bob's Inbox copy."""
    with django_capture_on_commit_callbacks(execute=True):
        services.message_submit(
            mailbox=alice,
            to=[bob.address],
            cc=[],
            subject="Richiesta documenti",
            body_text="Servono i documenti.",
            body_html=None,
            attachments=[],
        )
    return Message.objects.get(mailbox=bob, folder__role=Folder.Role.INBOX, kind=Message.Kind.CERTIFIED)


def test_it_offers_the_three_actions_with_their_targets_on_the_message_page(alice_client, message):
    page = alice_client.get(reverse("mail:read", args=[message.pk])).content.decode()
    section = hooks(page)
    assert f'action="{reverse("contacts:add_from_address")}"' in section
    assert 'method="post"' in section
    assert "csrfmiddlewaretoken" in section
    assert hidden(section, "address") == "mario@example.org"
    assert hidden(section, "name") == "Mario Rossi"
    assert hidden(section, "next") == reverse("mail:read", args=[message.pk])
    assert f'href="{reverse("agenda:create_from_message", args=[message.pk])}"' in section
    assert f'href="{reverse("todos:create_from_message", args=[message.pk])}"' in section
    assert ">Add sender to contacts</button>" in section
    assert ">Create event</a>" in section
    assert ">Create task</a>" in section


def test_it_offers_them_in_the_reading_pane_beside_the_list_too(alice_client, alice, message):
    inbox = Folder.objects.get(mailbox=alice, role=Folder.Role.INBOX)
    url = reverse("mail:folder", args=[inbox.pk])
    page = alice_client.get(url, {"open": message.pk}).content.decode()
    section = hooks(page[page.index('class="reader-pane"') :])
    assert hidden(section, "address") == "mario@example.org"
    # Back to the pane after an error, not to the message's own page.
    assert hidden(section, "next") == f"{url}?open={message.pk}"
    assert f'href="{reverse("agenda:create_from_message", args=[message.pk])}"' in section
    assert f'href="{reverse("todos:create_from_message", args=[message.pk])}"' in section


def test_it_names_the_original_sender_of_a_certified_envelope(bob, delivered, client):
    envelope_from = email.message_from_bytes(raw_get(delivered.raw_sha256))["From"]
    assert f"posta-certificata@{settings.PEC_DOMAIN}" in envelope_from
    client.force_login(bob.owner)
    page = client.get(reverse("mail:read", args=[delivered.pk])).content.decode()
    section = hooks(page)
    assert hidden(section, "address") == f"alice@{settings.PEC_DOMAIN}"
    assert hidden(section, "name") == "Alice Rossi"
    assert "posta-certificata" not in section
    assert f'href="{reverse("todos:create_from_message", args=[delivered.pk])}"' in section


def test_it_takes_the_sender_from_the_certified_data_over_the_envelope(alice_client, alice):
    certified = store(
        alice,
        subject="POSTA CERTIFICATA: Contratto",
        sender=f"Per conto di: bob@pec.example <posta-certificata@{settings.PEC_DOMAIN}>",
        fields={
            "kind": Message.Kind.CERTIFIED,
            "certified_data": {"daticert": {"tipo": "posta-certificata", "mittente": "bob@pec.example"}},
        },
    )
    section = hooks(alice_client.get(reverse("mail:read", args=[certified.pk])).content.decode())
    assert hidden(section, "address") == "bob@pec.example"
    # The envelope's display name belongs to the provider's address, not to bob.
    assert hidden(section, "name") == ""


def test_it_adds_the_original_sender_to_contacts_through_the_form(bob, delivered, client):
    client.force_login(bob.owner)
    page = client.get(reverse("mail:read", args=[delivered.pk])).content.decode()
    section = hooks(page)
    response = client.post(
        reverse("contacts:add_from_address"),
        {
            "address": hidden(section, "address"),
            "name": hidden(section, "name"),
            "next": hidden(section, "next"),
        },
    )
    assert response.status_code == 302
    contact = Contact.objects.get(owner=bob.owner)
    assert (contact.first_name, contact.last_name) == ("Alice", "Rossi")
    assert list(contact.addresses.values_list("address", flat=True)) == [f"alice@{settings.PEC_DOMAIN}"]


def test_it_does_not_offer_to_add_the_provider_of_a_receipt(alice, bob, delivered, client):
    client.force_login(alice.owner)
    receipt = Message.objects.get(mailbox=alice, kind=Message.Kind.DELIVERY)
    page = client.get(reverse("mail:read", args=[receipt.pk])).content.decode()
    section = hooks(page)
    assert "add_from_address" not in section and "Add sender to contacts" not in section
    assert f'href="{reverse("todos:create_from_message", args=[receipt.pk])}"' in section


def test_it_does_not_offer_to_add_oneself_from_a_sent_message(alice, bob, delivered, client):
    client.force_login(alice.owner)
    sent = Message.objects.get(mailbox=alice, kind=Message.Kind.SUBMITTED)
    section = hooks(client.get(reverse("mail:read", args=[sent.pk])).content.decode())
    assert "Add sender to contacts" not in section
    assert f'href="{reverse("agenda:create_from_message", args=[sent.pk])}"' in section


def test_it_translates_the_actions_into_italian(alice_client, message, settings):
    alice_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "it"
    page = alice_client.get(reverse("mail:read", args=[message.pk])).content.decode()
    section = hooks(page)
    assert "Aggiungi il mittente ai contatti" in section
    assert "Crea evento" in section
    assert "Crea attività" in section


def test_it_answers_404_to_charlie_for_the_targets_of_alices_message(charlie_client, message):
    for name in ("agenda:create_from_message", "todos:create_from_message", "mail:read"):
        assert charlie_client.get(reverse(name, args=[message.pk])).status_code == 404
