"""Compose page details found by QA."""

from __future__ import annotations

import re

from django.contrib.staticfiles import finders
from django.urls import reverse


def test_it_draws_the_attach_icon_from_an_svg_file_not_an_emoji(alice_client):
    html = alice_client.get(reverse("mail:compose")).content.decode()
    label = re.search(r'<label for="id_attach"[^>]*>(.*?)</label>', html, re.S).group(1)
    assert "📎" not in label
    icon = re.search(r'<img class="attach-icon" src="([^"]+)" alt=""', label)
    assert icon is not None
    assert icon.group(1).endswith("img/mail-paperclip.svg")
    assert finders.find("img/mail-paperclip.svg") is not None
    assert label.strip().endswith("Attach")


# Pictographs outside the Basic Multilingual Plane need an emoji font; without one (Debian's
# Chromium, many office desktops) they show as an empty box.
ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def test_it_uses_no_emoji_glyphs_in_the_list_and_reader(alice_client, alice):
    from pecmail.mail import services

    raw = (
        b"From: bob@example.org\r\nTo: alice@pec.localhost\r\nSubject: Allegato\r\n"
        b"Sensitivity: Company-Confidential\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nCiao\r\n'
        b'--b\r\nContent-Type: application/pdf; name="a.pdf"\r\nContent-Disposition: attachment; filename="a.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
    )
    message = services.message_store(mailbox=alice, raw=raw)
    assert message.attachment_count == 1
    listing = alice_client.get(reverse("mail:folder", args=[message.folder_id])).content.decode()
    reader = alice_client.get(reverse("mail:read", args=[message.pk])).content.decode()
    assert "img/mail-paperclip.svg" in listing
    assert "img/mail-paperclip.svg" in reader
    assert ASTRAL.findall(listing) == []
    assert ASTRAL.findall(reader) == []
