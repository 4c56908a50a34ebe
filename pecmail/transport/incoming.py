"""The Incoming Point (SPEC §2.3–2.4): what happens to a message accepted by ``pec smtpd``.

- a valid transport envelope → one presa in carico per SMTP transaction to the sending
  provider's ``mailReceipt``, delivery to each mailbox, a delivery receipt (or no-dest
  notice) per recipient back to the sender;
- a valid receipt for one of our users → filed unchanged, linked to the Sent copy, and the
  Delivery row moved; a take-charge or virus report to our service address only moves rows;
- anything else → busta di anomalia for mailboxes that accept ordinary mail.

Every step is guarded by a unique row (TakeCharge, InboundDelivery, one receipt per sent
message × recipient × kind), so a re-run or a peer resending the same envelope does nothing.
"""

from __future__ import annotations

import datetime as dt
import email.message
import hashlib
import logging
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from pecmail.certification import envelopes, pki
from pecmail.certification.classify import Classification, classify
from pecmail.certification.index import trust_store
from pecmail.certification.log import LogEvent, log_append, log_append_many, log_deferred
from pecmail.lib.prepared import PreparedRead, PreparedUpdate
from pecmail.lib.rows import row_insert_new, rows_insert
from pecmail.mail import parsing, storage
from pecmail.mail.models import Delivery, Mailbox, Message
from pecmail.mail.pipeline import delivery_receipt_build, envelope_deliver_local, headers_parse, inbox_of
from pecmail.mail.services import message_store

from . import scanner
from .models import InboundDelivery, InboundMessage, TakeCharge
from .notices import delivery_error_issue
from .outbound import outbound_batch, outbound_enqueue
from .services import is_postmaster, postmaster_mailboxes, service_address

log = logging.getLogger(__name__)

RECEIPT_KINDS = (
    "presa-in-carico",
    "avvenuta-consegna",
    "errore-consegna",
    "preavviso-errore-consegna",
    "rilevazione-virus",
)


_INBOUND = PreparedRead(lambda pk: InboundMessage.objects.filter(pk=pk))


def inbound_process(*, inbound_id: int) -> str:
    """Process one accepted SMTP transaction; returns what it was ("skipped" if already done)."""
    inbound = _INBOUND.first(inbound_id)
    if inbound is None:
        raise InboundMessage.DoesNotExist(f"no inbound message {inbound_id}")
    if inbound.state == InboundMessage.State.PROCESSED:
        return "skipped"
    raw = _inbound_raw(inbound)
    result = classify(raw, trust=trust_store())
    now = timezone.now()
    headers = headers_parse(raw)
    if result.valid and not _signer_manages_sender(headers, result):
        result.valid = False
        result.problems.append("the From domain is not managed by the signing provider")
    if result.valid and result.kind == "posta-certificata":
        # Marks the row processed itself, in the transaction that does the work.
        _envelope_accept(inbound=inbound, raw=raw, headers=headers, result=result, now=now)
        return result.kind
    if result.valid and result.kind in RECEIPT_KINDS:
        outcome = _receipt_accept(inbound=inbound, raw=raw, result=result, now=now)
    else:
        outcome = _anomaly_deliver(inbound=inbound, raw=raw, result=result, now=now)
    _mark_processed(inbound, result, now, outcome)
    return result.kind


_MARK_PROCESSED = PreparedUpdate(
    lambda pk: InboundMessage.objects.filter(pk=pk, state=InboundMessage.State.RECEIVED),
    "state",
    "kind",
    "pec_id",
    "processed_at",
    "outcome",
    "raw",
)


def _mark_processed(inbound: InboundMessage, result: Classification, now: dt.datetime, outcome: dict) -> None:
    _MARK_PROCESSED(
        inbound.pk,
        state=InboundMessage.State.PROCESSED,
        kind=result.kind,
        pec_id=(result.pec_id or "")[:255],
        processed_at=now,
        outcome=outcome,
        raw=None,  # the bytes are in storage now (``_inbound_raw``)
    )


# Messages processed in one transaction at most (SQLite holds its write lock for all of it).
BATCH_MAX = 16
# Rows whose processing just failed (pk → monotonic time): this process leaves them out of the
# rows it takes along for as long, so that a row that fails every time (bytes damaged in the
# spool, for the operator) costs one failed batch, not every later one. Its own task and the
# retry sweep still run it.
FAILED_TTL = 600.0
_failed: dict[int, float] = {}

