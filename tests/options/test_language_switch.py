"""The footer's language switch also saves the language preference of a signed-in user."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from pecmail.options.selectors import preferences_for
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def footer_action(body: str) -> str:
    match = re.search(r'<form action="([^"]+)" method="post" class="lang-switch"', body)
    assert match is not None
    return match.group(1)


def test_it_keeps_the_footer_language_at_the_next_login(alice_client, alice):
    page = reverse("options:index")
    body = alice_client.get(page).content.decode()
    response = alice_client.post(footer_action(body), {"language": "it", "next": page})
    assert response.status_code == 302 and response.url == page
    assert '<html lang="it">' in alice_client.get(page).content.decode()
    alice_client.post(reverse("account_logout"))

    # A new browser: no language cookie, no Accept-Language; only the saved preference can say Italian.
    client = Client()
    response = client.post(reverse("account_login"), {"login": alice.address, "password": PASSWORD})
    assert response.status_code == 302
    body = client.get(page).content.decode()
    assert '<html lang="it">' in body
    assert ">Opzioni</a>" in body
    assert preferences_for(alice.owner).language == "it"


def test_it_switches_an_anonymous_visitor_without_saving_anything(client):
    login_page = reverse("account_login")
    body = client.get(login_page).content.decode()
    response = client.post(footer_action(body), {"language": "it", "next": login_page})
    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "it"
    assert '<html lang="it">' in client.get(login_page).content.decode()


def test_it_ignores_an_unknown_language(alice_client, alice):
    page = reverse("options:index")
    body = alice_client.get(page).content.decode()
    alice_client.post(footer_action(body), {"language": "xx", "next": page})
    assert preferences_for(alice.owner).language == ""
