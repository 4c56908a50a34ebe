"""The provider log (SPEC §7.3): append-only, hash-chained, kept 30 months.

Every row stores the SHA-256 of the previous row (``prev_hash``) and of its own canonical
serialisation (``hash``). Appends are serialised on the single ``ProviderLogHead`` row
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite runs IMMEDIATE transactions), so two writers can
never fork the chain; unique constraints on ``seq`` and ``prev_hash`` are the last line of defence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from pecmail.certification.models import ProviderLogEntry, ProviderLogHead
from pecmail.lib import oncommit
from pecmail.lib.rows import rows_saved, statement_with

GENESIS = "0" * 64
RETENTION_MONTHS = 30
HEAD_ID = 1


@dataclass
class LogVerifyReport:
    ok: bool
    rows: int
    first_seq: int | None = None
    last_seq: int | None = None
    # The first bad row and what is wrong with it: "altered", "inserted" or "deleted".
    bad_seq: int | None = None
    problem: str = ""
    message: str = ""


def _text(value: str, limit: int | None = None) -> str:
    # PostgreSQL text cannot hold NUL; hostile subjects must still be logged, so replace it.
    value = str(value).replace("\x00", "\ufffd")
    return value[:limit] if limit else value


def _timestamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical(entry: ProviderLogEntry) -> bytes:
    """The bytes a row's hash covers: sorted, compact JSON of every field but ``hash``."""
    return json.dumps(
        {
            "seq": entry.seq,
            "at": _timestamp(entry.at),
            "event": entry.event,
            "identifier": entry.identifier,
            "msgid": entry.msgid,
            "sender": entry.sender,
            "recipients": list(entry.recipients),
            "subject": entry.subject,
            "related_ids": list(entry.related_ids),
            "provider": entry.provider,
            "details": entry.details_json,
            "prev_hash": entry.prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def entry_hash(entry: ProviderLogEntry) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def _head_sql() -> tuple[str, str]:
    """The head's locking read and its update, as SQL: appends run on every message's path,
    and the ORM spends more building these two statements than the database running them."""
    table = connection.ops.quote_name(ProviderLogHead._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return (
        f"SELECT seq, hash FROM {table} WHERE id = %s{lock}",  # noqa: S608 - no user input
        f"UPDATE {table} SET seq = %s, hash = %s WHERE id = %s",  # noqa: S608 - no user input
    )


def _head_for_update() -> ProviderLogHead:
    """Lock the head row (creating it on the first append) and return it (for the sweep)."""
    log_head_lock()
    return ProviderLogHead.objects.get(pk=HEAD_ID)


def log_head_lock() -> tuple[int, str]:
    """Lock the head row (creating it on the first append); return the last row's (seq, hash)."""
    select, _update = _head_sql()
    with connection.cursor() as cursor:
        cursor.execute(select, [HEAD_ID])
        row = cursor.fetchone()
        if row is None:
            ProviderLogHead.objects.get_or_create(
                pk=HEAD_ID, defaults={"hash": GENESIS, "anchor_prev_hash": GENESIS}
            )
            cursor.execute(select, [HEAD_ID])
            row = cursor.fetchone()
    return int(row[0]), row[1]


@dataclass(frozen=True)
class LogEvent:
    """One event to append; see ``log_append`` for the fields."""

    event: str
    identifier: str
    msgid: str = ""
    sender: str = ""
    recipients: Iterable[str] = ()
    subject: str = ""
    related_ids: Iterable[str] = ()
    provider: str = ""
    details: dict[str, Any] | None = None
    at: dt.datetime | None = None


# Events held back by ``log_deferred`` (timestamped when logged).
_deferred: oncommit.HeldBack[LogEvent] = oncommit.HeldBack("log_deferred")


@contextmanager
def log_deferred() -> Iterator[None]:
    """Append what is logged inside the block all at once, at its end, under one lock of the head.

    For a transaction that logs several events between longer work (storing messages, signing
    receipts): the head row is then locked by the last statements of the transaction only, so
    other writers wait for a commit, not for that work. Use it inside the transaction
    (``with transaction.atomic(), log_deferred():``). An event logged in a savepoint that is
    rolled back is dropped with it, as an immediate append would be; nothing is appended if the
    block raises. A nested block joins the outermost one.
    """
    with _deferred.block() as held:
        yield
    if held is not None:
        log_append_many(held.alive())


def log_append(
    *,
    event: str,
    identifier: str,
    msgid: str = "",
    sender: str = "",
    recipients: Iterable[str] = (),
    subject: str = "",
    related_ids: Iterable[str] = (),
    provider: str = "",
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> ProviderLogEntry | None:
    """Append one event to the provider log and return the stored row.

    ``at`` is the transaction's single timestamp (SPEC §7.2; default now). Runs in its own
    atomic block: inside a caller's transaction the log row commits or rolls back with it.
    Inside ``log_deferred`` the row is written at the end of that block and None is returned.
    """
    entries = log_append_many(
        [
            LogEvent(
                event=event,
                identifier=identifier,
                msgid=msgid,
                sender=sender,
                recipients=recipients,
                subject=subject,
                related_ids=related_ids,
                provider=provider,
                details=details,
                at=at,
            )
        ]
    )
    return entries[0] if entries else None


def log_append_many(events: Iterable[LogEvent]) -> list[ProviderLogEntry]:
    """Append several events in order under one lock of the head row (group commit).

    The chain is the same as appending them one by one: each row's ``prev_hash`` is the
    previous row's ``hash``. All rows commit or roll back together with the caller. Inside
    ``log_deferred`` they are written at the end of that block and nothing is returned.
    """
    pending = _pending(events)
    if not pending or _deferred.add(replace(item, at=at) for item, at in pending):
        return []  # nothing, or written at the end of the log_deferred block
    # No savepoint inside a caller's transaction (two round trips per append saved): a failure
    # here propagates and rolls the caller back anyway, as the log row must go with the event.
    with transaction.atomic(savepoint=False):
        entries = _chain(pending, *log_head_lock())
        if connection.vendor == "postgresql":
            # The rows and the head's move in one statement.
            sql, params = statement_with(
                _append_statements(entries, returning=True), ("SELECT id FROM log_rows", [])
            )
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                ids = sorted(row[0] for row in cursor.fetchall())
            rows_saved(entries, ids, using=connection.alias)
        else:
            ProviderLogEntry.objects.chain_insert(entries)
            with connection.cursor() as cursor:
                cursor.execute(_head_sql()[1], [entries[-1].seq, entries[-1].hash, HEAD_ID])
    return entries


def log_head_lock_sql() -> tuple[str, list[Any]]:
    """The locking read of the head, (seq, hash) of the last row, for a caller's own statement.

    With ``log_append_statements``: a caller that stores something and logs it can lock the
    head within its first statement and append within its second. No row when the log was
    never written: then lock it with ``log_head_lock``.
    """
    return _head_sql()[0], [HEAD_ID]


def log_append_statements(
    events: Iterable[LogEvent], *, head: tuple[int, str]
) -> list[tuple[str, str, list[Any]]]:
    """What appends ``events`` after ``head`` (the locked (seq, hash)), as ``statement_with`` parts.

    For PostgreSQL only: the rows' INSERT and the head's UPDATE, named ``log_rows`` and
    ``log_head``, to run within one statement of the caller's in the transaction that locked
    the head. Inside ``log_deferred`` the events are held for the end of that block and
    nothing is returned.
    """
    pending = _pending(events)
    if not pending or _deferred.add(replace(item, at=at) for item, at in pending):
        return []
    return _append_statements(_chain(pending, *head), returning=False)


def _append_statements(
    entries: list[ProviderLogEntry], *, returning: bool
) -> list[tuple[str, str, list[Any]]]:
    insert, params = ProviderLogEntry.objects.chain_insert_sql(entries, returning=returning)
    return [
        ("log_rows", insert, params),
        ("log_head", _head_sql()[1], [entries[-1].seq, entries[-1].hash, HEAD_ID]),
    ]


def _pending(events: Iterable[LogEvent]) -> list[tuple[LogEvent, dt.datetime]]:
    """The events with their timestamps (the caller's, or now), checked."""
    now = timezone.now()
    pending = []
    for item in events:
        if not item.event:
            raise ValueError("event is required")
        at = item.at or now
        if timezone.is_naive(at):
            raise ValueError("at must be an aware datetime")
        pending.append((item, at))
    return pending


def _chain(pending: list[tuple[LogEvent, dt.datetime]], seq: int, prev_hash: str) -> list[ProviderLogEntry]:
    """The rows for ``pending`` after the row (seq, prev_hash), each hashed onto the one before."""
    entries = []
    for item, at in pending:
        seq += 1
        entry = ProviderLogEntry(
            seq=seq,
            at=at,
            event=_text(item.event, 64),
            identifier=_text(item.identifier, 255),
            msgid=_text(item.msgid, 998),
            sender=_text(item.sender, 254),
            recipients=[_text(r) for r in item.recipients],
            subject=_text(item.subject),
            related_ids=[_text(r) for r in item.related_ids],
            provider=_text(item.provider, 200),
            details_json=json.dumps(
                item.details or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ),
            prev_hash=prev_hash,
        )
        entry.hash = prev_hash = entry_hash(entry)
        entries.append(entry)
    return entries


def log_verify() -> LogVerifyReport:
    """Walk the whole chain; report the first altered, inserted or deleted row."""
    head = ProviderLogHead.objects.filter(pk=HEAD_ID).first()
    if head is None:
        exists = ProviderLogEntry.objects.exists()
        if exists:
            first = ProviderLogEntry.objects.order_by("seq").values_list("seq", flat=True).first()
            return LogVerifyReport(
                ok=False,
                rows=0,
                bad_seq=first,
                problem="inserted",
                message="rows exist but the log head is missing",
            )
        return LogVerifyReport(ok=True, rows=0, message="the log is empty")
    expected_seq = head.anchor_seq
    expected_prev = head.anchor_prev_hash
    rows = 0
    first_seq: int | None = None

    def fail(seq: int | None, problem: str, message: str) -> LogVerifyReport:
        return LogVerifyReport(
            ok=False,
            rows=rows,
            first_seq=first_seq,
            last_seq=expected_seq - 1,
            bad_seq=seq,
            problem=problem,
            message=message,
        )

    for entry in ProviderLogEntry.objects.order_by("seq").iterator(chunk_size=2000):
        if first_seq is None:
            first_seq = entry.seq
        if entry.seq > head.seq:
            return fail(entry.seq, "inserted", f"row #{entry.seq} is after the last appended row #{head.seq}")
        if entry.seq < expected_seq:
            return fail(
                entry.seq, "inserted", f"row #{entry.seq} precedes the retention anchor #{expected_seq}"
            )
        if entry.seq > expected_seq:
            missing = (
                f"#{expected_seq}" if entry.seq == expected_seq + 1 else f"#{expected_seq}–#{entry.seq - 1}"
            )
            return fail(entry.seq, "deleted", f"row {missing} is missing before row #{entry.seq}")
        if entry_hash(entry) != entry.hash:
            return fail(entry.seq, "altered", f"row #{entry.seq} does not match its hash")
        if entry.prev_hash != expected_prev:
            return fail(
                entry.seq,
                "inserted",
                f"row #{entry.seq} does not follow the row before it (inserted or replaced)",
            )
        rows += 1
        expected_seq = entry.seq + 1
        expected_prev = entry.hash
    if expected_seq - 1 != head.seq:
        return fail(
            expected_seq, "deleted", f"rows #{expected_seq}–#{head.seq} at the end of the log are missing"
        )
    if expected_prev != head.hash:
        return fail(head.seq, "altered", f"row #{head.seq} does not match the recorded head of the log")
    return LogVerifyReport(
        ok=True,
        rows=rows,
        first_seq=first_seq,
        last_seq=head.seq if rows else None,
        message=f"{rows} rows, chain intact",
    )


def retention_cutoff(now: dt.datetime | None = None) -> dt.datetime:
    """Rows strictly older than this may go: 30 months, or the longer PEC_LOG_RETENTION_DAYS."""
    now = now or timezone.now()
    by_months = now - relativedelta(months=RETENTION_MONTHS)
    by_days = now - dt.timedelta(days=getattr(settings, "PEC_LOG_RETENTION_DAYS", 0))
    return min(by_months, by_days)


def log_sweep(now: dt.datetime | None = None) -> int:
    """Remove the oldest rows past retention; return how many went.

    Only a prefix of the chain is removed (up to the first row still within retention), and the
    head records that row's ``prev_hash`` as the anchor, so ``log_verify`` still passes.
    """
    cutoff = retention_cutoff(now)
    with transaction.atomic():
        head = _head_for_update()
        keep = (
            ProviderLogEntry.objects.filter(at__gte=cutoff, seq__gte=head.anchor_seq)
            .order_by("seq")
            .values_list("seq", "prev_hash")
            .first()
        )
        if keep is None:
            anchor_seq, anchor_prev = head.seq + 1, head.hash
        else:
            anchor_seq, anchor_prev = keep
        if anchor_seq == head.anchor_seq:
            return 0
        removed, _ = ProviderLogEntry.objects.filter(seq__lt=anchor_seq).retention_delete()
        ProviderLogHead.objects.filter(pk=HEAD_ID).update(
            anchor_seq=anchor_seq, anchor_prev_hash=anchor_prev, swept_at=now or timezone.now()
        )
    return removed


def log_export(*, day: dt.date, tz: dt.tzinfo | None = None) -> bytes:
    """Return one day of the log (local day in ``tz``, default the site time zone) as JSON lines.

    Each line is a row's canonical serialisation plus its ``hash``, in chain order, so the file
    can be checked offline and signed (``smime.sign_attached``) as the daily log segment.
    """
    tz = tz or timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    end = start + dt.timedelta(days=1)
    lines = []
    for entry in (
        ProviderLogEntry.objects.filter(at__gte=start, at__lt=end).order_by("seq").iterator(chunk_size=2000)
    ):
        row = json.loads(canonical(entry))
        row["hash"] = entry.hash
        lines.append(json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