# The other rows still to process, oldest first, through the partial index ``inbound_received``;
# a few more than a batch takes, for the failed ones left out.
_WAITING = PreparedRead(
    lambda pk: (
        InboundMessage.objects.filter(state=InboundMessage.State.RECEIVED)
        .exclude(pk=pk)
        .order_by("pk")
        .values_list("pk", flat=True)[: BATCH_MAX + 15]
    )
)


def _waiting(inbound_id: int) -> list[int]:
    now = time.monotonic()
    for pk in [pk for pk, at in _failed.items() if now - at > FAILED_TTL]:
        del _failed[pk]
    return [pk for pk in _WAITING(inbound_id) if pk not in _failed][: BATCH_MAX - 1]


def inbound_process_waiting(*, inbound_id: int) -> str:
    """The task of one SMTP transaction: this message, and the messages waiting behind it.

    A peer sends over few sessions, one transaction after the other, and ``pec smtpd`` commits
    each on its own when they come one at a time, so under load what waits is a queue of
    one-message tasks. The first of them to run takes up to ``BATCH_MAX`` - 1 of the waiting
    rows along, as a batch of ``inbound_process_batch`` (``_process_chunk``): one transaction,
    one commit and one lock of the log head for all of them. Their own tasks then find them
    processed (and take along what waits behind them in turn). Returns this message's outcome.
    """
    waiting = _waiting(inbound_id)
    if not waiting:
        try:
            return inbound_process(inbound_id=inbound_id)
        except Exception:
            _failed[inbound_id] = time.monotonic()
            raise
    return _process_chunk([inbound_id, *waiting])[inbound_id]


def inbound_process_batch(inbound_ids: list[int]) -> dict[str, int]:
    """Process what one group commit of ``pec smtpd`` stored; returns a count per outcome.

    Up to ``BATCH_MAX`` messages go in one transaction with one commit and one lock of the log
    head (``log_deferred``), so under load, when batches grow, each message costs less. Should
    any of them fail, that transaction is rolled back and each message is processed on its
    own: the failing one stays ``received`` for the retry sweep (``inbound_retry_due``) and
    holds back none of the others. What a transaction queues (receipts to send) goes out after
    its commit, in one handoff (``outbound_batch``).
    """
    outcomes: dict[str, int] = {}
    for start in range(0, len(inbound_ids), BATCH_MAX):
        for outcome in _process_chunk(inbound_ids[start : start + BATCH_MAX]).values():
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def _process_chunk(chunk: list[int]) -> dict[int, str]:
    """Process ``chunk`` (at most ``BATCH_MAX`` rows) in one transaction; each row's outcome.

    A row another worker holds (in a batch of its own) is "skipped", not waited for: ``SKIP
    LOCKED`` on PostgreSQL, so that two batches never wait on each other or process a row
    twice; SQLite has one writer at a time anyway. Its holder processes it, or, should its
    batch fail, processes it on its own.
    """
    claimed = chunk
    if len(chunk) > 1:
        try:
            with transaction.atomic(), log_deferred(), outbound_batch():
                claimed = list(
                    InboundMessage.objects.select_for_update(skip_locked=True)
                    .filter(pk__in=sorted(chunk), state=InboundMessage.State.RECEIVED)
                    .order_by("pk")
                    .values_list("pk", flat=True)
                )
                done = {pk: inbound_process(inbound_id=pk) for pk in claimed}
            return {pk: done.get(pk, "skipped") for pk in chunk}
        except Exception:
            log.warning(
                "transport: a batch of %d inbound messages failed; processing them one by one",
                len(claimed),
                exc_info=True,
            )
    outcomes = {pk: "skipped" for pk in chunk}
    for inbound_id in claimed:
        try:
            outcomes[inbound_id] = inbound_process(inbound_id=inbound_id)
        except Exception:
            log.exception(
                "transport: processing inbound %s failed; the retry sweep will run it again", inbound_id
            )
            outcomes[inbound_id] = "failed"
            _failed[inbound_id] = time.monotonic()
    return outcomes


