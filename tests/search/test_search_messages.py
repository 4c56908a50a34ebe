"""message_search on the database under test (SQLite FTS5, or PostgreSQL with DATABASE_URL)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from pecmail.mail import services as mail_services
from pecmail.mail.models import Folder, Mailbox, Message
from pecmail.search import selectors
from pecmail.search.backends import MessageFilters
from pecmail.search.models import MessageSearchDocument
from tests.search.factories import BASE_DATE, envelope, raw_message, store

pytestmark = pytest.mark.django_db


def found(user, text="", **filters):
    page = selectors.message_search(user=user, text=text, filters=MessageFilters(**filters))
    return [hit.message.subject for hit in page.hits]


def test_it_runs_on_the_backend_of_the_database():
    from pecmail.search.backends import backend_for_connection

    assert backend_for_connection().vendor == connection.vendor


def test_it_indexes_a_message_when_it_is_stored(alice):
    message = store(
        alice,
        subject="Verbale",
        text="il verbale della riunione",
        attachments=(("Bilancio-2026.pdf", "application/pdf", b"%PDF"),),
    )
    document = MessageSearchDocument.objects.get(message_id=message.pk)
    assert "riunione" in document.body
    assert document.attachments.startswith("Bilancio-2026.pdf ")
    assert document.mailbox_id == alice.pk
    assert document.date == message.date


def test_it_finds_words_in_subject_names_addresses_body_and_attachment_names(alice):
    store(
        alice,
        subject="Convocazione assemblea",
        sender="Giuseppe Verdi <g.verdi@studio-legale.example>",
        to="alice@pec.example",
        cc="ufficio.tributi@comune.example",
        text="Si allega l'ordine del giorno",
        attachments=(("planimetria.pdf", "application/pdf", b"%PDF"),),
    )
    store(alice, subject="Other", text="nothing here")
    user = alice.owner
    assert found(user, "assemblea") == ["Convocazione assemblea"]
    assert found(user, "Giuseppe") == ["Convocazione assemblea"]
    assert found(user, "g.verdi@studio-legale.example") == ["Convocazione assemblea"]
    assert found(user, "studio") == ["Convocazione assemblea"]
    assert found(user, "tributi") == ["Convocazione assemblea"]
    assert found(user, "giorno") == ["Convocazione assemblea"]
    assert found(user, "planimetria") == ["Convocazione assemblea"]


def test_it_reduces_html_to_text(alice):
    store(
        alice,
        subject="Newsletter",
        html="<p>Offerta <b>speciale</b></p><style>.nascosto{}</style>",
        html_only=True,
    )
    document = MessageSearchDocument.objects.get()
    assert "<b>" not in document.body
    assert "nascosto" not in document.body
    assert found(alice.owner, "speciale") == ["Newsletter"]


def test_it_indexes_the_postacert_of_an_envelope(alice):
    inner = raw_message(
        subject="Diffida",
        text="termine perentorio di trenta giorni",
        attachments=(("diffida-firmata.pdf", "application/pdf", b"%PDF"),),
    )
    store(alice, raw=envelope(inner=inner, subject="Diffida"), kind=Message.Kind.CERTIFIED)
    document = MessageSearchDocument.objects.get()
    assert "perentorio" in document.body
    assert "envelopeword" not in document.body
    assert "diffida-firmata.pdf" in document.attachments
    assert found(alice.owner, "perentorio") == ["Diffida"]


def test_it_is_accent_insensitive_both_ways(alice):
    store(alice, subject="Richiesta", text="perché la pratica è ferma?")
    store(alice, subject="Citta", text="la citta di Forli")
    user = alice.owner
    assert found(user, "perche") == ["Richiesta"]
    assert found(user, "PERCHÉ") == ["Richiesta"]
    assert found(user, "città") == ["Citta"]
    assert found(user, "Forlì") == ["Citta"]


def test_it_understands_phrases_or_and_exclusions(alice):
    store(alice, subject="A", text="mario rossi firma", date=BASE_DATE)
    store(alice, subject="B", text="rossi mario bozza", date=BASE_DATE + dt.timedelta(hours=1))
    store(alice, subject="C", text="contratto firmato", date=BASE_DATE + dt.timedelta(hours=2))
    user = alice.owner
    assert found(user, '"mario rossi"') == ["A"]
    assert found(user, "mario rossi") == ["B", "A"]
    assert found(user, "mario -bozza") == ["A"]
    assert found(user, "bozza or contratto") == ["C", "B"]
    assert found(user, "-mario") == ["C"]


def test_it_never_shows_another_users_messages(alice, bob, charlie):
    store(alice, subject="Segreto di Alice", text="riservatissimo")
    store(bob, subject="Segreto di Bob", text="riservatissimo", to="bob@pec.example")
    assert found(alice.owner, "riservatissimo") == ["Segreto di Alice"]
    assert found(bob.owner, "riservatissimo") == ["Segreto di Bob"]
    assert found(charlie.owner, "riservatissimo") == []
    assert found(charlie.owner, "", unread=True) == []
    # Not even by naming another user's folder in the filters.
    bob_inbox = Folder.objects.get(mailbox=bob, role=Folder.Role.INBOX)
    assert found(alice.owner, "riservatissimo", folder_id=bob_inbox.pk) == []


def test_it_searches_every_mailbox_the_user_owns(alice, bob):
    second = Mailbox.objects.create(address="alice.studio@pec.example", owner=alice.owner)
    mail_services.folders_ensure(mailbox=second)
    store(alice, subject="Prima casella", text="comune")
    store(second, subject="Seconda casella", text="comune", date=BASE_DATE + dt.timedelta(days=1))
    assert found(alice.owner, "comune") == ["Seconda casella", "Prima casella"]


def test_it_filters_by_folder(alice):
    store(alice, subject="In arrivo", text="pratica")
    store(alice, subject="Inviato", text="pratica", role=Folder.Role.SENT)
    sent = Folder.objects.get(mailbox=alice, role=Folder.Role.SENT)
    assert found(alice.owner, "pratica", folder_id=sent.pk) == ["Inviato"]
    assert found(alice.owner, "", folder_id=sent.pk) == ["Inviato"]


def test_it_filters_by_date_range(alice):
    for day in (1, 5, 9):
        store(
            alice, subject=f"Giorno {day}", text="scadenza", date=dt.datetime(2026, 3, day, 12, tzinfo=dt.UTC)
        )
    start, end = dt.datetime(2026, 3, 4, tzinfo=dt.UTC), dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
    assert found(alice.owner, "scadenza", date_from=start, date_to=end) == ["Giorno 5"]
    assert found(alice.owner, "", date_from=start) == ["Giorno 9", "Giorno 5"]


def test_it_filters_by_sender_and_recipient(alice):
    store(
        alice,
        subject="Da Verdi",
        sender="Giuseppe Verdi <verdi@example.org>",
        cc="ufficio@comune.example",
        text="x",
    )
    store(alice, subject="Da Neri", sender="neri@example.org", text="x")
    assert found(alice.owner, "", sender="verdi") == ["Da Verdi"]
    assert found(alice.owner, "", sender="GIUSEPPE") == ["Da Verdi"]
    assert found(alice.owner, "", recipient="ufficio@comune") == ["Da Verdi"]
    # LIKE wildcards typed by the user are literal.
    assert found(alice.owner, "", sender="%") == []
    assert found(alice.owner, "", sender="_") == []


def test_it_filters_by_subject(alice):
    store(alice, subject="Fattura 12", text="importo")
    store(alice, subject="Sollecito", text="importo fattura")
    assert found(alice.owner, "importo", subject="fattura") == ["Fattura 12"]


def test_it_filters_by_attachment_flag_unread_and_priority(alice):
    with_file = store(
        alice, subject="Allegato", text="doc", attachments=(("a.pdf", "application/pdf", b"%PDF"),)
    )
    flagged = store(alice, subject="Importante", text="doc")
    read = store(alice, subject="Letto", text="doc")
    urgent = store(alice, subject="Urgente", text="doc", fields={"priority_high": True})
    mail_services.message_mark(messages=[flagged], flagged=True)
    mail_services.message_mark(messages=[read, with_file, flagged, urgent], seen=True)
    user = alice.owner
    assert found(user, "doc", has_attachment=True) == ["Allegato"]
    assert found(user, "doc", flagged=True) == ["Importante"]
    assert found(user, "doc", unread=True) == []
    mail_services.message_mark(messages=[read], seen=False)
    assert found(user, "doc", unread=True) == ["Letto"]
    assert found(user, "doc", priority="high") == ["Urgente"]
    assert sorted(found(user, "doc", priority="normal")) == ["Allegato", "Importante", "Letto"]


def test_it_filters_by_pec_kind(alice):
    store(alice, subject="Accettazione", text="ricevuta", kind=Message.Kind.ACCEPTANCE)
    store(alice, subject="Consegna", text="ricevuta", kind=Message.Kind.DELIVERY)
    store(alice, subject="Mancata consegna", text="ricevuta", kind=Message.Kind.DELIVERY_ERROR)
    store(alice, subject="Anomalia", text="ricevuta", kind=Message.Kind.ANOMALY)
    user = alice.owner
    assert found(user, "ricevuta", kind=Message.Kind.DELIVERY) == ["Consegna"]
    assert found(user, "", kind=Message.Kind.DELIVERY_ERROR) == ["Mancata consegna"]
    assert found(user, "", kind=Message.Kind.ANOMALY) == ["Anomalia"]
    assert found(user, "", kind=Message.Kind.ACCEPTANCE) == ["Accettazione"]


def test_it_finds_nothing_without_a_query_or_a_filter(alice):
    store(alice, subject="Qualcosa", text="x")
    assert found(alice.owner, "") == []
    assert found(alice.owner, "***") == []


def test_it_pages_newest_first_by_date_and_id(alice):
    same_date = BASE_DATE
    for i in range(5):
        store(
            alice,
            subject=f"M{i}",
            text="pagina",
            date=same_date if i < 3 else same_date + dt.timedelta(days=i),
        )
    seen: list[str] = []
    cursor = ""
    for _ in range(4):
        page = selectors.message_search(user=alice.owner, text="pagina", cursor=cursor, limit=2)
        seen += [h.message.subject for h in page.hits]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == ["M4", "M3", "M2", "M1", "M0"]


def test_it_pages_by_relevance_without_repeating(alice):
    for i in range(5):
        store(alice, subject="rilevanza" if i % 2 else f"M{i}", text="rilevanza " * (i + 1))
    ids: list[int] = []
    cursor = ""
    scores: list[float] = []
    while True:
        page = selectors.message_search(
            user=alice.owner, text="rilevanza", order="relevance", cursor=cursor, limit=2
        )
        ids += [h.message.pk for h in page.hits]
        scores += [h.score for h in page.hits]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(ids) == 5
    assert len(set(ids)) == 5
    assert scores == sorted(scores, reverse=True)
    # The subject matches weigh most.
    top = Message.objects.get(pk=ids[0])
    assert top.subject == "rilevanza"


def test_it_ignores_a_malformed_cursor(alice):
    store(alice, subject="Uno", text="cursore")
    for cursor in ("garbage", "eyJpIjogMX0", "e30", "!!!", "x" * 500):
        page = selectors.message_search(user=alice.owner, text="cursore", cursor=cursor)
        assert [h.message.subject for h in page.hits] == ["Uno"]


HOSTILE = [
    '"',
    '"unbalanced',
    'a"b"c"',
    "'",
    "-",
    "--",
    "- -",
    "or",
    "OR OR",
    "AND",
    "NOT",
    "a AND NOT b",
    "a OR",
    "NEAR(a b, 2)",
    "NEAR",
    "subject:secret",
    "{subject body}: x",
    "body:",
    "*",
    "a*",
    "^a",
    "a + b",
    "(a",
    "a)",
    "()",
    "!",
    "a & b | c",
    "a <-> b",
    "a:*",
    "\\",
    "'; DROP TABLE mail_message; --",
    "%_%",
    "\x00",
    "a\x00b",
    "\x02mark\x03",
    "🙂 emoji",
    "x" * 100_000,
    "parola " * 5_000,
    '"' * 1000,
    "-" * 1000,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_it_never_raises_on_hostile_queries(alice, text):
    store(alice, subject="secret a b", text="x a b c mark")
    for order in ("date", "relevance"):
        page = selectors.message_search(user=alice.owner, text=text, order=order)
        assert isinstance(page.hits, list)
    assert isinstance(selectors.search_all(user=alice.owner, text=text).contacts, list)


def test_it_highlights_matches_and_escapes_html(alice):
    store(
        alice,
        subject="<script>alert(1)</script> fattura <b>",
        text="Gentile cliente, <img src=x onerror=alert(2)> la fattura è allegata",
    )
    hit = selectors.message_search(user=alice.owner, text="fattura").hits[0]
    assert "<mark>fattura</mark>" in hit.subject_html
    assert "<script>" not in hit.subject_html
    assert "&lt;script&gt;" in hit.subject_html
    assert "&lt;b&gt;" in hit.subject_html
    assert "<mark>fattura</mark>" in hit.snippet_html
    assert "<img" not in hit.snippet_html
    assert "&lt;img" in hit.snippet_html


def test_it_escapes_the_preview_when_nothing_is_highlighted(alice):
    store(alice, subject="<i>x</i>", text="<img src=x onerror=alert(1)>")
    hit = selectors.message_search(user=alice.owner, filters=MessageFilters(unread=True)).hits[0]
    assert "<i>" not in hit.subject_html
    assert "<img" not in hit.snippet_html


def test_it_forgets_a_deleted_message(alice):
    message = store(alice, subject="Da cancellare", text="effimero")
    assert found(alice.owner, "effimero") == ["Da cancellare"]
    message.delete()
    assert MessageSearchDocument.objects.count() == 0
    assert found(alice.owner, "effimero") == []


def test_it_forgets_messages_when_the_trash_is_emptied(alice):
    message = store(alice, subject="Nel cestino", text="effimero")
    mail_services.message_delete(message=message)
    assert found(alice.owner, "effimero") == ["Nel cestino"]
    mail_services.trash_empty(mailbox=alice)
    assert found(alice.owner, "effimero") == []


def test_it_follows_a_moved_message_without_reindexing(alice):
    message = store(alice, subject="Spostato", text="archivio")
    folder = mail_services.folder_create(mailbox=alice, name="Archivio")
    mail_services.message_move(message=message, folder=folder)
    assert found(alice.owner, "archivio", folder_id=folder.pk) == ["Spostato"]


def test_it_ranks_among_the_newest_matches_on_postgresql(alice, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the relevance window is PostgreSQL's")
    from pecmail.search.backends import PostgresBackend

    monkeypatch.setattr(PostgresBackend, "RELEVANCE_WINDOW", 2)
    store(alice, subject="vecchio vecchio vecchio", text="finestra", date=BASE_DATE)
    store(alice, subject="Recente", text="finestra", date=BASE_DATE + dt.timedelta(days=1))
    store(alice, subject="Recentissimo", text="finestra", date=BASE_DATE + dt.timedelta(days=2))
    page = selectors.message_search(user=alice.owner, text="finestra", order="relevance")
    assert sorted(h.message.subject for h in page.hits) == ["Recente", "Recentissimo"]
