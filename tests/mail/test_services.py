from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404

from pecmail.mail import selectors, services, storage
from pecmail.mail.models import Draft, Folder, Message


def folder(mailbox, role):
    return Folder.objects.get(mailbox=mailbox, role=role)


def store(mailbox, subject="Hello", date=None, role=Folder.Role.INBOX):
    raw = (
        f"From: Bob <bob@pec.localhost>\r\nTo: {mailbox.address}\r\nSubject: {subject}\r\n"
        "Date: Fri, 27 Nov 2026 21:00:00 +0100\r\n\r\nBody text\r\n"
    ).encode()
    fields = {"date": date} if date else {}
    return services.message_store(mailbox=mailbox, raw=raw, folder=folder(mailbox, role), **fields)


def test_it_stores_a_message_with_parsed_metadata(alice):
    message = store(alice)
    assert message.folder.role == Folder.Role.INBOX
    assert message.subject == "Hello"
    assert (message.from_name, message.from_address) == ("Bob", "bob@pec.localhost")
    assert message.to_addresses == [alice.address]
    assert message.preview == "Body text"
    assert message.kind == Message.Kind.ORDINARY
    assert message.date == dt.datetime(2026, 11, 27, 20, 0, tzinfo=dt.UTC)
    assert storage.raw_get(message.raw_sha256).startswith(b"From: Bob")


def test_a_stored_message_is_the_row_save_would_write_and_is_indexed(alice):
    """message_store inserts through rows_insert and sends post_save itself, as save() would."""
    from django.db.models.signals import pre_save

    from pecmail.search.models import MessageSearchDocument

    # save() would also send pre_save: message_store relies on nobody listening for it.
    assert not pre_save.has_listeners(Message)
    message = store(alice, subject="Fattura 42")
    assert message.pk and not message._state.adding and message._state.db == "default"
    assert message.created_at is not None
    fresh = Message.objects.get(pk=message.pk)
    copy = Message.objects.get(pk=message.pk)
    copy.pk, copy._state.adding = None, True
    copy.save(force_insert=True)
    mine, theirs = (
        {
            f.attname: getattr(m, f.attname)
            for f in Message._meta.concrete_fields
            if f.attname not in ("id", "created_at")
        }
        for m in (fresh, Message.objects.get(pk=copy.pk))
    )
    assert mine == theirs
    assert MessageSearchDocument.objects.get(message_id=message.pk).subject.lower() == "fattura 42"


def test_it_moves_deletes_to_trash_and_deletes_from_trash(alice):
    message = store(alice)
    archive = services.folder_create(mailbox=alice, name="Archive")
    services.message_move(message=message, folder=archive)
    assert Message.objects.get(pk=message.pk).folder == archive
    services.message_delete(message=message)
    assert Message.objects.get(pk=message.pk).folder.role == Folder.Role.TRASH
    services.message_delete(message=message)
    assert Message.objects.filter(pk=message.pk).exists() is False


def test_it_refuses_to_move_into_another_mailbox(alice, bob):
    message = store(alice)
    with pytest.raises(ValidationError):
        services.message_move(message=message, folder=folder(bob, Folder.Role.INBOX))


def test_it_empties_the_trash_only(alice):
    kept = store(alice)
    for _ in range(3):
        services.message_delete(message=store(alice))
    assert services.trash_empty(mailbox=alice) == 3
    assert list(Message.objects.filter(mailbox=alice)) == [kept]


def test_it_marks_seen_and_flagged(alice):
    messages = [store(alice), store(alice)]
    assert services.message_mark(messages=messages, seen=True) == 2
    assert services.message_mark(messages=messages[:1], flagged=True) == 1
    rows = {m.pk: (m.seen, m.flagged) for m in Message.objects.all()}
    assert rows == {messages[0].pk: (True, True), messages[1].pk: (True, False)}
    assert services.message_mark(messages=messages) == 0


def test_it_validates_folder_names(alice):
    created = services.folder_create(mailbox=alice, name="  Clienti   2026 ")
    assert created.name == "Clienti 2026"
    for bad in ["", "   ", "a/b", "x" * 101, "clienti 2026", "Inbox", "trash"]:
        with pytest.raises(ValidationError):
            services.folder_create(mailbox=alice, name=bad)
    renamed = services.folder_rename(folder=created, name="Fornitori")
    assert Folder.objects.get(pk=created.pk).name == "Fornitori" == renamed.name