def _inbound_raw(inbound: InboundMessage) -> bytes:
    """The received bytes, moved from the spool into content-addressed storage first.

    Stored before anything refers to them, so a message, receipt or log row never points at
    bytes that are only in the spool; a re-run stores nothing twice. Spooled bytes that no
    longer match their digest (a damaged database) fail the processing and stay where they
    are, for the operator, as bytes missing from storage do.
    """
    if inbound.raw is None:
        return storage.raw_get(inbound.raw_sha256)
    raw = bytes(inbound.raw)
    if hashlib.sha256(raw).hexdigest() != inbound.raw_sha256:
        raise storage.RawMissing(f"inbound {inbound.pk}: spooled bytes do not match their digest")
    storage.raw_put(raw)
    return raw


def _signer_manages_sender(headers: email.message.Message, result: Classification) -> bool:
    """SPEC §2.3 check 5: the From domain is one of the signing provider's managedDomains."""
    provider = result.signature.provider if result.signature else None
    if provider is None:
        return False
    senders = parsing.addresses(headers, "From")
    if len(senders) != 1:
        return False
    domain = senders[0][1].rpartition("@")[2].strip().rstrip(".").lower()
    return domain in {d.lower() for d in provider.domains}


def _local_recipients(inbound: InboundMessage) -> list[str]:
    service = service_address().lower()
    out: list[str] = []
    for address in inbound.rcpt_tos:
        address = address.strip().lower()
        if address != service and address not in out:
            out.append(address)
    return out


def _envelope_transaction(
    headers: email.message.Message, result: Classification, when: dt.datetime
) -> envelopes.Transaction:
    to = [a for _n, a in parsing.addresses(headers, "To")]
    cc = [a for _n, a in parsing.addresses(headers, "Cc")]
    return envelopes.Transaction.from_daticert(result.daticert, to=to, cc=cc, when=when)


def _envelope_accept(
    *,
    inbound: InboundMessage,
    raw: bytes,
    headers: email.message.Message,
    result: Classification,
    now: dt.datetime,
) -> dict:
    """Take charge of the recipients not yet covered, deliver (or report a virus) to each, and
    mark the row processed: all in one transaction, so a crash anywhere leaves the row to the
    retry sweep with nothing half-done, and the log rows go in with one lock of the log head,
    taken at the end (not held while messages are stored and receipts signed).

    Recipients are claimed one by one (unique pec_id × recipient), so a peer that splits an
    envelope over several SMTP transactions gets one take-charge per transaction covering
    the new recipients, and one that resends it gets none. The receipts go out after the commit.
    """
    identity = pki.load_identity()
    provider = result.signature.provider
    tx = _envelope_transaction(headers, result, now)
    recipients = _local_recipients(inbound)
    outcome: dict = {"recipients": {}}
    events: list[LogEvent] = []
    # Scanned first: a scanner outage leaves nothing half-done, the retry sweep comes back later.
    virus = scanner.scan(result.postacert or raw)
    with transaction.atomic(), outbound_batch():
        claimed = [
            recipient
            for recipient in recipients
            if row_insert_new(
                InboundDelivery(
                    pec_id=tx.pec_id,
                    recipient=recipient,
                    inbound=inbound,
                    outcome=InboundDelivery.Outcome.PENDING,
                ),
                unique=("pec_id", "recipient"),
            )
        ]
        if claimed:
            built = envelopes.build_take_charge(tx, claimed, identity=identity, to=provider.mail_receipt)
            rows_insert(
                [
                    TakeCharge(
                        pec_id=tx.pec_id,
                        sender_provider=provider.name,
                        inbound=inbound,
                        recipients=claimed,
                        message_id=built.message_id,
                    )
                ]
            )
            outbound_enqueue(
                raw=built.raw,
                mail_from=identity.service_address,
                recipients=[provider.mail_receipt],
                kind=built.kind,
                pec_id=tx.pec_id,
            )
            events.append(
                LogEvent(
                    event="presa-in-carico",
                    identifier=built.message_id.strip("<>"),
                    msgid=f"<{tx.pec_id}>",
                    sender=tx.sender,
                    recipients=claimed,
                    subject=tx.subject,
                    related_ids=[tx.pec_id],
                    provider=provider.name,
                    at=now,
                )
            )
            outcome["take_charge"] = built.message_id
        # Claimed by this run or left pending by an earlier one that failed after its claims.
        for row_id, recipient in _PENDING_RECIPIENTS(tx.pec_id, recipients):
            outcome["recipients"][recipient], event = _recipient_deliver(
                row_id=row_id,
                recipient=recipient,
                raw=raw,
                result=result,
                tx=tx,
                provider=provider,
                virus=virus,
                now=now,
            )
            if event is not None:
                events.append(event)
        if virus:
            scanner.quarantine_put(raw=raw, reason=virus, pec_id=tx.pec_id)
        log_append_many(events)
        _mark_processed(inbound, result, now, outcome)
    return outcome


