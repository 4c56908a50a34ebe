"""Helpers shared by the Messages views: the sidebar, keyset cursors, owner-scoped drafts."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.urls import NoReverseMatch, reverse

from .. import selectors
from ..models import Delivery, Draft, Folder, Mailbox, Message
from ..usage import mailbox_space

PAGE_SIZE = 50
ROLE_ORDER = {Folder.Role.INBOX: 0, Folder.Role.SENT: 1, Folder.Role.DRAFTS: 2, Folder.Role.TRASH: 3}


def sidebar(*, mailbox: Mailbox) -> dict:
    """What the sidebar of every Messages page shows: the folders and the space used."""
    return {"folders": folders_sidebar(mailbox=mailbox), "space": mailbox_space(mailbox=mailbox)}


def folders_sidebar(*, mailbox: Mailbox) -> list[Folder]:
    """The mailbox's folders, system ones first, each with ``unread`` (drafts: how many)."""
    # One correlated count per folder (served by the partial unread index), rather than a join
    # that reads every message of the mailbox.
    unread = (
        Message.objects.filter(folder=OuterRef("pk"), seen=False)
        .order_by()
        .values("folder")
        .annotate(n=Count("*"))
        .values("n")
    )
    folders = list(Folder.objects.filter(mailbox=mailbox).annotate(unread=Coalesce(Subquery(unread), 0)))
    drafts = Draft.objects.filter(mailbox=mailbox).count()
    for folder in folders:
        if folder.role == Folder.Role.DRAFTS:
            folder.unread = drafts
    folders.sort(key=lambda f: (ROLE_ORDER.get(f.role, 9), f.name.lower()))
    return folders


def system_folder(*, mailbox: Mailbox, role: str) -> Folder:
    return selectors.folder_by_role(mailbox=mailbox, role=role)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)


def cursor_encode(when: dt.datetime, pk: int) -> str:
    """Return "<microseconds since 1970>_<id>": exact integers, so the next page starts right after."""
    return f"{(when - EPOCH) // MICROSECOND}_{pk}"


def cursor_decode(value: str | None) -> tuple[dt.datetime, int] | None:
    """Parse an "older" link's cursor; a malformed one is a 404, never a full scan."""
    if not value:
        return None
    try:
        stamp, pk = value.split("_", 1)
        return EPOCH + int(stamp) * MICROSECOND, int(pk)
    except (ValueError, OverflowError, OSError) as exc:
        raise Http404("bad cursor") from exc


def optional_url(name: str) -> str:
    """Another app's URL if that app provides it (the Contacts autocomplete), else ""."""
    try:
        return reverse(name)
    except NoReverseMatch:
        return ""


def draft_page(*, mailbox: Mailbox, before: tuple[dt.datetime, int] | None, limit: int) -> list[Draft]:
    """The mailbox's drafts, most recently edited first, keyset-paginated on (updated_at, id)."""
    drafts = Draft.objects.filter(mailbox=mailbox)
    if before is not None:
        when, pk = before
        drafts = drafts.filter(Q(updated_at__lt=when) | Q(updated_at=when, pk__lt=pk))
    return list(drafts.order_by("-updated_at", "-id")[:limit])


def message_page(
    *, folder: Folder, before: tuple[dt.datetime, int] | None, limit: int, hide_folded_receipts: bool
) -> list[Message]:
    """One page of a folder, newest first; optionally without receipts folded under a sent message."""
    if not hide_folded_receipts:
        return selectors.message_list(folder=folder, before=before, limit=limit)
    rows = Message.objects.filter(folder=folder, related__isnull=True)
    if before is not None:
        when, pk = before
        rows = rows.filter(Q(date__lt=when) | Q(date=when, pk__lt=pk))
    return list(rows.order_by("-date", "-id")[:limit])


def attach_deliveries(rows: list[Message]) -> None:
    """Give each sent message of a list page ``delivery_list`` (one query for the whole page)."""
    by_message: dict[int, list[Delivery]] = {row.pk: [] for row in rows}
    for delivery in Delivery.objects.filter(message__in=rows).order_by("id"):
        by_message[delivery.message_id].append(delivery)
    for row in rows:
        row.delivery_list = by_message[row.pk]


# --- Preferences from the Options tab (read through its selectors when that app provides them) ---


def _options_selectors():
    try:
        from pecmail.options import selectors as options  # noqa: PLC0415 - optional neighbour app
    except ImportError:
        return None
    return options


def page_size_for(user) -> int:
    options = _options_selectors()
    if options is None or not hasattr(options, "page_size_for"):
        return PAGE_SIZE
    return max(1, min(int(options.page_size_for(user)), 200))


def default_receipt_type_for(user) -> str:
    options = _options_selectors()
    if options is None or not hasattr(options, "default_receipt_type_for"):
        return Message.ReceiptType.COMPLETE
    value = options.default_receipt_type_for(user)
    return value if value in ("completa", "breve", "sintetica") else Message.ReceiptType.COMPLETE


def signature_for(mailbox: Mailbox) -> tuple[str, bool]:
    """(signature, is_html) the user set in Options; ("", False) when none."""
    options = _options_selectors()
    if options is None or not hasattr(options, "signature_for"):
        return "", False
    text, is_html = options.signature_for(mailbox)
    return text or "", bool(is_html)


def reading_pane_for(user) -> str:
    """Where a message opens from the list: "right", "bottom" (same page) or "off" (its own page)."""
    options = _options_selectors()
    if options is None or not hasattr(options, "reading_pane_for"):
        return "right"
    value = options.reading_pane_for(user)
    return value if value in ("right", "bottom", "off") else "right"
