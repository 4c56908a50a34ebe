"""Real provider messages (the repository's copy of shared/pec/samples) open in the reading pane."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pecmail.certification import testing
from pecmail.certification.classify import classify
from pecmail.mail import services

FILES = sorted(testing.samples_dir().glob("*/*.eml"))


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_it_reads_a_real_provider_message(alice_client, alice, path):
    raw = path.read_bytes()
    message = services.message_store(mailbox=alice, raw=raw, classification=classify(raw))
    page = alice_client.get(reverse("mail:read", args=[message.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    if message.certified_data.get("daticert"):
        assert "Certified data" in html
        assert message.certified_data["daticert"]["identificativo"] in html
    body = alice_client.get(reverse("mail:body", args=[message.pk]))
    assert body.status_code == 200
    assert "<script" not in body.content.decode().lower()
    listed = list(page.context["attachments"]) + list(page.context["envelope_attachments"])
    for info in listed:
        download = alice_client.get(reverse("mail:attachment", args=[message.pk, info.index]))
        assert download.status_code == 200
        assert download["Content-Disposition"].startswith("attachment;")
    assert alice_client.get(reverse("mail:raw", args=[message.pk])).content == raw