_PENDING_RECIPIENTS = PreparedRead(
    lambda pec_id, recipients: InboundDelivery.objects.filter(
        pec_id=pec_id, recipient__in=recipients, outcome=InboundDelivery.Outcome.PENDING
    ).values_list("id", "recipient")
)
_INBOUND_DELIVERY_CLAIM = PreparedUpdate(
    lambda pk: InboundDelivery.objects.filter(pk=pk, outcome=InboundDelivery.Outcome.PENDING), "outcome"
)
_INBOUND_DELIVERY_DONE = PreparedUpdate(
    lambda pk: InboundDelivery.objects.filter(pk=pk), "outcome", "message_id", "notice_message_id"
)


def _recipient_deliver(
    *,
    row_id: int,
    recipient: str,
    raw: bytes,
    result: Classification,
    tx: envelopes.Transaction,
    provider,  # noqa: ANN001 - TrustedProvider
    virus: str | None,
    now: dt.datetime,
) -> tuple[str, LogEvent | None]:
    """Deliver one claimed recipient (its InboundDelivery row) and queue its receipt, inside the
    caller's transaction; returns the outcome ("duplicate" if another run got there first) and
    the event for the provider log."""
    identity = pki.load_identity()
    final = InboundDelivery.Outcome.VIRUS if virus else InboundDelivery.Outcome.DELIVERED
    claimed = _INBOUND_DELIVERY_CLAIM(row_id, outcome=final)
    if not claimed:
        return "duplicate", None
    if virus:
        built = envelopes.build_virus_detection(
            tx, recipient, virus, identity=identity, to=provider.mail_receipt
        )
        InboundDelivery.objects.filter(pk=row_id).update(notice_message_id=built.message_id)
        outcome = final
        outbound_enqueue(
            raw=built.raw,
            mail_from=identity.service_address,
            recipients=[provider.mail_receipt],
            kind=built.kind,
            pec_id=tx.pec_id,
        )
        event = "rilevazione-virus"
    else:
        # ``result`` is raw's classification from inbound_process: no second verification.
        (delivered,) = envelope_deliver_local(raw=raw, recipients=[recipient], classification=result)
        built, kind = delivery_receipt_build(
            envelope=raw,
            recipient=recipient,
            delivered=delivered.outcome == "delivered",
            when=now,
            classification=result,
        )
        outcome = delivered.outcome
        _INBOUND_DELIVERY_DONE(
            row_id,
            outcome=outcome,
            message_id=delivered.message.pk if delivered.message else None,
            notice_message_id=built.message_id,
        )
        # Receipts go to the sender (daticert mittente) through the sender's provider.
        outbound_enqueue(
            raw=built.raw,
            mail_from=identity.service_address,
            recipients=[tx.sender],
            kind=kind,
            pec_id=tx.pec_id,
        )
        event = kind
    return outcome, LogEvent(
        event=event,
        identifier=built.message_id.strip("<>"),
        msgid=f"<{tx.pec_id}>",
        sender=tx.sender,
        recipients=[recipient],
        subject=tx.subject,
        related_ids=[tx.pec_id],
        provider=provider.name,
        details={"virus": virus} if virus else None,
        at=now,
    )


# Read for every receipt that arrives: compiled once (``PreparedRead``).
_SENT_BY_PEC_ID = PreparedRead(
    lambda ids: (
        Message.objects.select_related("mailbox")
        .filter(kind=Message.Kind.SUBMITTED, pec_id__in=ids)
        .order_by("pk")[:1]
    )
)


def _referenced_sent(result: Classification) -> Message | None:
    ids = [
        i for i in [result.daticert.identificativo if result.daticert else "", *result.referenced_ids] if i
    ]
    return _SENT_BY_PEC_ID.first([i.strip("<>") for i in ids])


