"""Writes of the transport app: the durable inbound commit and what follows from it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from pecmail.lib.rows import rows_insert, rows_insert_sql, rows_saved, statement_with
from pecmail.mail.models import Mailbox

from .models import InboundMessage, OutboxItem
from .outbox import outbox_add_many

if TYPE_CHECKING:
    from pecmail.certification.classify import Classification
    from pecmail.certification.log import LogEvent

TASK_INBOUND_PROCESS = "transport.inbound_process"
TASK_INBOUND_PROCESS_MANY = "transport.inbound_process_many"


def local_domains() -> frozenset[str]:
    """The mail domains this provider serves."""
    extra = getattr(settings, "PEC_LOCAL_DOMAINS", ())
    return frozenset(d.strip().lower() for d in (settings.PEC_DOMAIN, *extra) if d.strip())


def service_address() -> str:
    """The provider's own mailbox for receipts addressed to the provider (``mailReceipt``)."""
    return getattr(settings, "PEC_SERVICE_ADDRESS", "") or f"posta-certificata@{settings.PEC_DOMAIN}"


def is_postmaster(address: str) -> bool:
    """``postmaster@`` one of our domains, which every SMTP server must accept (RFC 5321 §4.5.1)."""
    local, _, _domain = address.strip().rpartition("@")
    return local.lower() == "postmaster" and domain_is_local(address)


def postmaster_mailboxes() -> list[str]:
    """Where mail for postmaster@ is filed: the mailboxes in ``PEC_POSTMASTER``."""
    return [a.strip().lower() for a in getattr(settings, "PEC_POSTMASTER", ()) if a.strip()]


def address_domain(address: str) -> str:
    return address.rpartition("@")[2].strip().rstrip(".").lower()


def domain_is_local(address: str) -> bool:
    return address_domain(address) in local_domains()


def max_message_size() -> int:
    """The largest DATA ``pec smtpd`` takes (advertised as SIZE, 552 above it)."""
    return int(getattr(settings, "PEC_SMTP_MAX_MESSAGE_SIZE", settings.PEC_MAX_TOTAL_SIZE))


def recipient_policy(*, address: str) -> bool | None:
    """None for an address we do not serve; else whether it accepts mail from outside PEC.

    The service address (``mailReceipt``) takes everything at SMTP, unclassified: receipts
    from other providers come to it, and the Incoming Point sorts out the rest. So does
    postmaster@ (RFC 5321 §4.5.1): what comes to it is ordinary mail (bounces, abuse reports),
    filed in an anomaly envelope in the ``PEC_POSTMASTER`` mailboxes.
    """
    if address.strip().lower() == service_address().lower() or is_postmaster(address):
        return True
    accepts = (
        Mailbox.objects.filter(address__iexact=address.strip())
        .values_list("accept_ordinary_mail", flat=True)
        .first()
    )
    return accepts


@dataclass(frozen=True)
class Admission:
    accept: bool
    kind: str = ""


def inbound_admission(*, raw: bytes, rcpt_tos: list[str], refusing: set[str] | None = None) -> Admission:
    """Decide at DATA whether the message may be accepted at all.

    Only mail that is not valid PEC can be refused here: when every recipient refuses
    ordinary mail (SPEC §2.3, answered 554). Classification runs only when it can change
    the answer, so the common case costs nothing. ``refusing`` (the lower-cased addresses
    that refuse ordinary mail, as learnt at RCPT time) spares the query.
    """
    addresses = [a.strip().lower() for a in rcpt_tos]
    if service_address().lower() in addresses:
        return Admission(accept=True)
    if refusing is None:
        refusing = set(
            Mailbox.objects.filter(address__in=addresses, accept_ordinary_mail=False).values_list(
                "address", flat=True
            )
        )
    if not refusing.intersection(addresses):
        return Admission(accept=True)
    from pecmail.certification.classify import classify
    from pecmail.certification.index import trust_store

    return admission_decide(classify(raw, trust=trust_store()), rcpt_tos=addresses, refusing=refusing)


def admission_decide(result: Classification, *, rcpt_tos: list[str], refusing: set[str]) -> Admission:
    """The DATA answer for a classified message: refuse non-PEC mail only if every recipient refuses it."""
    if result.valid and result.kind not in ("anomalia", "ordinary", "malformed"):
        return Admission(accept=True, kind=result.kind)
    if all(a.strip().lower() in refusing for a in rcpt_tos):
        return Admission(accept=False, kind=result.kind)
    return Admission(accept=True, kind=result.kind)


@dataclass(frozen=True)
class InboundRequest:
    """One SMTP transaction to store: the DATA bytes and what the session knew.

    ``raw_sha256`` may come precomputed (a forked ``pec smtpd`` worker hashes the bytes
    before handing them to its writer); ``size`` is always ``len(raw)``.
    """

    raw: bytes
    mail_from: str
    rcpt_tos: list[str]
    peer: str = ""
    helo: str = ""
    tls: bool = False
    kind: str = ""
    raw_sha256: str = ""

    @property
    def size(self) -> int:
        return len(self.raw)

    def digest(self) -> str:
        return self.raw_sha256 or hashlib.sha256(self.raw).hexdigest()


