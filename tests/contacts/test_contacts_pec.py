"""Certified marks from the providers index, and recent correspondents from the mail store."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone

from pecmail.certification.models import Provider, ProviderDomain
from pecmail.contacts import selectors, services
from pecmail.contacts.pec import is_pec_address
from pecmail.mail.models import Folder, Message


def index_provider(domain: str) -> None:
    provider = Provider.objects.create(name="Gestore Esempio", mail_receipt=f"posta-certificata@{domain}")
    ProviderDomain.objects.create(provider=provider, domain=domain)


def test_it_marks_addresses_at_indexed_domains_certified(alice_client, alice):
    index_provider("pec.gestore.example")
    contact = services.contact_save(
        owner=alice.owner,
        fields={"first_name": "Ada"},
        addresses=[
            {"address": "ada@pec.gestore.example", "kind": "pec"},
            {"address": "ada@altro.example", "kind": "pec"},
        ],
        phones=[],
    )
    certified = selectors.certified_addresses(addresses=list(contact.addresses.all()))
    assert certified == {"ada@pec.gestore.example"}
    page = alice_client.get(reverse("contacts:detail", args=[contact.pk])).content.decode()
    assert page.count("certified PEC") == 1


def test_it_files_an_imported_address_at_an_indexed_domain_as_pec(alice):
    index_provider("pec.gestore.example")
    assert is_pec_address("Someone@PEC.Gestore.Example") is True
    assert is_pec_address("someone@gmail.example") is False
    contact, created = services.contact_add_from_address(owner=alice.owner, address="x@pec.gestore.example")
    assert created is True
    assert list(contact.addresses.values_list("kind", flat=True)) == ["pec"]


def message(mailbox, *, sender: str, to: list[str], minutes: int) -> Message:
    return Message.objects.create(
        mailbox=mailbox,
        folder=Folder.objects.get(mailbox=mailbox, role=Folder.Role.INBOX),
        raw_sha256="0" * 64,
        from_address=sender,
        to_addresses=to,
        date=timezone.now() - dt.timedelta(minutes=minutes),
    )


def test_it_lists_recent_correspondents_newest_first_without_the_user(alice, charlie):
    message(alice, sender="old@pec.example.it", to=[alice.address], minutes=50)
    message(
        alice,
        sender=alice.address,
        to=["Nuovo Cliente <new@pec.example.it>", "old@pec.example.it"],
        minutes=5,
    )
    message(charlie, sender="secret@pec.example.it", to=[charlie.address], minutes=1)
    assert selectors.recent_correspondents(user=alice.owner) == ["new@pec.example.it", "old@pec.example.it"]


def test_it_autocompletes_recent_correspondents_not_in_contacts(alice_client, alice):
    message(alice, sender="protocollo@pec.comune.example.it", to=[alice.address], minutes=5)
    services.contact_add_from_address(
        owner=alice.owner, address="sindaco@pec.comune.example.it", name="Sindaco"
    )
    results = alice_client.get(reverse("contacts:autocomplete"), {"q": "comune"}).json()["results"]
    assert [(r["kind"], r.get("address")) for r in results] == [
        ("contact", "sindaco@pec.comune.example.it"),
        ("recent", "protocollo@pec.comune.example.it"),
    ]
