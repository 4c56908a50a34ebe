"""The Search tab page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from pecmail.agenda.models import Calendar, Event
from pecmail.contacts.models import Contact, ContactAddress
from pecmail.mail.models import Folder
from pecmail.todos.models import Task
from tests.search.factories import BASE_DATE, store

pytestmark = pytest.mark.django_db

URL = reverse("search:index")


def test_it_shows_the_form_without_results(alice_client):
    response = alice_client.get(URL)
    assert response.status_code == 200
    assert response.context["tab"] == "search"
    assert response.context["results"] is None
    assert b'<label for="id_q">' in response.content


def test_it_asks_anonymous_users_to_log_in(client):
    response = client.get(URL, {"q": "x"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_it_refuses_post(alice_client):
    assert alice_client.post(URL, {"q": "x"}).status_code == 405


def test_it_lists_matching_messages_with_highlights(alice_client, alice):
    message = store(alice, subject="Fattura <b>12</b>", text="la fattura è scaduta")
    response = alice_client.get(URL, {"q": "fattura"})
    assert response.status_code == 200
    body = response.content.decode()
    assert reverse("mail:read", args=[message.pk]) in body
    assert "<mark>Fattura</mark> &lt;b&gt;12&lt;/b&gt;" in body
    assert "<b>12</b>" not in body


def test_it_groups_contacts_events_and_tasks(alice_client, alice, charlie):
    contact = Contact.objects.create(owner=alice.owner, first_name="Lucia", last_name="Fontana")
    ContactAddress.objects.create(contact=contact, address="lucia@fontana.example")
    calendar = Calendar.objects.create(owner=alice.owner, name="Lavoro")
    event = Event.objects.create(
        calendar=calendar, title="Riunione Fontana", start=BASE_DATE, end=BASE_DATE + dt.timedelta(hours=1)
    )
    task = Task.objects.create(owner=alice.owner, title="Chiamare Fontana")
    Contact.objects.create(owner=charlie.owner, first_name="Fontana", last_name="di Charlie")
    Task.objects.create(owner=charlie.owner, title="Fontana di Charlie")
    response = alice_client.get(URL, {"q": "fontana"})
    results = response.context["results"]
    assert [c.pk for c in results.contacts] == [contact.pk]
    assert [e.pk for e in results.events] == [event.pk]
    assert [t.pk for t in results.tasks] == [task.pk]
    body = response.content.decode()
    assert 'id="results-contacts"' in body
    assert reverse("agenda:event_detail", args=[event.pk]) in body
    assert reverse("todos:edit", args=[task.pk]) in body
    assert "di Charlie" not in body


def test_it_shows_charlie_nothing_of_alice(charlie_client, alice):
    store(alice, subject="Riservato", text="riservatissimo")
    Task.objects.create(owner=alice.owner, title="riservatissimo")
    response = charlie_client.get(URL, {"q": "riservatissimo"})
    assert response.status_code == 200
    results = response.context["results"]
    assert results.total_shown == 0
    assert b"Riservato" not in response.content


def test_it_refuses_another_users_folder_as_a_filter(charlie_client, alice):
    store(alice, subject="Riservato", text="riservatissimo")
    inbox = Folder.objects.get(mailbox=alice, role=Folder.Role.INBOX)
    response = charlie_client.get(URL, {"q": "riservatissimo", "folder": inbox.pk})
    assert response.status_code == 422
    assert response.context["results"] is None


def test_it_applies_the_filters_from_the_query_string(alice_client, alice):
    store(alice, subject="Con allegato", text="doc", attachments=(("a.pdf", "application/pdf", b"%PDF"),))
    store(alice, subject="Senza allegato", text="doc")
    response = alice_client.get(URL, {"q": "doc", "has_attachment": "on"})
    assert [h.message.subject for h in response.context["results"].messages.hits] == ["Con allegato"]
    response = alice_client.get(URL, {"has_attachment": "on"})
    assert [h.message.subject for h in response.context["results"].messages.hits] == ["Con allegato"]
    assert response.context["filters_open"] is True


def test_it_takes_dates_as_whole_days(alice_client, alice):
    store(alice, subject="Sera", text="x", date=dt.datetime(2026, 3, 9, 21, 30, tzinfo=dt.UTC))
    store(alice, subject="Dopo", text="x", date=dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.UTC))
    response = alice_client.get(URL, {"date_from": "2026-03-09", "date_to": "2026-03-09"})
    assert [h.message.subject for h in response.context["results"].messages.hits] == ["Sera"]


def test_it_rejects_an_end_date_before_the_start(alice_client):
    response = alice_client.get(URL, {"date_from": "2026-03-09", "date_to": "2026-03-01"})
    assert response.status_code == 422


def test_it_links_to_the_next_page(alice_client, alice, settings):
    for i in range(3):
        store(alice, subject=f"M{i}", text="pagina", date=BASE_DATE + dt.timedelta(days=i))
    settings.SEARCH_PAGE_SIZE = 2
    first = alice_client.get(URL, {"q": "pagina"})
    next_query = first.context["next_query"]
    assert next_query
    # The second page keeps the query and brings the rest, without the other tabs again.
    second = alice_client.get(f"{URL}?{next_query}")
    assert [h.message.subject for h in second.context["results"].messages.hits] == ["M0"]


@pytest.mark.parametrize("text", ["\x00", "a\x00b", '"', "-", "NEAR(a b)", "subject:x", "*", "x" * 6000])
def test_it_never_fails_on_hostile_input(alice_client, alice, text):
    store(alice, subject="a b", text="x")
    response = alice_client.get(URL, {"q": text, "sender": text[:300], "order": "relevance"})
    assert response.status_code in (200, 422)


def test_it_speaks_italian(alice_client, alice):
    store(alice, subject="Fattura", text="x", attachments=(("a.pdf", "application/pdf", b"%PDF"),))
    alice_client.cookies["django_language"] = "it"
    response = alice_client.get(URL, {"q": "fattura"}, HTTP_ACCEPT_LANGUAGE="it")
    body = response.content.decode()
    assert "Prima i più recenti" in body
    assert 'Usa le "virgolette"' in body
    assert "1 allegato" in body


def test_it_cuts_a_very_long_query_instead_of_refusing_it(alice_client, alice):
    store(alice, subject="Lunga", text="parola")
    response = alice_client.get(URL, {"q": "parola " + "x" * 20_000})
    assert response.status_code == 200
    assert response.context["form"].cleaned_data["q"].startswith("parola x")
