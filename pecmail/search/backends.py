"""Full-text search of the message index, one backend per database vendor.

Both backends answer the same question: the ids (with highlighted subject and body
snippet) of the documents in the given mailboxes that match a query and the filters,
newest first by a (date, id) cursor or by relevance by a (score, id) cursor, never OFFSET.
The SQL is written by hand: the mailbox-scoped, newest-first query must stay one walk of
the (mailbox, -date, -id) index or one GIN probe, whatever the ORM would make of it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

from pecmail.mail.models import Folder, Message
from pecmail.mail.selectors import LIST_DEFERRED

from . import fts5
from . import query as q

DOC = fts5.DOC
FTS = fts5.FTS
MESSAGE = "mail_message"

ORDER_DATE = "date"
ORDER_RELEVANCE = "relevance"


@dataclass
class MessageFilters:
    """Conditions on the message besides the text query; empty values are ignored."""

    folder_id: int | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None  # exclusive
    sender: str = ""
    recipient: str = ""
    subject: str = ""
    has_attachment: bool = False
    flagged: bool = False
    unread: bool = False
    kind: str = ""
    priority: str = ""  # "high", "normal" or ""

    def is_empty(self) -> bool:
        return not any(
            (
                self.folder_id,
                self.date_from,
                self.date_to,
                self.sender,
                self.recipient,
                self.subject,
                self.has_attachment,
                self.flagged,
                self.unread,
                self.kind,
                self.priority,
            )
        )

    def needs_message(self) -> bool:
        """Whether a condition reads the message row (the rest are on the document)."""
        return bool(
            self.folder_id
            or self.sender
            or self.subject
            or self.has_attachment
            or self.flagged
            or self.unread
            or self.kind
            or self.priority
        )


@dataclass
class RawHit:
    message_id: int
    score: float | None = None
    subject_marked: str | None = None
    snippet_marked: str | None = None
    # Filled by a backend that loads the page's messages in its own query (PostgreSQL).
    message: Message | None = None
    folder_label: str = ""


@dataclass
class Cursor:
    """Where the previous page ended: (date, id) newest first, (score, id) by relevance."""

    message_id: int
    date: datetime | None = None
    score: float | None = None


def _like(value: str) -> str:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass
class _Sql:
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, condition: str, *params: Any) -> None:
        self.where.append(condition)
        self.params.extend(params)


def _filter_sql(filters: MessageFilters, sql: _Sql) -> None:
    adapt = connection.ops.adapt_datetimefield_value
    if filters.folder_id:
        sql.add("m.folder_id = %s", int(filters.folder_id))
    if filters.date_from:
        sql.add("d.date >= %s", adapt(filters.date_from))
    if filters.date_to:
        sql.add("d.date < %s", adapt(filters.date_to))
    if filters.sender:
        pattern = _like(filters.sender)
        sql.add(
            "(LOWER(m.from_address) LIKE %s ESCAPE '\\' OR LOWER(m.from_name) LIKE %s ESCAPE '\\')",
            pattern,
            pattern,
        )
    if filters.recipient:
        sql.add("LOWER(d.recipients) LIKE %s ESCAPE '\\'", _like(filters.recipient))
    if filters.subject:
        sql.add("LOWER(m.subject) LIKE %s ESCAPE '\\'", _like(filters.subject))
    if filters.has_attachment:
        sql.add("m.attachment_count > 0")
    if filters.flagged:
        sql.add("m.flagged = %s", True)
    if filters.unread:
        sql.add("m.seen = %s", False)
    if filters.kind:
        sql.add("m.kind = %s", filters.kind)
    if filters.priority in ("high", "normal"):
        sql.add("m.priority_high = %s", filters.priority == "high")


def _scope_sql(mailbox_ids: list[int], sql: _Sql) -> None:
    placeholders = ", ".join(["%s"] * len(mailbox_ids))
    sql.add(f"d.mailbox_id IN ({placeholders})", *[int(i) for i in mailbox_ids])


def _message_join(filters: MessageFilters) -> str:
    return f" JOIN {MESSAGE} m ON m.id = d.message_id" if filters.needs_message() else ""


def _from_sql(filters: MessageFilters) -> str:
    return f"{DOC} d{_message_join(filters)}"


_MESSAGE_COLUMNS = ", ".join(
    f"m.{connection.ops.quote_name(f.column)}"
    for f in Message._meta.concrete_fields
    if f.name not in LIST_DEFERRED
)


class SearchBackend:
    vendor = ""
    # Whether accents must be folded in Python on both the document and the query.
    folds_in_python = False

    def search(
        self,
        *,
        mailbox_ids: list[int],
        text: str,
        filters: MessageFilters,
        order: str,
        cursor: Cursor | None,
        limit: int,
    ) -> list[RawHit]:
        raise NotImplementedError

    def _browse(
        self,
        *,
        mailbox_ids: list[int],
        filters: MessageFilters,
        cursor: Cursor | None,
        limit: int,
        sql: _Sql | None = None,
    ) -> list[RawHit]:
        """Filters alone, newest first (no text query); ``sql`` may carry extra conditions."""
        if sql is None:
            sql = _Sql()
            _scope_sql(mailbox_ids, sql)
            _filter_sql(filters, sql)
        if cursor is not None and cursor.date is not None:
            sql.add(
                "(d.date, d.message_id) < (%s, %s)",
                connection.ops.adapt_datetimefield_value(cursor.date),
                cursor.message_id,
            )
        statement = (
            f"SELECT d.message_id FROM {_from_sql(filters)} WHERE {' AND '.join(sql.where)} "  # noqa: S608
            "ORDER BY d.date DESC, d.message_id DESC LIMIT %s"
        )
        with connection.cursor() as db:
            db.execute(statement, [*sql.params, limit])
            return [RawHit(message_id=row[0]) for row in db.fetchall()]


class PostgresBackend(SearchBackend):
    """A stored tsvector (Italian stems + simple words, unaccented), websearch_to_tsquery, GIN."""

    vendor = "postgresql"
    HEADLINE_SUBJECT = f"HighlightAll=true, StartSel={q.MARK_START}, StopSel={q.MARK_END}"
    HEADLINE_BODY = (
        f'MaxFragments=2, MaxWords=18, MinWords=6, FragmentDelimiter=" … ", '
        f"StartSel={q.MARK_START}, StopSel={q.MARK_END}"
    )
    TSQUERY = "(websearch_to_tsquery('pecmail_italian', %s) || websearch_to_tsquery('pecmail_simple', %s))"
    # ts_headline reads the whole text: the snippet comes from the body's beginning.
    HEADLINE_BODY_CHARS = 20000
    RELEVANCE_WINDOW = 2000

    @property
    def folds_in_python(self) -> bool:  # type: ignore[override]
        return not _pg_has_unaccent(connection.settings_dict["NAME"])

    def search(
        self,
        *,
        mailbox_ids: list[int],
        text: str,
        filters: MessageFilters,
        order: str,
        cursor: Cursor | None,
        limit: int,
    ) -> list[RawHit]:
        text = q.clean_query(text)
        if self.folds_in_python:
            text = q.fold(text)
        if q.parse(text).is_empty:
            if text or filters.is_empty():
                return []
            return self._browse(mailbox_ids=mailbox_ids, filters=filters, cursor=cursor, limit=limit)
        sql = _Sql()
        _scope_sql(mailbox_ids, sql)
        sql.add(f"d.vector @@ {self.TSQUERY}", text, text)
        _filter_sql(filters, sql)
        if order == ORDER_RELEVANCE:
            # Ranked among the newest RELEVANCE_WINDOW matches: ranking every match of a common
            # word in a 100,000-message mailbox costs a third of a second (bench/search.py).
            candidates = (
                f"SELECT d.message_id, d.date, d.subject, d.body, d.vector FROM {_from_sql(filters)} "  # noqa: S608
                f"WHERE {' AND '.join(sql.where)} ORDER BY d.date DESC, d.message_id DESC "
                f"LIMIT {self.RELEVANCE_WINDOW}"
            )
            score = f"ts_rank_cd(d.vector, {self.TSQUERY})::float8"
            inner_params: list[Any] = [text, text, *sql.params]
            where = ""
            if cursor is not None and cursor.score is not None:
                where = f"WHERE ({score}, d.message_id) < (%s, %s)"
                inner_params += [text, text, cursor.score, cursor.message_id]
            order_by = "score DESC, d.message_id DESC"
            inner = (
                f"SELECT d.message_id, d.date, d.subject, d.body, {score} AS score "  # noqa: S608
                f"FROM ({candidates}) d {where} ORDER BY {order_by} LIMIT %s"
            )
        else:
            # Newest first needs no rank: the page is the first rows of the (mailbox, date) walk.
            if cursor is not None and cursor.date is not None:
                sql.add(
                    "(d.date, d.message_id) < (%s, %s)",
                    connection.ops.adapt_datetimefield_value(cursor.date),
                    cursor.message_id,
                )
            order_by = "d.date DESC, d.message_id DESC"
            inner = (
                f"SELECT d.message_id, d.date, d.subject, d.body, NULL::float8 AS score "  # noqa: S608
                f"FROM {_from_sql(filters)} WHERE {' AND '.join(sql.where)} ORDER BY {order_by} LIMIT %s"
            )
            inner_params = list(sql.params)
        # One round trip: the page's ids, then its messages, folders and headlines (ts_headline
        # re-parses the text it is given, so only the page's rows get one).
        statement = (
            f"SELECT {_MESSAGE_COLUMNS}, f.name AS search_folder_name, f.role AS search_folder_role, "  # noqa: S608
            f"p.score AS search_score, "
            f"ts_headline('pecmail_simple', p.subject, {self.TSQUERY}, %s) AS search_subject, "
            f"ts_headline('pecmail_simple', left(p.body, {self.HEADLINE_BODY_CHARS}), {self.TSQUERY}, %s) "
            f"AS search_snippet "
            f"FROM ({inner}) p JOIN {MESSAGE} m ON m.id = p.message_id JOIN mail_folder f ON f.id = m.folder_id "
            f"ORDER BY {order_by.replace('d.', 'p.')}"
        )
        params = [
            *(text, text, self.HEADLINE_SUBJECT, text, text, self.HEADLINE_BODY),  # the headlines
            *inner_params,
            limit,
        ]
        hits = []
        for message in Message.objects.raw(statement, params):
            role = message.search_folder_role
            hits.append(
                RawHit(
                    message_id=message.pk,
                    score=message.search_score,
                    subject_marked=message.search_subject,
                    snippet_marked=message.search_snippet,
                    message=message,
                    folder_label=message.search_folder_name
                    if role == Folder.Role.USER
                    else str(Folder.Role(role).label),
                )
            )
        return hits


@functools.cache
def _pg_has_unaccent(database: str) -> bool:
    with connection.cursor() as db:
        db.execute("SELECT 1 FROM pg_extension WHERE extname = 'unaccent'")
        return db.fetchone() is not None


class SqliteBackend(SearchBackend):
    """FTS5 (unicode61, diacritics removed); the user's syntax translated into quoted strings."""

    vendor = "sqlite"
    # bm25 column weights: subject, addresses, body, attachment names.
    BM25 = f"bm25({FTS}, 10.0, 4.0, 1.0, 2.0)"

    def search(
        self,
        *,
        mailbox_ids: list[int],
        text: str,
        filters: MessageFilters,
        order: str,
        cursor: Cursor | None,
        limit: int,
    ) -> list[RawHit]:
        parsed = q.parse(text)
        if parsed.is_empty:
            if q.clean_query(text) or filters.is_empty():
                return []
            return self._browse(mailbox_ids=mailbox_ids, filters=filters, cursor=cursor, limit=limit)
        match, exclude = q.fts5_expression(parsed)
        sql = _Sql()
        _scope_sql(mailbox_ids, sql)
        _filter_sql(filters, sql)
        if exclude:
            # Only exclusions: every document but those (FTS5 has no unary NOT).
            sql.add(f"d.message_id NOT IN (SELECT rowid FROM {FTS} WHERE {FTS} MATCH %s)", exclude)  # noqa: S608
            return self._browse(mailbox_ids=mailbox_ids, filters=filters, cursor=cursor, limit=limit, sql=sql)
        source = f"{FTS} JOIN {DOC} d ON d.message_id = {FTS}.rowid{_message_join(filters)}"
        inner = (
            f"SELECT d.message_id AS message_id, d.date AS date, -{self.BM25} AS score FROM {source} "  # noqa: S608
            f"WHERE {FTS} MATCH %s AND {' AND '.join(sql.where)}"
        )
        outer = _Sql()
        if order == ORDER_RELEVANCE:
            if cursor is not None and cursor.score is not None:
                outer.add("(p.score, p.message_id) < (%s, %s)", cursor.score, cursor.message_id)
            order_by = "p.score DESC, p.message_id DESC"
        else:
            if cursor is not None and cursor.date is not None:
                outer.add(
                    "(p.date, p.message_id) < (%s, %s)",
                    connection.ops.adapt_datetimefield_value(cursor.date),
                    cursor.message_id,
                )
            order_by = "p.date DESC, p.message_id DESC"
        where = f"WHERE {' AND '.join(outer.where)}" if outer.where else ""
        # MATERIALIZED: the score is computed once inside the FTS query, where bm25() is valid.
        statement = (
            f"WITH p AS MATERIALIZED ({inner}) SELECT p.message_id, p.score FROM p {where} "  # noqa: S608
            f"ORDER BY {order_by} LIMIT %s"
        )
        with connection.cursor() as db:
            db.execute(statement, [match, *sql.params, *outer.params, limit])
            rows = db.fetchall()
            hits = [RawHit(message_id=row[0], score=row[1]) for row in rows]
            if hits:
                self._highlight(db, match, hits)
        return hits

    def _highlight(self, db: Any, match: str, hits: list[RawHit]) -> None:
        """Highlighted subject and body snippet of the page's rows (a second, small FTS query)."""
        by_id = {hit.message_id: hit for hit in hits}
        placeholders = ", ".join(["%s"] * len(by_id))
        db.execute(
            f"SELECT rowid, highlight({FTS}, 0, %s, %s), snippet({FTS}, 2, %s, %s, '…', 16) "  # noqa: S608
            f"FROM {FTS} WHERE {FTS} MATCH %s AND rowid IN ({placeholders})",
            [q.MARK_START, q.MARK_END, q.MARK_START, q.MARK_END, match, *by_id],
        )
        for rowid, subject, snippet in db.fetchall():
            hit = by_id.get(rowid)
            if hit is not None:
                hit.subject_marked = subject
                hit.snippet_marked = snippet


class UnsupportedBackend(SearchBackend):
    def search(self, **kwargs: Any) -> list[RawHit]:
        raise NotImplementedError(f"search supports PostgreSQL and SQLite, not {connection.vendor}")


def backend_for_connection() -> SearchBackend:
    """The backend for the default database's vendor."""
    if connection.vendor == "postgresql":
        return PostgresBackend()
    if connection.vendor == "sqlite":
        return SqliteBackend()
    return UnsupportedBackend()
