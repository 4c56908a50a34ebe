"""Permission-scoped reads of the Messages tab: another user's objects are a 404."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import QuerySet
from django.http import Http404

from pecmail.accounts.models import User

from .models import Delivery, Draft, Folder, Mailbox, Message

PAGE_SIZE = 50
# Columns a list row never shows (large JSON, pipeline bookkeeping): loaded only if accessed.
LIST_DEFERRED = frozenset(
    {"certified_data", "rcpt_addresses", "bcc_addresses", "client_msgid", "envelope_sha256"}
)
MAX_PAGE_SIZE = 200


def mailbox_for_user(*, user: User) -> Mailbox:
    """The user's mailbox (the first one if several); 404 if the user has none."""
    if not getattr(user, "is_authenticated", False):
        raise Http404
    mailbox = Mailbox.objects.filter(owner=user).order_by("id").first()
    if mailbox is None:
        raise Http404
    return mailbox


def folder_list(*, mailbox: Mailbox) -> QuerySet[Folder]:
    """System folders first (Inbox, Sent, Drafts, Trash), then user folders by name."""
    return Folder.objects.filter(mailbox=mailbox).order_by("id")


def folder_get(*, user: User, folder_id: int) -> Folder:
    try:
        return Folder.objects.select_related("mailbox").get(pk=folder_id, mailbox__owner=user)
    except (Folder.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def folder_by_role(*, mailbox: Mailbox, role: str) -> Folder:
    return Folder.objects.get(mailbox=mailbox, role=role)


def message_get(*, user: User, message_id: int) -> Message:
    try:
        return Message.objects.select_related("mailbox", "folder", "related").get(
            pk=message_id, mailbox__owner=user
        )
    except (Message.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def messages_get(*, user: User, message_ids: list[int]) -> list[Message]:
    """The user's messages among ``message_ids`` (others' ids are silently left out)."""
    return list(Message.objects.filter(pk__in=message_ids, mailbox__owner=user))


def message_list(
    *, folder: Folder, before: tuple[datetime, int] | None = None, limit: int = PAGE_SIZE
) -> list[Message]:
    """Newest first, ``limit`` messages strictly older than the (date, id) cursor ``before``.

    Keyset pagination on the (folder, -date, -id) index: a page deep in the folder costs
    the same as the first one (never OFFSET). The next cursor is (last.date, last.id).
    The LIST_DEFERRED fields are deferred (each costs a query if read): use message_get for
    the reading pane.
    """
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    # One row-value comparison is a single index range on every backend (the ORM's OR form
    # is not), and a raw query skips the SQL compiler: bench/mailbox.py holds this within
    # a few times the bare query at any depth.
    qn = connection.ops.quote_name
    meta = Message._meta
    folder_col, date_col, id_col = (qn(meta.get_field(n).column) for n in ("folder", "date", "id"))
    columns = ", ".join(qn(f.column) for f in meta.concrete_fields if f.name not in LIST_DEFERRED)
    sql = f"SELECT {columns} FROM {qn(meta.db_table)} WHERE {folder_col} = %s"  # noqa: S608 - names from _meta
    params: list[object] = [folder.pk]
    if before is not None:
        date, pk = before
        sql += f" AND ({date_col}, {id_col}) < (%s, %s)"
        params += [connection.ops.adapt_datetimefield_value(date), int(pk)]
    sql += f" ORDER BY {date_col} DESC, {id_col} DESC LIMIT %s"
    params.append(limit)
    return list(Message.objects.raw(sql, params))


def unread_count(*, folder: Folder) -> int:
    return Message.objects.filter(folder=folder, seen=False).count()


def deliveries_for(*, message: Message) -> list[Delivery]:
    """The recipients of a sent message with their state and proving receipt, in order."""
    return list(Delivery.objects.filter(message=message).select_related("receipt").order_by("id"))


def receipts_for(*, message: Message) -> list[Message]:
    """Receipts and notices in the same mailbox that certify ``message``, oldest first."""
    return list(
        Message.objects.filter(related=message, mailbox_id=message.mailbox_id)
        .select_related("folder")
        .order_by("date", "id")
    )


def draft_list(*, mailbox: Mailbox) -> QuerySet[Draft]:
    return Draft.objects.filter(mailbox=mailbox).order_by("-updated_at", "-id")


def draft_get(*, user: User, draft_id: int) -> Draft:
    try:
        return Draft.objects.select_related("mailbox").get(pk=draft_id, mailbox__owner=user)
    except (Draft.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
