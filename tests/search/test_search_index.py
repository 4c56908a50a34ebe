"""Keeping the index: the post_save hook, deletions and ``manage.py search reindex``."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from pecmail.mail import services as mail_services
from pecmail.mail.models import Message
from pecmail.search import selectors
from pecmail.search.models import MessageSearchDocument
from tests.search.factories import store

pytestmark = pytest.mark.django_db


def subjects(user, text):
    return [h.message.subject for h in selectors.message_search(user=user, text=text).hits]


def test_it_indexes_in_the_transaction_that_files_the_message(alice):
    with transaction.atomic():
        message = store(alice, subject="Subito", text="immediato")
        # Still inside the filing transaction, before any commit hook could run.
        assert MessageSearchDocument.objects.filter(message_id=message.pk).exists() is True
        assert subjects(alice.owner, "immediato") == ["Subito"]


def test_it_leaves_the_document_alone_on_flag_changes(alice):
    message = store(alice, subject="Flag", text="bandiera")
    MessageSearchDocument.objects.filter(message_id=message.pk).update(body="sostituito")
    message.seen = True
    message.save(update_fields=["seen"])
    assert MessageSearchDocument.objects.get(message_id=message.pk).body == "sostituito"


def test_it_reindexes_when_the_subject_is_saved(alice):
    message = store(alice, subject="Vecchio", text="x")
    message.subject = "Nuovo oggetto"
    message.save(update_fields=["subject"])
    assert subjects(alice.owner, "oggetto") == ["Nuovo oggetto"]
    assert subjects(alice.owner, "vecchio") == []


def test_it_indexes_a_message_whose_bytes_are_missing_from_its_metadata(alice):
    inbox = alice.folders.get(role="inbox")
    Message.objects.create(
        mailbox=alice,
        folder=inbox,
        raw_sha256="0" * 64,
        subject="Senza byte",
        preview="anteprima",
        date="2026-01-01T00:00Z",
    )
    assert subjects(alice.owner, "anteprima") == ["Senza byte"]


def test_it_indexes_what_message_submit_sends(alice, bob):
    mail_services.message_submit(
        mailbox=alice,
        to=[bob.address],
        cc=[],
        subject="Proposta di accordo",
        body_text="Le proposte economiche sono allegate",
        body_html=None,
        attachments=[("offerta-economica.pdf", "application/pdf", b"%PDF-1.4")],
    )
    assert subjects(alice.owner, "economiche") == ["Proposta di accordo"]
    assert subjects(alice.owner, "offerta") == ["Proposta di accordo"]


def test_it_rebuilds_the_index_with_a_progress_bar(alice, bob):
    for i in range(5):
        store(alice, subject=f"Ricostruito {i}", text="ricostruzione")
    store(bob, subject="Di Bob", text="ricostruzione")
    MessageSearchDocument.objects.all().delete()
    assert subjects(alice.owner, "ricostruzione") == []
    out = io.StringIO()
    call_command("search", "reindex", "--batch-size", "2", stdout=out)
    output = out.getvalue()
    assert "\r" in output
    assert "2/6" in output
    assert "6/6 messages (100%)" in output
    assert "Indexed 6 messages." in output
    assert len(subjects(alice.owner, "ricostruzione")) == 5
    assert MessageSearchDocument.objects.count() == 6


def test_it_repairs_a_drifted_index_on_reindex(alice):
    store(alice, subject="Deriva", text="deriva")
    if connection.vendor == "sqlite":
        # Drop the FTS rows behind the document table's back (the triggers would not).
        with connection.cursor() as db:
            db.execute("INSERT INTO search_message_fts(search_message_fts) VALUES ('delete-all')")
        assert subjects(alice.owner, "deriva") == []
    call_command("search", "reindex", stdout=io.StringIO())
    assert subjects(alice.owner, "deriva") == ["Deriva"]


def test_it_reindexes_an_empty_store(db):
    out = io.StringIO()
    call_command("search", "reindex", stdout=out)
    assert "Indexed 0 messages." in out.getvalue()


def test_it_folds_accents_in_python_when_the_database_cannot(alice, monkeypatch):
    from pecmail.search import services

    class NoUnaccent:
        folds_in_python = True

    monkeypatch.setattr(services, "backend_for_connection", NoUnaccent)
    message = store(
        alice, subject="Perché", text="è così", attachments=(("città.pdf", "application/pdf", b"%PDF"),)
    )
    document = MessageSearchDocument.objects.get(message_id=message.pk)
    assert document.subject == "Perche"
    assert "e cosi" in document.body
    assert document.attachments.startswith("citta.pdf")


def test_it_configures_postgresql_text_search_without_accents():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL text search configurations")
    with connection.cursor() as db:
        db.execute("SELECT to_tsvector('pecmail_simple', 'Perché'), to_tsvector('pecmail_italian', 'Città')")
        simple, italian = db.fetchone()
    assert simple == "'perche':1"
    assert italian.startswith("'citt")


def test_it_keeps_highlight_markers_out_of_the_index(alice):
    message = store(alice, subject="a\x02b\x03c", text="x\x02y")
    document = MessageSearchDocument.objects.get(message_id=message.pk)
    assert "\x02" not in document.subject + document.body
    assert "\x03" not in document.subject