def inbound_store(
    *,
    raw: bytes,
    mail_from: str,
    rcpt_tos: list[str],
    peer: str = "",
    helo: str = "",
    tls: bool = False,
    kind: str = "",
    publish_on_commit: bool = False,
) -> tuple[InboundMessage, int]:
    """Store an accepted SMTP transaction durably; return the row and its outbox item id.

    Only after this returns may the SMTP server answer 250.
    """
    request = InboundRequest(
        raw=raw, mail_from=mail_from, rcpt_tos=rcpt_tos, peer=peer, helo=helo, tls=tls, kind=kind
    )
    ((inbound, item),) = inbound_store_many([request])
    if publish_on_commit:
        from .outbox import outbox_publish

        transaction.on_commit(lambda: outbox_publish(item_id=item.pk))
    return inbound, item.pk


def inbound_store_many(
    requests: list[InboundRequest], *, mark_published: Iterable[int] = ()
) -> list[tuple[InboundMessage, OutboxItem]]:
    """Store accepted SMTP transactions durably in one transaction (group commit).

    One transaction holds the inbound rows with their bytes (``InboundMessage.raw``, the
    spool), their provider log rows and one outbox row that processes them all, in the order
    given: nothing is half-stored, and no file is written before the 250 (processing moves
    the bytes into content-addressed storage). Returns (row, the outbox item) per request.
    ``mark_published``: outbox rows of earlier batches that reached the broker since; they are
    marked in this transaction instead of one of their own.

    On PostgreSQL the transaction is two statements (see ``_store_in_two_statements``); the
    SMTP client waits for it before its 250.
    """
    now = timezone.now()
    rows = [
        InboundMessage(
            raw_sha256=request.digest(),
            raw=request.raw,
            size=request.size,
            mail_from=request.mail_from,
            rcpt_tos=request.rcpt_tos,
            peer=request.peer,
            helo=request.helo,
            tls=request.tls,
            kind=request.kind,
            received_at=now,
        )
        for request in requests
    ]
    marks = list(mark_published)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            item = _store_in_two_statements(rows, marks)
        else:
            item = _store_statement_per_write(rows, marks)
    return [(row, item) for row in rows]


def _store_statement_per_write(rows: list[InboundMessage], marks: list[int]) -> OutboxItem:
    """``inbound_store_many``'s writes one after the other (SQLite: no writes in ``WITH``)."""
    from pecmail.certification.log import log_append_many

    from .outbox import outbox_mark_published

    outbox_mark_published(marks)
    rows_insert(rows)
    log_append_many(_received(rows))
    (item,) = outbox_add_many([_process_task(rows)])
    return item


def _store_in_two_statements(rows: list[InboundMessage], marks: list[int]) -> OutboxItem:
    """``inbound_store_many``'s writes on PostgreSQL, in two statements and so two round trips.

    The first marks the published outbox rows, inserts the inbound rows and locks the head of
    the provider log; the second, once the log rows are hashed onto the head, inserts them,
    moves the head and inserts the outbox row. The ORM's path takes seven statements, and at
    SMTP speed its round trips and statement building were most of the writer's time.
    """
    from pecmail.certification.log import log_append_statements, log_head_lock, log_head_lock_sql

    from .outbox import outbox_mark_published_sql

    insert_sql, insert_params = rows_insert_sql(rows, returning=True)
    sql, params = statement_with(
        [
            ("marked", *outbox_mark_published_sql(marks)),
            ("inbound", insert_sql, insert_params),
            ("head", *log_head_lock_sql()),
        ],
        (
            "SELECT ARRAY(SELECT id FROM inbound ORDER BY id), (SELECT seq FROM head), (SELECT hash FROM head)",
            [],
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids, seq, prev_hash = cursor.fetchone()
        rows_saved(rows, ids, using=connection.alias)
        if seq is None:  # the log's very first row: create its head
            seq, prev_hash = log_head_lock()
        task_name, kwargs = _process_task(rows)
        item = OutboxItem(task_name=task_name, kwargs=kwargs)
        insert_sql, insert_params = rows_insert_sql([item], returning=True)
        cursor.execute(
            *statement_with(
                log_append_statements(_received(rows), head=(seq, prev_hash)), (insert_sql, insert_params)
            )
        )
        rows_saved([item], [cursor.fetchone()[0]], using=connection.alias)
    return item


def _received(rows: list[InboundMessage]) -> list[LogEvent]:
    """The ``ricezione`` log events of stored inbound rows."""
    from pecmail.certification.log import LogEvent

    return [
        LogEvent(
            event="ricezione",
            identifier=f"inbound-{row.pk}",
            sender=row.mail_from,
            recipients=row.rcpt_tos,
            details={"sha256": row.raw_sha256, "size": row.size, "peer": row.peer, "tls": row.tls},
            at=row.received_at,
        )
        for row in rows
    ]


def _process_task(rows: list[InboundMessage]) -> tuple[str, dict]:
    """The one Celery task that processes a batch: publishing costs as much as storing."""
    if len(rows) == 1:
        return TASK_INBOUND_PROCESS, {"inbound_id": rows[0].pk}
    return TASK_INBOUND_PROCESS_MANY, {"inbound_ids": [row.pk for row in rows]}