# Every receipt that arrives moves its Delivery row: compiled once.
_TAKEN_IN_CHARGE = PreparedUpdate(
    lambda message_id, recipients: Delivery.objects.filter(
        message_id=message_id, recipient__in=recipients, taken_in_charge_at__isnull=True
    ),
    "taken_in_charge_at",
)
_DELIVERED = PreparedUpdate(
    lambda message_id, recipient: Delivery.objects.filter(message_id=message_id, recipient=recipient).exclude(
        state=Delivery.State.DELIVERED
    ),
    "state",
    "delivered_at",
    "receipt",
)


def _receipt_accept(*, inbound: InboundMessage, raw: bytes, result: Classification, now: dt.datetime) -> dict:
    """A receipt from another provider about one of our users' messages."""
    d = result.daticert
    service = service_address().lower()
    recipients = [r.strip().lower() for r in inbound.rcpt_tos]
    outcome: dict = {"kind": result.kind}
    provider_name = result.signature.provider.name if result.signature and result.signature.provider else ""
    sent = _referenced_sent(result)
    if sent is None:
        # The Sent copy is gone (deleted) or never existed: a receipt for a user is still theirs.
        log.warning(
            "inbound %s: %s for an unknown message %s", inbound.pk, result.kind, result.referenced_ids
        )
        outcome["unlinked"] = _receipt_file_unlinked(inbound=inbound, raw=raw, result=result)
        return outcome
    with transaction.atomic():
        if result.kind == "presa-in-carico":
            covered = [a.lower() for a in (d.ricezione or [])] or [r.address.lower() for r in d.destinatari]
            moved = _TAKEN_IN_CHARGE(sent.pk, covered, taken_in_charge_at=d.data or now)
            outcome["taken_in_charge"] = moved
            if not moved:
                # Already recorded (a re-run, or a peer resending it): one log row per take-charge.
                return outcome
            log_append(
                event="ricevuta-ricevuta",
                identifier=result.pec_id or f"inbound-{inbound.pk}",
                msgid=f"<{sent.pec_id}>",
                sender=sent.mailbox.address,
                recipients=covered,
                subject=sent.subject,
                related_ids=[sent.pec_id],
                provider=provider_name,
                details={"kind": result.kind},
                at=now,
            )
            return outcome
        if result.kind == "rilevazione-virus":
            recipient = (d.consegna or "").lower()
            delivery = (
                Delivery.objects.select_related("message__mailbox")
                .filter(message=sent, recipient__iexact=recipient)
                .first()
            )
            if delivery is not None:
                delivery_error_issue(
                    delivery=delivery,
                    errore="altro",
                    reason=d.errore_esteso or "virus",
                    virus=d.errore_esteso or "virus",
                )
            outcome["virus"] = recipient
            return outcome
        # Delivery receipts and notices are for the user: filed unchanged in the Inbox.
        owner_addresses = [a for a in recipients if a != service] or [sent.mailbox.address]
        if sent.mailbox.address.lower() in owner_addresses:
            mailbox = sent.mailbox  # as nearly always: the receipt comes to the sender
        else:
            mailbox = Mailbox.objects.filter(address__in=owner_addresses).first() or sent.mailbox
        recipient = (d.consegna or "").lower()
        kind = result.kind
        try:
            with transaction.atomic():
                stored = message_store(
                    mailbox=mailbox,
                    raw=raw,
                    kind=kind,
                    folder=inbox_of(mailbox),
                    related=sent,
                    recipient=recipient,
                    classification=result,
                )
        except IntegrityError:
            outcome["duplicate"] = True
            return outcome
        # Delivery.recipient is stored lower-cased (message_accept), like ``recipient``.
        if kind == "avvenuta-consegna":
            _DELIVERED(
                sent.pk, recipient, state=Delivery.State.DELIVERED, delivered_at=d.data or now, receipt=stored
            )
        elif kind == "errore-consegna":
            Delivery.objects.filter(message=sent, recipient=recipient).exclude(
                state=Delivery.State.DELIVERED
            ).update(
                state=Delivery.State.ERROR, error=(d.errore_esteso or d.errore or "")[:2000], receipt=stored
            )
        log_append(
            event="ricevuta-ricevuta",
            identifier=result.pec_id or f"inbound-{inbound.pk}",
            msgid=f"<{sent.pec_id}>",
            sender=sent.mailbox.address,
            recipients=[recipient] if recipient else [],
            subject=sent.subject,
            related_ids=[sent.pec_id],
            provider=provider_name,
            details={"kind": kind},
            at=now,
        )
        outcome["stored"] = stored.pk
    return outcome


