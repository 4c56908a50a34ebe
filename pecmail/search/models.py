"""The search index of the Messages store: one document row per message."""

from __future__ import annotations

from django.db import models

from pecmail.mail.models import Mailbox, Message


class MessageSearchDocument(models.Model):
    """The searchable text of one message, kept beside it by the search app.

    ``mailbox`` and ``date`` are copies of the message's own (they never change once a message
    is filed) so a mailbox-scoped, newest-first search walks one index without a join. The
    vendor's full-text structure lives next to this table, created by migration 0002: on
    PostgreSQL a stored generated ``vector`` tsvector column with a GIN index, on SQLite the
    FTS5 table ``search_message_fts`` kept in step by triggers.
    """

    message = models.OneToOneField(Message, on_delete=models.CASCADE, primary_key=True, related_name="+")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+", db_index=False)
    date = models.DateTimeField()
    subject = models.TextField(blank=True)
    # Display names and addresses of sender and recipients, addresses also split into words.
    addresses = models.TextField(blank=True)
    # To and Cc only, for the "to/cc" filter.
    recipients = models.TextField(blank=True)
    body = models.TextField(blank=True)
    attachments = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["mailbox", "-date", "-message"], name="search_doc_mailbox_date"),
        ]

    def __str__(self) -> str:
        return f"search document of message {self.message_id}"
