"""Permission-scoped reads of the Messages tab: another user's objects are a 404."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import QuerySet, signals
from django.db.models.base import ModelState
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
    plan = _list_plan()
    params: list[object] = [folder.pk]
    sql = plan.first_sql
    if before is not None:
        date, pk = before
        sql = plan.after_sql
        params += [connection.ops.adapt_datetimefield_value(date), int(pk)]
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return plan.instances(rows)


class _ListPlan:
    """The list query and how to turn its rows into Message instances, built once per process.

    Rows become instances the way ``Model.from_db`` leaves them (attributes set, ``_state``
    not adding, the deferred columns absent so that reading one loads it), without the
    per-row generic machinery of ``QuerySet.raw`` (init-order resolution, ``__init__``
    with ~30 arguments, descriptor ``setattr`` per field): that machinery was most of the
    page time next to the bare indexed query (bench/mailbox.py).
    """

    def __init__(self) -> None:
        qn = connection.ops.quote_name
        meta = Message._meta
        fields = [f for f in meta.concrete_fields if f.name not in LIST_DEFERRED]
        folder_col, date_col, id_col = (qn(meta.get_field(n).column) for n in ("folder", "date", "id"))
        columns = ", ".join(qn(f.column) for f in fields)
        # One row-value comparison is a single index range on every backend (the ORM's OR
        # form is not). Names come from _meta, values are parameters.
        base = f"SELECT {columns} FROM {qn(meta.db_table)} WHERE {folder_col} = %s"  # noqa: S608
        order = f" ORDER BY {date_col} DESC, {id_col} DESC LIMIT %s"
        self.first_sql = base + order
        self.after_sql = base + f" AND ({date_col}, {id_col}) < (%s, %s)" + order
        self.attnames = tuple(f.attname for f in fields)
        self.fields = fields
        # Field-level converters (JSON decoding, backend datetime handling), by column index.
        self.converters = []
        for index, f in enumerate(fields):
            expression = f.get_col(meta.db_table)
            found = connection.ops.get_db_converters(expression) + f.get_db_converters(connection)
            if found:
                self.converters.append((index, expression, found))
        # The fast path skips Model.__init__: only when nothing listens to its signals.
        self.direct = not (
            signals.pre_init.has_listeners(Message) or signals.post_init.has_listeners(Message)
        )

    def instances(self, rows: list[tuple]) -> list[Message]:
        db = connection.alias
        if self.converters:
            converted = []
            for row in rows:
                row = list(row)
                for index, expression, converters in self.converters:
                    value = row[index]
                    for converter in converters:
                        value = converter(value, expression, connection)
                    row[index] = value
                converted.append(row)
            rows = converted
        if not self.direct:
            return [Message.from_db(db, self.attnames, row) for row in rows]
        attnames = self.attnames
        new = Message.__new__
        out = []
        for row in rows:
            obj = new(Message)
            state = ModelState()
            state.adding = False
            state.db = db
            obj.__dict__ = dict(zip(attnames, row, strict=True))
            obj._state = state
            out.append(obj)
        return out


_plans: dict[str, _ListPlan] = {}


def _list_plan() -> _ListPlan:
    plan = _plans.get(connection.alias)
    if plan is None:
        plan = _plans[connection.alias] = _ListPlan()
    return plan


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
