"""Writes of the search index: a message's document, built from its stored bytes."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

from django.db import DatabaseError, connection, transaction

from pecmail.lib.rows import rows_insert
from pecmail.mail import parsing, storage
from pecmail.mail.models import Message

from . import fts5
from . import query as q
from .backends import backend_for_connection
from .models import MessageSearchDocument

logger = logging.getLogger(__name__)

# Beyond this the body adds little to a search and much to the index (tsvector limit: 1 MB).
MAX_BODY_CHARS = 100_000
BATCH_SIZE = 500
# Kinds whose searchable content is the carried message (postacert.eml), not the envelope.
INNER_KINDS = frozenset(
    {Message.Kind.CERTIFIED, Message.Kind.ANOMALY, Message.Kind.ORDINARY, Message.Kind.SUBMITTED}
)


def _split_words(value: str) -> str:
    # "mario.rossi@pec.it" also as "mario rossi pec it" (PostgreSQL's parser keeps an address or
    # a file name as one token), so a part of an address or of a file name matches.
    return " ".join(re.split(r"[\s@._+\-]+", value)).strip()


def _body_and_attachments(message: Message) -> tuple[str, list[str]]:
    # message_store hands over the walk it has just made of these bytes.
    sha256, parsed = getattr(message, "_parsed_raw", (None, None))
    if parsed is None or sha256 != message.raw_sha256:
        try:
            raw = storage.raw_get(message.raw_sha256)
        except (storage.RawMissing, ValueError, OSError):
            # No stored bytes (or unreadable): the preview is the text there is.
            return message.preview, []
        parsed = parsing.message_parts(raw)
    shown = parsed.display if message.kind in INNER_KINDS else parsed
    text = shown.text
    if shown.html and not text.strip():
        text = parsing.html_to_text(shown.html)
    return text, [a.filename for a in shown.attachments]


def document_build(*, message: Message) -> MessageSearchDocument:
    """The (unsaved) search document of ``message``: its text read from the stored bytes."""
    body, attachment_names = _body_and_attachments(message)
    recipients = [*(message.to_addresses or []), *(message.cc_addresses or [])]
    recipients = [str(r) for r in recipients if r]
    address_text = " ".join(
        [
            message.from_name,
            message.from_address,
            _split_words(message.from_address),
            *recipients,
            *(_split_words(r) for r in recipients),
        ]
    )
    values = {
        "subject": message.subject,
        "addresses": address_text,
        "recipients": " ".join(recipients),
        "body": body[:MAX_BODY_CHARS],
        "attachments": " ".join([*attachment_names, *(_split_words(n) for n in attachment_names)]),
    }
    fold = backend_for_connection().folds_in_python
    for name, value in values.items():
        value = q.clean_text(value)
        values[name] = q.fold(value) if fold else value
    return MessageSearchDocument(
        message_id=message.pk, mailbox_id=message.mailbox_id, date=message.date, **values
    )


def message_index(*, message: Message, new: bool = False) -> MessageSearchDocument | None:
    """Index (or re-index) ``message``; None if the index could not be written.

    Runs in the caller's transaction, inside a savepoint: a failing index write is logged
    and leaves the message itself filed (``manage.py search reindex`` repairs the index).
    ``new``: the message row was created in this transaction, so it has no document to replace.
    """
    document = document_build(message=message)
    try:
        with transaction.atomic():
            if not new:
                MessageSearchDocument.objects.filter(message_id=message.pk).delete()
            # save(force_insert=True) through an INSERT compiled once: every filed message comes here.
            rows_insert([document])
    except DatabaseError:
        logger.exception("search: could not index message %s", message.pk)
        return None
    return document


def index_rebuild(*, batch_size: int = BATCH_SIZE, progress: Callable[[int, int], None] | None = None) -> int:
    """Rebuild the whole index from the stored messages; returns how many were indexed.

    Works in batches of ``batch_size`` messages walked by id (each batch one transaction),
    calling ``progress(done, total)`` after each. Documents of messages gone are dropped.
    """
    batch_size = max(1, int(batch_size))
    sqlite = connection.vendor == "sqlite"
    if sqlite:
        # Rewrite the documents without the triggers; the FTS5 structure is rebuilt at the end.
        _execute(fts5.drop_triggers_sql())
    try:
        done = _rebuild_documents(batch_size=batch_size, progress=progress)
    finally:
        if sqlite:
            # Even after a failure: the triggers come back and FTS5 matches the table again.
            with transaction.atomic():
                _execute([*fts5.create_triggers_sql(), fts5.REBUILD_SQL])
    return done


def _rebuild_documents(*, batch_size: int, progress: Callable[[int, int], None] | None) -> int:
    total = Message.objects.count()
    done = 0
    last_id = 0
    while True:
        batch = list(Message.objects.filter(pk__gt=last_id).order_by("pk")[:batch_size])
        if not batch:
            break
        last_id = batch[-1].pk
        _index_batch(batch)
        done += len(batch)
        if progress is not None:
            progress(done, max(total, done))
    MessageSearchDocument.objects.exclude(message_id__in=Message.objects.values("pk")).delete()
    return done


def _execute(statements: list[str]) -> None:
    with connection.cursor() as db:
        for statement in statements:
            db.execute(statement)


def _index_batch(messages: Iterable[Message]) -> None:
    documents = [document_build(message=m) for m in messages]
    with transaction.atomic():
        MessageSearchDocument.objects.filter(message_id__in=[d.message_id for d in documents]).delete()
        MessageSearchDocument.objects.bulk_create(documents)
