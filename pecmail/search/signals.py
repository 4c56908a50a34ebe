"""Keep the index in step with the Messages store: a message is indexed when it is filed.

Deletion needs no receiver: the document's foreign key cascades with its message (and on
SQLite the FTS5 triggers follow the document row), in the deleting transaction.
"""

from __future__ import annotations

from typing import Any

from pecmail.mail.models import Message

from . import services

# Saves that touch none of these (flags, folder, pipeline state) leave the document as it is.
INDEXED_FIELDS = frozenset(
    {
        "subject",
        "from_address",
        "from_name",
        "to_addresses",
        "cc_addresses",
        "date",
        "raw_sha256",
        "kind",
        "mailbox",
    }
)


def message_saved(sender: type[Message], instance: Message, created: bool, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return  # fixture loading: the rows are not final yet; reindex afterwards
    update_fields = kwargs.get("update_fields")
    if not created and update_fields is not None and not (set(update_fields) & INDEXED_FIELDS):
        return
    services.message_index(message=instance, new=created)