def test_it_keeps_system_folders(alice):
    for role in Folder.SYSTEM_ROLES:
        with pytest.raises(ValidationError):
            services.folder_rename(folder=folder(alice, role), name="Other")
        with pytest.raises(ValidationError):
            services.folder_delete(folder=folder(alice, role))


def test_it_moves_messages_to_trash_when_a_folder_is_deleted(alice):
    archive = services.folder_create(mailbox=alice, name="Archive")
    message = store(alice)
    services.message_move(message=message, folder=archive)
    services.folder_delete(folder=archive)
    assert Message.objects.get(pk=message.pk).folder.role == Folder.Role.TRASH
    assert Folder.objects.filter(pk=archive.pk).exists() is False


def test_it_saves_a_draft_with_attachments_and_updates_it(alice):
    upload = SimpleUploadedFile("../fattura.pdf", b"%PDF-1.4", content_type="application/pdf")
    draft = services.draft_save(
        mailbox=alice, to="bob@pec.localhost", subject="Bozza", body_html="<p>x</p>", attachments=[upload]
    )
    assert draft.attachments.get().filename == "fattura.pdf"
    assert draft.attachments.get().size == 8
    same = services.draft_save(mailbox=alice, draft=draft, to="bob@pec.localhost", subject="Bozza 2")
    assert same.pk == draft.pk
    assert Draft.objects.get(pk=draft.pk).subject == "Bozza 2"
    assert Draft.objects.get(pk=draft.pk).attachments.count() == 1


def test_it_refuses_to_save_into_another_users_draft(alice, bob):
    draft = services.draft_save(mailbox=alice, subject="mine")
    with pytest.raises(ValidationError):
        services.draft_save(mailbox=bob, draft=draft, subject="stolen")


def test_it_splits_typed_addresses():
    assert services.split_addresses("Bob <BOB@pec.localhost>; carol@pec.localhost,, bob@pec.localhost") == [
        "bob@pec.localhost",
        "carol@pec.localhost",
    ]


def test_it_builds_the_original_with_priority_confidential_and_receipt_headers(alice):
    raw, msgid = services.original_build(
        mailbox=alice,
        to=["bob@pec.localhost"],
        cc=["carol@pec.localhost"],
        subject="Urgente",
        body_text="testo",
        body_html="<b>testo</b>",
        attachments=[("a.pdf", "application/pdf", b"%PDF")],
        priority_high=True,
        confidential=True,
        receipt_type="breve",
    )
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "From: Alice Rossi <alice@pec.localhost>" in head
    assert "Importance: high" in head
    assert "X-Priority: 1" in head
    assert "Sensitivity: Company-Confidential" in head
    assert "X-TipoRicevuta: breve" in head
    assert f"Message-ID: <{msgid}>" in head
    assert b"multipart/alternative" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_it_pages_by_keyset_newest_first(alice):
    inbox = folder(alice, Folder.Role.INBOX)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    created = [store(alice, subject=f"m{i}", date=base + dt.timedelta(minutes=i // 2)) for i in range(7)]
    pages, cursor = [], None
    while True:
        page = selectors.message_list(folder=inbox, before=cursor, limit=3)
        if not page:
            break
        pages.append([m.subject for m in page])
        cursor = (page[-1].date, page[-1].id)
    expected = [m.subject for m in sorted(created, key=lambda m: (m.date, m.id), reverse=True)]
    assert sum(pages, []) == expected
    assert [len(p) for p in pages] == [3, 3, 1]


def test_it_hides_other_users_objects(alice, charlie):
    message = store(alice)
    draft = services.draft_save(mailbox=alice, subject="x")
    inbox = folder(alice, Folder.Role.INBOX)
    with pytest.raises(Http404):
        selectors.message_get(user=charlie.owner, message_id=message.pk)
    with pytest.raises(Http404):
        selectors.folder_get(user=charlie.owner, folder_id=inbox.pk)
    with pytest.raises(Http404):
        selectors.draft_get(user=charlie.owner, draft_id=draft.pk)
    assert selectors.messages_get(user=charlie.owner, message_ids=[message.pk]) == []
    assert selectors.message_get(user=alice.owner, message_id=message.pk) == message
    assert selectors.mailbox_for_user(user=charlie.owner) == charlie


def test_it_answers_404_for_a_user_without_mailbox(db, django_user_model):
    user = django_user_model.objects.create_user(email="nobody@example.test", password="x")
    with pytest.raises(Http404):
        selectors.mailbox_for_user(user=user)
