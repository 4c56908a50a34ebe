"""The compose page shows the sender as a person reads it; the sent header stays RFC 2047."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from pecmail.mail import storage
from pecmail.mail.models import Message
from tests.conftest import PASSWORD, make_mailbox

DOMAIN = django_settings.PEC_DOMAIN


def test_it_shows_an_accented_display_name_unencoded_in_the_from_field(db):
    mailbox = make_mailbox("nicco", "Niccolò Düring")
    client = Client()
    assert client.login(username=mailbox.owner.get_username(), password=PASSWORD) is True
    html = client.get(reverse("mail:compose")).content.decode()
    field = re.search(r'<input id="id_from"[^>]*>', html).group(0)
    assert f'value="Niccolò Düring &lt;nicco@{DOMAIN}&gt;"' in field
    assert "=?utf-8?" not in field.lower()


def test_it_still_sends_the_accented_name_encoded_in_the_from_header(
    db, provider, django_capture_on_commit_callbacks
):
    mailbox = make_mailbox("nicco", "Niccolò Düring")
    make_mailbox("bob", "Bob Bianchi")
    client = Client()
    assert client.login(username=mailbox.owner.get_username(), password=PASSWORD) is True
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("mail:compose"),
            {
                "to": f"bob@{DOMAIN}",
                "cc": "",
                "subject": "Saluti",
                "body_format": "text",
                "body_html": "",
                "body_text": "Ciao",
                "receipt_type": "completa",
                "action": "send",
            },
        )
    sent = Message.objects.get(mailbox=mailbox, kind=Message.Kind.SUBMITTED)
    raw = storage.raw_get(sent.raw_sha256)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    from_line = re.search(r"^From: (.*)$", head, re.M).group(1)
    assert "=?utf-8?" in from_line.lower()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["From"].addresses[0].display_name == "Niccolò Düring"
    assert parsed["From"].addresses[0].addr_spec == f"nicco@{DOMAIN}"
