"""Permission-scoped searches: only the user's own mailboxes, contacts, events and tasks."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString

from pecmail.accounts.models import User
from pecmail.agenda import selectors as agenda_selectors
from pecmail.agenda.models import Event
from pecmail.contacts import selectors as contact_selectors
from pecmail.contacts.models import Contact
from pecmail.mail.models import Mailbox, Message
from pecmail.todos import selectors as todo_selectors
from pecmail.todos.models import Task

from . import query as q
from .backends import ORDER_DATE, ORDER_RELEVANCE, Cursor, MessageFilters, backend_for_connection

PAGE_SIZE = 50  # settings.SEARCH_PAGE_SIZE overrides it
MAX_PAGE_SIZE = 200
OTHER_LIMIT = 20
# The other tabs' searches join once per word: a handful of distinct words is plenty.
OTHER_MAX_WORDS = 5


@dataclass
class MessageHit:
    message: Message
    subject_html: SafeString
    snippet_html: SafeString
    folder_label: str = ""
    score: float | None = None


@dataclass
class MessagePage:
    hits: list[MessageHit] = field(default_factory=list)
    next_cursor: str = ""


@dataclass
class SearchResults:
    """Everything found, grouped by kind; ``messages`` is one keyset page."""

    messages: MessagePage
    contacts: list[Contact] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)

    @property
    def total_shown(self) -> int:
        return len(self.messages.hits) + len(self.contacts) + len(self.events) + len(self.tasks)


def cursor_encode(cursor: Cursor) -> str:
    data = {"i": cursor.message_id}
    if cursor.date is not None:
        data["d"] = cursor.date.isoformat()
    if cursor.score is not None:
        data["s"] = repr(cursor.score)
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def cursor_decode(token: str) -> Cursor | None:
    """The cursor in ``token``; None for anything malformed (the first page is shown)."""
    if not token or len(token) > 200:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = Cursor(message_id=int(data["i"]))
        if "d" in data:
            cursor.date = datetime.fromisoformat(str(data["d"]))
            if timezone.is_naive(cursor.date):
                return None
        if "s" in data:
            cursor.score = float(data["s"])
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError, OverflowError):
        return None
    if cursor.date is None and cursor.score is None:
        return None
    return cursor


def user_mailbox_ids(*, user: User) -> list[int]:
    if not getattr(user, "is_authenticated", False):
        return []
    return list(Mailbox.objects.filter(owner=user).order_by("id").values_list("id", flat=True))


def message_search(
    *,
    user: User,
    text: str = "",
    filters: MessageFilters | None = None,
    order: str = ORDER_DATE,
    cursor: str = "",
    limit: int | None = None,
) -> MessagePage:
    """One page of the user's messages matching ``text`` and ``filters``.

    ``text`` is websearch syntax (quotes, ``or``, ``-word``); hostile input never raises.
    Newest first, or by relevance (``order="relevance"``, only with text). ``cursor`` is the
    ``next_cursor`` of the previous page. Only messages of mailboxes ``user`` owns are seen.
    """
    filters = filters or MessageFilters()
    mailbox_ids = user_mailbox_ids(user=user)
    if not mailbox_ids:
        return MessagePage()
    if limit is None:
        limit = getattr(settings, "SEARCH_PAGE_SIZE", PAGE_SIZE)
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    order = order if order in (ORDER_DATE, ORDER_RELEVANCE) else ORDER_DATE
    raw_hits = backend_for_connection().search(
        mailbox_ids=mailbox_ids,
        text=text,
        filters=filters,
        order=order,
        cursor=cursor_decode(cursor),
        limit=limit + 1,
    )
    more = len(raw_hits) > limit
    raw_hits = raw_hits[:limit]
    missing = [h.message_id for h in raw_hits if h.message is None]
    messages = Message.objects.select_related("folder").in_bulk(missing) if missing else {}
    for raw in raw_hits:
        if raw.message is None and raw.message_id in messages:
            raw.message = messages[raw.message_id]
            raw.folder_label = raw.message.folder.display_name
    hits: list[MessageHit] = []
    for raw in raw_hits:
        message = raw.message
        # A message is only ever shown when it is, now, in one of the user's mailboxes.
        if message is None or message.mailbox_id not in mailbox_ids:
            continue
        hits.append(
            MessageHit(
                message=message,
                subject_html=q.mark_html(raw.subject_marked)
                if raw.subject_marked
                else escape(message.subject),
                snippet_html=q.mark_html(raw.snippet_marked)
                if raw.snippet_marked
                else escape(message.preview),
                folder_label=raw.folder_label,
                score=raw.score,
            )
        )
    next_cursor = ""
    if more and raw_hits:
        last = raw_hits[-1]
        if order == ORDER_RELEVANCE and last.score is not None:
            next_cursor = cursor_encode(Cursor(message_id=last.message_id, score=last.score))
        elif last.message is not None:
            next_cursor = cursor_encode(Cursor(message_id=last.message_id, date=last.message.date))
    return MessagePage(hits=hits, next_cursor=next_cursor)


def search_all(
    *,
    user: User,
    text: str = "",
    filters: MessageFilters | None = None,
    order: str = ORDER_DATE,
    cursor: str = "",
    limit: int | None = None,
) -> SearchResults:
    """Messages (one page), and on the first page the user's contacts, events and tasks.

    The other tabs are searched with the plain words of ``text`` (exclusions dropped) and
    only when no message filter is set: the filters are about messages.
    """
    filters = filters or MessageFilters()
    page = message_search(user=user, text=text, filters=filters, order=order, cursor=cursor, limit=limit)
    results = SearchResults(messages=page)
    words = list(dict.fromkeys(q.parse(text).positive_words))[:OTHER_MAX_WORDS]
    if cursor or not words or not filters.is_empty():
        return results
    phrase = " ".join(words)
    results.contacts = list(contact_selectors.contact_list(user=user, query=phrase)[:OTHER_LIMIT])
    results.events = agenda_selectors.event_search(user=user, query=phrase, limit=OTHER_LIMIT)
    results.tasks = todo_selectors.task_search(user=user, query=phrase, limit=OTHER_LIMIT)
    return results