def _receipt_file_unlinked(*, inbound: InboundMessage, raw: bytes, result: Classification) -> list[str]:
    """File a receipt that matches no sent message in each addressed user's Inbox, once."""
    service = service_address().lower()
    key = f"receipt:{result.pec_id or inbound.raw_sha256}"
    filed = []
    for recipient in _local_recipients(inbound):
        mailbox = Mailbox.objects.filter(address=recipient).first()
        if mailbox is None or recipient == service:
            continue
        with transaction.atomic():
            try:
                with transaction.atomic():
                    InboundDelivery.objects.create(
                        pec_id=key,
                        recipient=recipient,
                        inbound=inbound,
                        outcome=InboundDelivery.Outcome.DELIVERED,
                    )
            except IntegrityError:
                continue
            stored = message_store(mailbox=mailbox, raw=raw, kind=result.kind, classification=result)
            InboundDelivery.objects.filter(pec_id=key, recipient=recipient).update(message_id=stored.pk)
            filed.append(recipient)
    return filed


def _anomaly_reason(result: Classification) -> str:
    if result.signature is None or not result.signature.signed:
        return "il messaggio non è firmato da un gestore di posta certificata"
    if not result.signature.valid:
        return "la firma digitale del messaggio non è valida"
    if not result.signature.trusted:
        return "la firma digitale del messaggio non risulta attendibile"
    return "il messaggio non è conforme: " + "; ".join(result.problems[:3])


def _anomaly_deliver(
    *, inbound: InboundMessage, raw: bytes, result: Classification, now: dt.datetime
) -> dict:
    """Wrap what is not valid PEC in a busta di anomalia for each mailbox that accepts it."""
    identity = pki.load_identity()
    reason = _anomaly_reason(result)
    built = envelopes.build_anomaly(raw, reason, identity=identity, when=now)
    key = f"sha256:{inbound.raw_sha256}"
    outcome: dict = {"reason": reason, "recipients": {}}
    recipients: list[str] = []
    postmasters = postmaster_mailboxes()
    for recipient in _local_recipients(inbound):
        if not is_postmaster(recipient):
            recipients.append(recipient)
        elif postmasters:
            recipients.extend(postmasters)
        else:
            log.warning("inbound %s: mail for %s, but PEC_POSTMASTER names no mailbox", inbound.pk, recipient)
            outcome["recipients"][recipient] = "no-postmaster"
    for recipient in dict.fromkeys(recipients):
        mailbox = Mailbox.objects.filter(address=recipient).first()
        with transaction.atomic():
            try:
                with transaction.atomic():
                    row = InboundDelivery.objects.create(
                        pec_id=key,
                        recipient=recipient,
                        inbound=inbound,
                        outcome=InboundDelivery.Outcome.DELIVERED,
                    )
            except IntegrityError:
                outcome["recipients"][recipient] = "duplicate"
                continue
            if mailbox is None or not mailbox.accept_ordinary_mail:
                InboundDelivery.objects.filter(pk=row.pk).update(outcome=InboundDelivery.Outcome.REFUSED)
                outcome["recipients"][recipient] = "refused"
                continue
            stored = message_store(mailbox=mailbox, raw=built.raw, kind=Message.Kind.ANOMALY)
            InboundDelivery.objects.filter(pk=row.pk).update(
                message_id=stored.pk, notice_message_id=built.message_id
            )
            log_append(
                event="busta-anomalia",
                identifier=built.message_id.strip("<>"),
                sender=inbound.mail_from,
                recipients=[recipient],
                details={"reason": reason, "problems": list(result.problems[:10])},
                at=now,
            )
            outcome["recipients"][recipient] = "anomalia"
    return outcome


def inbound_retry_due(*, now: dt.datetime | None = None, limit: int = 200) -> int:
    """Re-run processing for accepted messages still unprocessed after a while (a failed or lost task)."""
    from . import tasks

    now = now or timezone.now()
    ids = list(
        InboundMessage.objects.filter(
            state=InboundMessage.State.RECEIVED,
            received_at__lte=now
            - dt.timedelta(seconds=float(getattr(settings, "PEC_INBOUND_RETRY_AFTER", 300))),
        ).values_list("id", flat=True)[:limit]
    )
    for inbound_id in ids:
        tasks.inbound_process.apply_async(kwargs={"inbound_id": inbound_id})
    return len(ids)
