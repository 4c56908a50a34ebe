"""Every Options page renders in English and Italian."""

from __future__ import annotations

import pytest
from django.urls import reverse

PAGES = {
    "options:index": ("Display name", "Nome visualizzato"),
    "options:notifications": ("Add an address", "Aggiungi un indirizzo"),
    "options:rules": ("New rule", "Nuova regola"),
    "options:security": ("Sign out everywhere else", "Esci da tutte le altre sessioni"),
}


@pytest.mark.parametrize("name", PAGES)
def test_it_renders_each_page_in_english_and_italian(alice_client, name):
    english, italian = PAGES[name]
    response = alice_client.get(reverse(name))
    assert response.status_code == 200
    assert english in response.content.decode()
    alice_client.cookies["django_language"] = "it"
    page = alice_client.get(reverse(name)).content.decode()
    assert italian in page
    assert english not in page
