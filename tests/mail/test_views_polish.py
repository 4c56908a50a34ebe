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
