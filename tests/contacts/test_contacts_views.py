"""Contacts pages: ownership, CSRF-protected writes, import preview, export, autocomplete."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from pecmail.contacts import services
from pecmail.contacts.models import Contact, ContactAddress, ContactGroup

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def make_contact(owner, last="Rossi", address="mario@pec.example.it", kind="pec", **fields):
    return services.contact_save(
        owner=owner,
        fields={"first_name": "Mario", "last_name": last, **fields},
        addresses=[{"address": address, "kind": kind}] if address else [],
        phones=[{"kind": "mobile", "number": "333 111"}],
    )


def contact_post(**overrides):
    data = {
        "first_name": "Giulia",
        "last_name": "Verdi",
        "company": "Verdi S.p.A.",
        "addr-TOTAL_FORMS": "2",
        "addr-INITIAL_FORMS": "0",
        "addr-0-kind": "pec",
        "addr-0-address": f"giulia@{settings.PEC_DOMAIN}",
        "addr-1-kind": "email",
        "addr-1-address": "giulia@example.com",
        "tel-TOTAL_FORMS": "1",
        "tel-INITIAL_FORMS": "0",
        "tel-0-kind": "mobile",
        "tel-0-number": "+39 333 2",
    }
    data.update(overrides)
    return data


@pytest.fixture
def contact(alice):
    return make_contact(alice.owner)


@pytest.fixture
def group(alice):
    return services.group_create(owner=alice.owner, name="Clienti")


def test_it_creates_a_contact_and_marks_the_pec_at_our_domain_certified(alice_client, alice):
    response = alice_client.post(reverse("contacts:new"), contact_post())
    contact = Contact.objects.get(owner=alice.owner)
    assert response.status_code == 302
    assert response["Location"] == reverse("contacts:detail", args=[contact.pk])
    assert sorted(contact.addresses.values_list("address", "kind")) == [
        ("giulia@example.com", "email"),
        (f"giulia@{settings.PEC_DOMAIN}", "pec"),
    ]
    page = alice_client.get(response["Location"]).content.decode()
    assert "certified PEC" in page
    assert "Verdi S.p.A." in page


def test_it_does_not_mark_a_pec_address_at_an_unknown_domain_certified(alice_client, alice):
    contact = make_contact(alice.owner, address="x@unknown.example")
    page = alice_client.get(reverse("contacts:detail", args=[contact.pk])).content.decode()
    assert "certified PEC" not in page
    assert "not in the PEC providers index" in page


def test_it_refuses_an_address_that_belongs_to_another_contact(alice_client, alice, contact):
    data = contact_post(**{"addr-0-address": "mario@pec.example.it"})
    response = alice_client.post(reverse("contacts:new"), data)
    assert response.status_code == 422
    assert "already belongs to Mario Rossi" in response.content.decode()
    assert Contact.objects.filter(owner=alice.owner).count() == 1


def test_it_refuses_a_javascript_website(alice_client, alice):
    response = alice_client.post(reverse("contacts:new"), contact_post(website="javascript:alert(1)"))
    assert response.status_code == 422
    assert Contact.objects.filter(owner=alice.owner).exists() is False


def test_it_edits_a_contact_replacing_its_addresses(alice_client, contact):
    data = contact_post(**{"addr-TOTAL_FORMS": "1"})
    del data["addr-1-kind"], data["addr-1-address"]
    response = alice_client.post(reverse("contacts:edit", args=[contact.pk]), data)
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.last_name == "Verdi"
    assert list(contact.addresses.values_list("address", flat=True)) == [f"giulia@{settings.PEC_DOMAIN}"]


def test_it_lists_searches_and_filters_by_letter(alice_client, alice):
    make_contact(alice.owner, last="Rossi", address="r@x.it")
    make_contact(alice.owner, last="Bianchi", address="b@x.it", company="Acme")
    page = alice_client.get(reverse("contacts:index"), {"q": "acme"}).content.decode()
    assert "Mario Bianchi" in page and "Mario Rossi" not in page
    page = alice_client.get(reverse("contacts:index"), {"letter": "R"}).content.decode()
    assert "Mario Rossi" in page and "Mario Bianchi" not in page
    page = alice_client.get(reverse("contacts:index"), {"q": "r@x.it"}).content.decode()
    assert "Mario Rossi" in page and "Mario Bianchi" not in page


def test_it_shows_hostile_fields_escaped(alice_client, alice):
    contact = make_contact(alice.owner, last=HOSTILE, company=HOSTILE, notes=HOSTILE)
    services.group_create(owner=alice.owner, name=HOSTILE)
    for url in (
        reverse("contacts:index"),
        reverse("contacts:detail", args=[contact.pk]),
        reverse("contacts:edit", args=[contact.pk]),
        reverse("contacts:groups"),
    ):
        page = alice_client.get(url).content.decode()
        assert "<script>alert" not in page, url
        assert "<img src=x" not in page, url
        assert "&lt;script&gt;" in page, url


def test_it_shows_a_hostile_vcard_escaped_after_import(alice_client, alice):
    vcf = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"FN:{HOSTILE}\r\nN:{HOSTILE};Evil;;;\r\nNOTE:{HOSTILE}\r\nORG:{HOSTILE}\r\n"
        "URL:javascript:alert(document.cookie)\r\nEMAIL:evil@example.com\r\nEND:VCARD\r\n"
    )
    upload = SimpleUploadedFile("evil.vcf", vcf.encode(), content_type="text/vcard")
    alice_client.post(reverse("contacts:import"), {"file": upload})
    preview = alice_client.get(reverse("contacts:import_preview")).content.decode()
    assert "<script>alert" not in preview and "&lt;script&gt;" in preview
    alice_client.post(reverse("contacts:import_preview"), {"action": "confirm"})
    contact = Contact.objects.get(owner=alice.owner)
    assert contact.website == ""
    page = alice_client.get(reverse("contacts:detail", args=[contact.pk])).content.decode()
    assert "<script>alert" not in page and "javascript:" not in page


def test_it_previews_an_import_then_imports_only_on_confirmation(alice_client, alice, contact):
    vcf = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Anna Neri\r\nN:Neri;Anna;;;\r\nEMAIL;TYPE=INTERNET,X-PEC:anna@pec.it\r\n"
        "CATEGORIES:Clienti\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Dup\r\nN:Dup;;;;\r\nEMAIL:MARIO@pec.example.it\r\nEND:VCARD\r\n"
    )
    response = alice_client.post(
        reverse("contacts:import"), {"file": SimpleUploadedFile("a.vcf", vcf.encode())}
    )
    assert response.status_code == 302
    assert Contact.objects.filter(owner=alice.owner).count() == 1
    preview = alice_client.get(reverse("contacts:import_preview")).content.decode()
    assert "Anna Neri" in preview
    assert "mario@pec.example.it is already in your contacts" in preview
    response = alice_client.post(reverse("contacts:import_preview"), {"action": "confirm"})
    assert response.status_code == 302
    anna = Contact.objects.get(owner=alice.owner, last_name="Neri")
    assert list(anna.groups.values_list("name", flat=True)) == ["Clienti"]
    assert Contact.objects.filter(owner=alice.owner).count() == 2


def test_it_imports_nothing_when_the_preview_is_cancelled(alice_client, alice):
    csv = b"First Name,Last Name,E-mail Address\nAnna,Neri,anna@x.it\n"
    alice_client.post(reverse("contacts:import"), {"file": SimpleUploadedFile("a.csv", csv)})
    alice_client.post(reverse("contacts:import_preview"), {"action": "cancel"})
    assert Contact.objects.filter(owner=alice.owner).exists() is False
    assert alice_client.get(reverse("contacts:import_preview")).status_code == 302


def test_it_refuses_an_oversized_file_with_a_form_error(alice_client, alice, settings):
    settings.CONTACTS_IMPORT_MAX_BYTES = 100
    upload = SimpleUploadedFile("big.csv", b"First Name\n" + b"x\n" * 100)
    response = alice_client.post(reverse("contacts:import"), {"file": upload})
    assert response.status_code == 422
    assert "too large" in response.content.decode()
    assert Contact.objects.filter(owner=alice.owner).exists() is False


def test_it_refuses_a_malformed_file_with_a_form_error(alice_client, alice):
    upload = SimpleUploadedFile("x.vcf", b"\x00\x01 not a card")
    response = alice_client.post(reverse("contacts:import"), {"file": upload})
    assert response.status_code == 422
    assert "not a vCard file" in response.content.decode()


@pytest.mark.parametrize("fmt", ["vcard3", "vcard4", "outlook", "gmail"])
def test_it_exports_then_reimports_the_same_data(alice_client, alice, charlie, fmt):
    make_contact(
        alice.owner, last="D'Àngelo", address=f"n@{settings.PEC_DOMAIN}", notes="Perché sì", city="Forlì"
    )
    first = alice_client.get(reverse("contacts:export"), {"format": fmt})
    assert first.status_code == 200
    assert "attachment" in first["Content-Disposition"]
    # charlie imports alice's file and exports it again: the bytes match.
    other = Client()
    other.force_login(charlie.owner)
    name = "c.vcf" if fmt.startswith("vcard") else "c.csv"
    other.post(reverse("contacts:import"), {"file": SimpleUploadedFile(name, first.content)})
    other.post(reverse("contacts:import_preview"), {"action": "confirm"})
    second = other.get(reverse("contacts:export"), {"format": fmt})
    assert second.content == first.content
    assert "Forlì" in second.content.decode()


def test_it_exports_only_one_group(alice_client, alice, group):
    member = make_contact(alice.owner, last="Membro", address="m@x.it")
    member.groups.add(group)
    make_contact(alice.owner, last="Fuori", address="f@x.it")
    body = alice_client.get(
        reverse("contacts:export"), {"format": "vcard4", "group": group.pk}
    ).content.decode()
    assert "Membro" in body and "Fuori" not in body


def test_it_autocompletes_addresses_groups_and_marks_certified(alice_client, alice, group):
    pec = make_contact(alice.owner, last="Rossi", address=f"mario@{settings.PEC_DOMAIN}")
    pec.groups.add(group)
    make_contact(alice.owner, last="Bianchi", address="luca@example.com", kind="email").groups.add(group)
    data = alice_client.get(reverse("contacts:autocomplete"), {"q": "ross"}).json()["results"]
    assert data == [
        {
            "kind": "contact",
            "name": "Mario Rossi",
            "address": f"mario@{settings.PEC_DOMAIN}",
            "pec": True,
            "certified": True,
            "value": f'"Mario Rossi" <mario@{settings.PEC_DOMAIN}>',
        }
    ]
    data = alice_client.get(reverse("contacts:autocomplete"), {"q": "client"}).json()["results"]
    assert data[-1]["kind"] == "group"
    assert data[-1]["addresses"] == ["luca@example.com", f"mario@{settings.PEC_DOMAIN}"]


def test_it_autocompletes_only_the_users_contacts(charlie_client, alice):
    make_contact(alice.owner)
    assert charlie_client.get(reverse("contacts:autocomplete"), {"q": "mario"}).json() == {"results": []}


def test_it_adds_a_sender_to_contacts_once(alice_client, alice):
    url = reverse("contacts:add_from_address")
    response = alice_client.post(url, {"address": "Sender@PEC.example.it", "name": "Carla Gialli"})
    contact = Contact.objects.get(owner=alice.owner)
    assert response["Location"] == reverse("contacts:edit", args=[contact.pk])
    assert (contact.first_name, contact.last_name) == ("Carla", "Gialli")
    assert list(contact.addresses.values_list("address", flat=True)) == ["sender@pec.example.it"]
    response = alice_client.post(url, {"address": "sender@pec.example.it", "name": "Other"})
    assert response["Location"] == reverse("contacts:detail", args=[contact.pk])
    assert Contact.objects.filter(owner=alice.owner).count() == 1


def test_it_toggles_favourite_and_deletes(alice_client, contact):
    alice_client.post(reverse("contacts:favourite", args=[contact.pk]))
    contact.refresh_from_db()
    assert contact.favourite is True
    alice_client.post(reverse("contacts:delete", args=[contact.pk]))
    assert Contact.objects.filter(pk=contact.pk).exists() is False


def test_it_creates_renames_and_deletes_groups_keeping_contacts(alice_client, alice, contact):
    alice_client.post(reverse("contacts:group_create"), {"name": "Fornitori"})
    group = ContactGroup.objects.get(owner=alice.owner)
    contact.groups.add(group)
    alice_client.post(reverse("contacts:group_rename", args=[group.pk]), {"name": "Partner"})
    group.refresh_from_db()
    assert group.name == "Partner"
    alice_client.post(reverse("contacts:group_delete", args=[group.pk]))
    assert ContactGroup.objects.filter(owner=alice.owner).exists() is False
    assert Contact.objects.filter(pk=contact.pk).exists() is True


def object_urls(contact, group):
    return [
        ("get", reverse("contacts:detail", args=[contact.pk])),
        ("get", reverse("contacts:edit", args=[contact.pk])),
        ("get", reverse("contacts:vcard", args=[contact.pk])),
        ("post", reverse("contacts:edit", args=[contact.pk])),
        ("post", reverse("contacts:delete", args=[contact.pk])),
        ("post", reverse("contacts:favourite", args=[contact.pk])),
        ("post", reverse("contacts:group_rename", args=[group.pk])),
        ("post", reverse("contacts:group_delete", args=[group.pk])),
        ("get", reverse("contacts:index") + f"?group={group.pk}"),
    ]


def test_it_answers_404_to_another_user_for_every_object_url(charlie_client, contact, group):
    for method, url in object_urls(contact, group):
        response = getattr(charlie_client, method)(url, {"name": "x"} if method == "post" else None)
        assert response.status_code == 404, url
    contact.refresh_from_db()
    assert contact.favourite is False
    assert ContactGroup.objects.filter(pk=group.pk).exists() is True


def test_it_does_not_export_another_users_group(charlie_client, contact, group):
    contact.groups.add(group)
    response = charlie_client.get(reverse("contacts:export"), {"format": "vcard3", "group": group.pk})
    assert response.status_code == 422
    assert "Rossi" not in response.content.decode()
    body = charlie_client.get(reverse("contacts:export"), {"format": "vcard3"}).content.decode()
    assert "Rossi" not in body


def test_it_sends_anonymous_users_to_login(client, contact, group):
    urls = [url for _m, url in object_urls(contact, group)] + [
        reverse(name)
        for name in (
            "contacts:index",
            "contacts:new",
            "contacts:groups",
            "contacts:import",
            "contacts:import_preview",
            "contacts:autocomplete",
        )
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code in (302, 405), url
        if response.status_code == 302:
            assert "/accounts/login/" in response["Location"], url


def test_it_refuses_get_on_writes(alice_client, contact, group):
    for url in (
        reverse("contacts:delete", args=[contact.pk]),
        reverse("contacts:favourite", args=[contact.pk]),
        reverse("contacts:group_create"),
        reverse("contacts:group_delete", args=[group.pk]),
        reverse("contacts:add_from_address"),
    ):
        assert alice_client.get(url).status_code == 405, url


def test_it_requires_csrf_on_writes(alice, contact):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice.owner)
    for url in (
        reverse("contacts:delete", args=[contact.pk]),
        reverse("contacts:new"),
        reverse("contacts:add_from_address"),
    ):
        assert client.post(url, {"address": "a@b.it"}).status_code == 403, url
    assert Contact.objects.filter(pk=contact.pk).exists() is True


def test_it_is_translated_into_italian(alice_client, contact):
    page = alice_client.get(reverse("contacts:index"), headers={"accept-language": "it"}).content.decode()
    assert "Nuovo contatto" in page
    assert ContactAddress.objects.filter(contact=contact).exists() is True


def test_it_files_accented_surnames_under_their_plain_letter(alice_client, alice):
    make_contact(alice.owner, last="Èrcoli", address="e@x.it")
    page = alice_client.get(reverse("contacts:index"), {"letter": "E"}).content.decode()
    assert "Mario Èrcoli" in page


def test_it_skips_an_address_repeated_within_the_file(alice_client, alice):
    csv = b"First Name,Last Name,E-mail Address\nAnna,Neri,anna@x.it\nAnna,Neri bis,ANNA@x.it\n"
    alice_client.post(reverse("contacts:import"), {"file": SimpleUploadedFile("a.csv", csv)})
    preview = alice_client.get(reverse("contacts:import_preview")).content.decode()
    assert "anna@x.it appears earlier in the file" in preview
    alice_client.post(reverse("contacts:import_preview"), {"action": "confirm"})
    assert list(Contact.objects.filter(owner=alice.owner).values_list("last_name", flat=True)) == ["Neri"]


def test_it_quotes_display_names_in_autocomplete_values(alice_client, alice):
    services.contact_save(
        owner=alice.owner,
        fields={"company": 'Studio "Rossi, Bianchi"'},
        addresses=[{"address": "studio@x.it", "kind": "email"}],
        phones=[],
    )
    [result] = alice_client.get(reverse("contacts:autocomplete"), {"q": "studio"}).json()["results"]
    assert result["value"] == '"Studio \\"Rossi, Bianchi\\"" <studio@x.it>'


def test_it_downloads_one_contact_as_vcard_4(alice_client, contact):
    response = alice_client.get(reverse("contacts:vcard", args=[contact.pk]))
    assert response["Content-Type"] == "text/vcard; charset=utf-8"
    body = response.content.decode()
    assert "VERSION:4.0" in body and "EMAIL;TYPE=x-pec:mario@pec.example.it" in body


def test_it_files_names_starting_with_a_digit_under_hash_and_filters_by_group(alice_client, alice, group):
    services.contact_save(
        owner=alice.owner,
        fields={"company": "3M Italia"},
        addresses=[{"address": "a@3m.it", "kind": "email"}],
        phones=[],
    )
    member = make_contact(alice.owner, last="Verdi", address="v@x.it")
    member.groups.add(group)
    page = alice_client.get(reverse("contacts:index"), {"letter": "#"}).content.decode()
    assert "3M Italia" in page and "Mario Verdi" not in page
    page = alice_client.get(reverse("contacts:index"), {"group": group.pk}).content.decode()
    assert "Mario Verdi" in page and "3M Italia" not in page
