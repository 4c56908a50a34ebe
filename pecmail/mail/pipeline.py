"""The certification pipeline for submissions from pecmail's own users, and local delivery.

    message_submit (services) ─▶ message_accept ─▶ message_deliver_local ─▶ delivery_local × N
                                      │                                          │
                          acceptance or non-acceptance                delivery receipt or
                          (signed, into the sender's Inbox)           avviso di mancata consegna

A submission is virus-scanned (``pecmail.transport.scanner``) before it is accepted: infected →
avviso di non accettazione per virus and the original quarantined; a scanner that cannot answer
leaves it pending (the task retries; the sweep re-enqueues it). A burst of submissions is
accepted in one transaction by the first task that runs (``message_accept``).

Every step claims its work with a conditional UPDATE inside one transaction, and unique
constraints (one acceptance per submission, one delivery per message × mailbox, one receipt
per message × recipient × kind × notice stage) make a repeated task a no-op. All PEC formats and signatures
come from ``pecmail.certification``; this module only decides, stores and links.

For the transport engineer:
- ``envelope_accepted`` may fire for several submissions in one transaction (a burst): a
  receiver that queues sends joins ``outbound_batch``, which the batch holds open.
- Recipients outside ``settings.PEC_DOMAIN`` stay ``Delivery.State.QUEUED``; the transport
  envelope to relay is ``storage.raw_get(delivery.message.envelope_sha256)``. The signal
  ``envelope_accepted`` fires inside the accepting transaction with ``message_id``,
  ``remote_recipients``, ``message``, ``envelope`` (the signed bytes) and ``deliveries`` (the
  Delivery rows just created), so what a receiver queues commits with the acceptance or not at all.
- A transport envelope that arrives over SMTP for local recipients is delivered with
  ``envelope_deliver_local(raw=…, recipients=[…])``; the delivery receipts it calls for are built
  with ``delivery_receipt_build(envelope=…, recipient=…, delivered=…)`` and go back to the sender.
  Both take an optional ``classification=`` of the envelope, so a caller that has classified it
  already does not verify it again.
"""

from __future__ import annotations

import email.message
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesHeaderParser

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from pecmail.certification import classify as classify_module
from pecmail.certification import envelopes, index, pki
from pecmail.certification.log import LogEvent, log_append, log_append_many, log_deferred
from pecmail.certification.trust import TrustStore
from pecmail.lib.prepared import PreparedRead, PreparedUpdate
from pecmail.lib.rows import rows_insert
from pecmail.transport import scanner

from . import parsing, storage
from .models import Delivery, Folder, Mailbox, Message
from .services import folder_of
from .usage import mailbox_usage

logger = logging.getLogger(__name__)

# Sent inside the transaction that accepts a submission with remote recipients: kwargs
# message_id, remote_recipients, message (the Sent copy), envelope (the transport envelope's
# bytes). Receivers write only to the database (and content-addressed storage) and defer
# anything else with on_commit: their rows commit with the acceptance or roll back with it.
envelope_accepted = Signal()

# Sent (inside the storing transaction) when a message is filed in a mailbox's Inbox by any
# delivery path: local PEC delivery, SMTP in, receipts and notices. kwargs message_id, kind.
# Receivers must only enqueue work with delay_on_commit (pecmail.options runs rules and notices).
message_delivered = Signal()


def local_domain() -> str:
    return settings.PEC_DOMAIN.lower()


def is_local(address: str) -> bool:
    return address.rpartition("@")[2].lower() == local_domain()


def headers_parse(raw: bytes) -> email.message.Message:
    """The top-level headers of ``raw`` only (compat32, like ``parsing.parse_bytes``).

    The pipeline reads From/To/Cc/Bcc many times per message; parsing the whole MIME tree
    (the original, its attachments, the signature) for that was a large share of its CPU.
    """
    return BytesHeaderParser(policy=policy.compat32).parsebytes(raw)


def trust_store() -> TrustStore:
    """The providers index (ours included once ``pec init-provider`` has registered us)."""
    return index.trust_store()


def is_certified_domain(address: str) -> bool:
    """A recipient is certificato when its domain is ours or a PEC domain of the providers index."""
    domain = address.rpartition("@")[2].lower()
    if domain == local_domain():
        return True
    try:
        return bool(trust_store().is_pec_domain(domain))
    except Exception:  # noqa: BLE001 - an unreadable index must not certify an ordinary domain
        logger.exception("providers index unavailable; %s treated as esterno", domain)
        return False


# --- Acceptance -------------------------------------------------------------------------


def formal_problems(*, sent: Message, raw: bytes) -> list[str]:
    """The reasons (SPEC §2.1, §13.1) the submission must be refused; empty when it passes.

    In Italian, like the rest of the avviso di non accettazione they are written into.
    """
    problems: list[str] = []
    headers = headers_parse(raw)
    senders = parsing.addresses(headers, "From")
    if len(senders) != 1 or senders[0][1] != sent.mailbox.address.lower():
        problems.append("Il mittente non corrisponde alla casella autenticata.")
    to = [a.lower() for a in sent.to_addresses]
    cc = [a.lower() for a in sent.cc_addresses]
    if not to:
        problems.append("Nessun destinatario nel campo A (To).")
    rcpt = recipients_of(sent)
    if not set(rcpt) <= set(to) | set(cc):
        problems.append("Destinatari SMTP non presenti nei campi A (To) o Cc.")
    if sent.bcc_addresses or headers.get("Bcc") is not None:
        problems.append("Destinatari in copia nascosta (Bcc) non ammessi.")
    for address in [*to, *cc, *rcpt]:
        try:
            validate_email(address)
        except ValidationError:
            problems.append(f"Indirizzo non valido: {address}")
    max_recipients = getattr(settings, "PEC_MAX_RECIPIENTS", 500)
    if len(rcpt) > max_recipients:
        problems.append(f"Troppi destinatari (al massimo {max_recipients}).")
    max_total = getattr(settings, "PEC_MAX_TOTAL_SIZE", 100 * 1024 * 1024)
    if len(raw) * max(len(rcpt), 1) > max_total:
        problems.append("Dimensione del messaggio per numero di destinatari oltre il limite del gestore.")
    return problems


def recipients_of(sent: Message) -> list[str]:
    """The SMTP recipients of a submission: its RCPT list, else To ∪ Cc in order."""
    if sent.rcpt_addresses is not None:
        return [a.lower() for a in sent.rcpt_addresses]
    seen: list[str] = []
    for address in [*sent.to_addresses, *sent.cc_addresses]:
        if address.lower() not in seen:
            seen.append(address.lower())
    return seen


def _transaction_for(*, sent: Message, raw: bytes, pec_id: str, when: datetime) -> envelopes.Transaction:
    """The certification data of a submission, read from the original's own headers."""
    types = {a: ("certificato" if is_certified_domain(a) else "esterno") for a in recipients_of(sent)}
    return envelopes.Transaction.from_message(raw, pec_id=pec_id, when=when, recipient_types=types)


# The reads every message makes, compiled once per process (``PreparedRead``).
_PENDING_RAW = PreparedRead(
    lambda pk: Message.objects.filter(
        pk=pk, kind=Message.Kind.SUBMITTED, submission_state=Message.Submission.PENDING
    ).values_list("raw_sha256", flat=True)
)
_CLAIM = PreparedUpdate(
    lambda pk: Message.objects.filter(
        pk=pk, kind=Message.Kind.SUBMITTED, submission_state=Message.Submission.PENDING
    ),
    "submission_state",
)
_ENVELOPED = PreparedUpdate(lambda pk: Message.objects.filter(pk=pk), "pec_id", "envelope_sha256")
# The other submissions waiting for acceptance, oldest first (a partial index holds only them).
_WAITING = PreparedRead(
    lambda pk: (
        Message.objects.filter(kind=Message.Kind.SUBMITTED, submission_state=Message.Submission.PENDING)
        .exclude(pk=pk)
        .order_by("pk")
        .values_list("pk", "raw_sha256")[: ACCEPT_BATCH_MAX - 1]
    )
)
_SUBMISSION = PreparedRead(lambda pk: Message.objects.select_related("mailbox").filter(pk=pk))
_MAILBOX = PreparedRead(lambda address: Mailbox.objects.filter(address=address))
_ALREADY_DELIVERED = PreparedRead(
    lambda mailbox_id, pec_id: Message.objects.filter(
        mailbox_id=mailbox_id, pec_id=pec_id, kind=Message.Kind.CERTIFIED
    ).order_by("pk")[:1]
)


def inbox_of(mailbox: Mailbox) -> Folder:
    """A mailbox's Inbox (every mailbox has one: ``Folder.DoesNotExist`` otherwise)."""
    return folder_of(mailbox, Folder.Role.INBOX)


def message_accept(*, message_id: int) -> str:
    """Accept or refuse a submission; returns "accepted", "refused" or "skipped" (already done).

    Under ONE timestamp: the PEC identifier, the signed acceptance receipt (or avviso di non
    accettazione) in the sender's Inbox linked to the Sent copy, the transport envelope,
    the Delivery rows and the log rows. Local recipients are delivered after commit.
    The original is virus-scanned first (SPEC §2.6): infected → avviso di non accettazione
    per virus and the original quarantined; raises ``scanner.ScannerUnavailable`` (leaving
    the submission pending for a retry) when the scanner cannot answer.

    Submissions waiting behind this one (a burst: a queue of tasks) are accepted in the same
    transaction, up to ``ACCEPT_BATCH_MAX``: one commit, one lock of the log head and one
    handoff of their envelopes for all of them (``_accept_batch``). Their own tasks then find
    nothing left to do.
    """
    pending_sha256 = _PENDING_RAW.first(message_id)
    if pending_sha256 is None:
        return "skipped"
    # Scanned before the claim and outside any transaction: a scanner outage leaves the
    # submission PENDING (never accepted unchecked) and clamd never holds a transaction open.
    raw = storage.raw_get(pending_sha256)
    scanned = {message_id: (raw, scanner.scan(raw))}
    scanned.update(_scan_waiting(message_id))
    if len(scanned) > 1:
        outcomes = _accept_batch(scanned)
        if outcomes is not None:
            return outcomes.get(message_id, "skipped")
        # The batch failed and was rolled back: each submission on its own, so that the one
        # that fails holds back none of the others (their own tasks would run them too).
        for other, (other_raw, other_virus) in scanned.items():
            if other == message_id:
                continue
            try:
                _accept_one(other, raw=other_raw, virus=other_virus)
            except Exception:
                logger.exception("pipeline: accepting submission %s failed; its own task will retry", other)
    return _accept_one(message_id, raw=raw, virus=scanned[message_id][1])


# Submissions accepted in one transaction at most (SQLite holds its write lock for all of it).
ACCEPT_BATCH_MAX = 16


def _scan_waiting(message_id: int) -> dict[int, tuple[bytes, str | None]]:
    """The other pending submissions (oldest first), read and scanned: ``{pk: (raw, virus)}``.

    One that cannot be scanned now (scanner outage) or read is left to its own task.
    """
    waiting: dict[int, tuple[bytes, str | None]] = {}
    for pk, sha256 in _WAITING(message_id):
        try:
            raw = storage.raw_get(sha256)
            waiting[pk] = (raw, scanner.scan(raw))
        except (scanner.ScannerUnavailable, storage.RawMissing):
            continue
    return waiting


def _accept_batch(scanned: dict[int, tuple[bytes, str | None]]) -> dict[int, str] | None:
    """Accept the submissions of ``scanned`` in one transaction; None if it failed (rolled back).

    Rows another worker holds (a batch of its own in progress) are skipped, not waited for
    (``SKIP LOCKED`` on PostgreSQL; SQLite has one writer at a time anyway), so two batches
    never wait on each other, and each submission is claimed once.
    """
    from pecmail.transport.outbound import outbound_batch

    try:
        with transaction.atomic(), log_deferred(), outbound_batch():
            free = (
                Message.objects.select_for_update(skip_locked=True)
                .filter(
                    pk__in=sorted(scanned),
                    kind=Message.Kind.SUBMITTED,
                    submission_state=Message.Submission.PENDING,
                )
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            # Each still claimed by its conditional UPDATE, as a lone one is: the lock only
            # keeps batches out of each other's way, the UPDATE is what makes the claim once.
            claimed = [pk for pk in free if _CLAIM(pk, submission_state=Message.Submission.ACCEPTED)]
            return {pk: _accept_claimed(pk, raw=scanned[pk][0], virus=scanned[pk][1]) for pk in claimed}
    except Exception:
        logger.warning(
            "pipeline: a batch of %d submissions failed; accepting them one by one",
            len(scanned),
            exc_info=True,
        )
        return None


def _accept_one(message_id: int, *, raw: bytes, virus: str | None) -> str:
    with transaction.atomic():
        # The claim: only one run moves the submission out of PENDING; a crash rolls it back.
        claimed = _CLAIM(message_id, submission_state=Message.Submission.ACCEPTED)
        if not claimed:
            return "skipped"
        return _accept_claimed(message_id, raw=raw, virus=virus)


def _accept_claimed(message_id: int, *, raw: bytes, virus: str | None) -> str:
    """The acceptance (or refusal) of a submission this transaction has just claimed."""
    (sent,) = _SUBMISSION(message_id)
    identity = pki.load_identity()
    when = timezone.now()
    pec_id = envelopes.new_pec_id(identity.domain, when)
    tx = _transaction_for(sent=sent, raw=raw, pec_id=pec_id, when=when)
    problems = formal_problems(sent=sent, raw=raw)
    inbox = inbox_of(sent.mailbox)
    if virus:
        return _refuse_for_virus(sent=sent, raw=raw, tx=tx, identity=identity, inbox=inbox, virus=virus)
    if problems:
        reason = " ".join(problems)
        built = envelopes.build_non_acceptance(tx, identity=identity, reason=reason)
        _store_notice(sent=sent, folder=inbox, built=built, kind=Message.Kind.NON_ACCEPTANCE)
        Message.objects.filter(pk=sent.pk).update(submission_state=Message.Submission.REFUSED, pec_id=pec_id)
        log_append(
            event="non-accettazione",
            identifier=pec_id,
            msgid=sent.client_msgid,
            sender=sent.mailbox.address,
            recipients=tx_addresses(tx),
            subject=sent.subject,
            details={"problems": problems},
            at=when,
        )
        return "refused"
    acceptance = envelopes.build_acceptance(tx, identity=identity)
    _store_notice(sent=sent, folder=inbox, built=acceptance, kind=Message.Kind.ACCEPTANCE)
    envelope = envelopes.build_transport_envelope(tx, raw, identity=identity)
    envelope_sha256 = storage.raw_put(envelope.raw)
    _ENVELOPED(sent.pk, pec_id=pec_id, envelope_sha256=envelope_sha256)
    sent.pec_id, sent.envelope_sha256 = pec_id, envelope_sha256
    to = {a.lower() for a in sent.to_addresses}
    rcpt = recipients_of(sent)
    deliveries = rows_insert(
        [
            Delivery(
                message=sent,
                recipient=address,
                header=Delivery.Header.TO if address in to else Delivery.Header.CC,
                certified=tx.recipient_types.get(address) == "certificato",
            )
            for address in rcpt
        ]
    )
    # Both rows under one lock of the log head (the chain is the same as two appends).
    log_append_many(
        LogEvent(
            event=event,
            identifier=pec_id,
            msgid=sent.client_msgid,
            sender=sent.mailbox.address,
            recipients=tx_addresses(tx),
            subject=sent.subject,
            at=when,
        )
        for event in ("accettazione", "busta-trasporto")
    )
    remote = [a for a in rcpt if not is_local(a)]
    from . import tasks

    if len(remote) < len(rcpt):
        tasks.message_deliver_local.delay_on_commit(sent.pk)
    if remote:
        envelope_accepted.send(
            sender=Message,
            message_id=sent.pk,
            remote_recipients=remote,
            message=sent,
            envelope=envelope.raw,
            deliveries=deliveries,
        )
    return "accepted"


def _refuse_for_virus(
    *,
    sent: Message,
    raw: bytes,
    tx: envelopes.Transaction,
    identity: pki.ProviderIdentity,
    inbox: Folder,
    virus: str,
) -> str:
    """The avviso di non accettazione per virus (SPEC §2.6); no envelope, no deliveries.

    Runs inside message_accept's transaction. The quarantine copy is written first and is
    idempotent (one file per sha256), so a rolled-back attempt only leaves what a retry keeps.
    """
    scanner.quarantine_put(raw=raw, reason=virus, pec_id=tx.pec_id, now=tx.when)
    built = envelopes.build_non_acceptance(tx, identity=identity, reason=virus, virus=True)
    _store_notice(sent=sent, folder=inbox, built=built, kind=Message.Kind.NON_ACCEPTANCE)
    Message.objects.filter(pk=sent.pk).update(submission_state=Message.Submission.REFUSED, pec_id=tx.pec_id)
    log_append(
        event="non-accettazione-virus",
        identifier=tx.pec_id,
        msgid=sent.client_msgid,
        sender=sent.mailbox.address,
        recipients=tx_addresses(tx),
        subject=sent.subject,
        details={"virus": virus},
        at=tx.when,
    )
    return "refused"


def tx_addresses(tx: envelopes.Transaction) -> list[str]:
    return [r.address.lower() for r in tx.recipients]


def _store_notice(
    *, sent: Message, folder: Folder, built: envelopes.BuiltMessage, kind: str, recipient: str = ""
) -> Message:
    """File a system message we just built and signed in the sender's mailbox, linked to ``sent``."""
    from .services import message_store

    return message_store(
        mailbox=sent.mailbox,
        raw=built.raw,
        kind=kind,
        folder=folder,
        related=sent,
        recipient=recipient,
        classification=classify_module.classify(built.raw, trust=trust_store()),
    )


# --- Local delivery ---------------------------------------------------------------------


@dataclass
class LocalDelivery:
    """What happened to one recipient of an envelope delivered locally."""

    recipient: str
    # "delivered" (now or by an earlier run), "no-dest" (no such mailbox here),
    # "full" (the mailbox would exceed its quota: errore-consegna "altro")
    outcome: str
    message: Message | None


def envelope_deliver_local(
    *, raw: bytes, recipients: list[str], classification: classify_module.Classification | None = None
) -> list[LocalDelivery]:
    """File the transport envelope ``raw`` unchanged in each local recipient's Inbox.

    Idempotent: a recipient that already holds this envelope (same PEC id) is reported as
    delivered with the existing message. Unknown mailboxes come back as "no-dest"; no receipt
    is built here (``delivery_receipt_build`` does that), so SMTP-received envelopes can use it.
    Call inside a transaction to make the delivery and its receipt one commit.
    ``classification`` is ``raw``'s, when the caller already has it (saves a verification).
    """
    from .services import message_store

    if classification is None:
        classification = classify_module.classify(raw, trust=trust_store())
    pec_id = classification.pec_id or ""
    results: list[LocalDelivery] = []
    for recipient in recipients:
        address = recipient.strip().lower()
        mailbox = _MAILBOX.first(address)
        if mailbox is None:
            results.append(LocalDelivery(recipient=address, outcome="no-dest", message=None))
            continue
        existing = _ALREADY_DELIVERED.first(mailbox.pk, pec_id)
        if existing is None and mailbox_usage(mailbox=mailbox) + len(raw) > mailbox.quota_bytes:
            results.append(LocalDelivery(recipient=address, outcome="full", message=None))
            continue
        if existing is None:
            try:
                with transaction.atomic():
                    existing = message_store(
                        mailbox=mailbox,
                        raw=raw,
                        kind=Message.Kind.CERTIFIED,
                        classification=classification,
                    )
            except IntegrityError:
                existing = Message.objects.get(mailbox=mailbox, pec_id=pec_id, kind=Message.Kind.CERTIFIED)
        results.append(LocalDelivery(recipient=address, outcome="delivered", message=existing))
    return results


def message_deliver_local(*, message_id: int) -> list[str]:
    """Deliver an accepted submission to each of its recipients on our domain; returns their outcomes."""
    deliveries = Delivery.objects.filter(
        message_id=message_id, state=Delivery.State.QUEUED, message__envelope_sha256__gt=""
    ).order_by("id")
    return [delivery_local(delivery_id=d.pk) for d in deliveries if is_local(d.recipient)]


def delivery_local(*, delivery_id: int) -> str:
    """Deliver one local recipient and file its receipt in the sender's Inbox.

    Returns "delivered", "error" or "skipped" (already handled, or not a local recipient).
    """
    with transaction.atomic():
        when = timezone.now()
        claimed = (
            Delivery.objects.filter(pk=delivery_id, state=Delivery.State.QUEUED)
            .exclude(message__envelope_sha256="")
            .update(state=Delivery.State.DELIVERED, delivered_at=when)
        )
        if not claimed:
            return "skipped"
        delivery = Delivery.objects.select_related("message__mailbox").get(pk=delivery_id)
        if not is_local(delivery.recipient):
            # Not ours to deliver: give it back to the transport queue.
            Delivery.objects.filter(pk=delivery_id).update(state=Delivery.State.QUEUED, delivered_at=None)
            return "skipped"
        sent = delivery.message
        envelope = storage.raw_get(sent.envelope_sha256)
        # One verification of the envelope serves both the delivery and its receipt.
        classification = classify_module.classify(envelope, trust=trust_store())
        (result,) = envelope_deliver_local(
            raw=envelope, recipients=[delivery.recipient], classification=classification
        )
        built, kind = delivery_receipt_build(
            envelope=envelope,
            recipient=result.recipient,
            delivered=result.outcome == "delivered",
            when=when,
            outcome=result.outcome,
            classification=classification,
        )
        inbox = Folder.objects.get(mailbox=sent.mailbox, role=Folder.Role.INBOX)
        receipt = _store_notice(sent=sent, folder=inbox, built=built, kind=kind, recipient=result.recipient)
        if result.outcome == "delivered":
            Delivery.objects.filter(pk=delivery_id).update(receipt=receipt)
        else:
            Delivery.objects.filter(pk=delivery_id).update(
                state=Delivery.State.ERROR,
                delivered_at=None,
                receipt=receipt,
                error=failure_reason(result.recipient, result.outcome)[1],
            )
        log_append(
            event=kind,
            identifier=built.message_id.strip("<>"),
            msgid=f"<{sent.pec_id}>",
            sender=sent.mailbox.address,
            recipients=[result.recipient],
            subject=sent.subject,
            related_ids=[sent.pec_id],
            at=when,
        )
        return "delivered" if result.outcome == "delivered" else "error"


def failure_reason(recipient: str, outcome: str | None) -> tuple[str, str]:
    """The daticert ``errore`` and the errore-esteso text for a local delivery that failed."""
    if outcome == "full":
        return "altro", f"5.2.2 - {settings.PEC_PROVIDER_NAME} - casella piena ({recipient})"
    return "no-dest", f"5.1.1 - {settings.PEC_PROVIDER_NAME} - indirizzo non valido ({recipient})"


def delivery_receipt_build(
    *,
    envelope: bytes,
    recipient: str,
    delivered: bool,
    when: datetime | None = None,
    outcome: str | None = None,
    classification: classify_module.Classification | None = None,
) -> tuple[envelopes.BuiltMessage, str]:
    """The signed delivery receipt (or avviso di mancata consegna) for one recipient of ``envelope``.

    The receipt type follows the envelope: To → as requested (completa/breve), Cc → sintetica.
    When not delivered, ``outcome`` (a LocalDelivery.outcome) picks the error: "full" →
    errore "altro" (mailbox full), otherwise "no-dest". Returns the built message and its
    Message.Kind value. ``classification`` is ``envelope``'s, when the caller already has it.
    """
    identity = pki.load_identity()
    when = when or timezone.now()
    if classification is None:
        classification = classify_module.classify(envelope, trust=trust_store())
    if classification.daticert is None:
        raise ValueError("not a transport envelope: no daticert")
    headers = headers_parse(envelope)
    to = [a for _n, a in parsing.addresses(headers, "To")]
    cc = [a for _n, a in parsing.addresses(headers, "Cc")]
    tx = envelopes.Transaction.from_daticert(classification.daticert, to=to, cc=cc, when=when)
    if delivered:
        receipt_type = envelopes.receipt_type_for(recipient, tx.to, tx.cc, tx.receipt_type)
        built = envelopes.build_delivery_receipt(
            tx, recipient, receipt_type, classification.postacert, identity=identity
        )
        return built, Message.Kind.DELIVERY
    errore, reason = failure_reason(recipient, outcome)
    built = envelopes.build_delivery_error(tx, recipient, errore, reason, identity=identity)
    return built, Message.Kind.DELIVERY_ERROR


# --- Recovery ---------------------------------------------------------------------------

# A task published on commit is lost if the process dies between the commit and the publish,
# or fails for good after its retries: the sweep re-enqueues what has waited longer than this.
SWEEP_AFTER = timedelta(minutes=2)


def pipeline_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Re-enqueue submissions still pending and local deliveries still queued after SWEEP_AFTER.

    Safe at any time: the tasks it enqueues claim their work, so one still in flight wins
    and the repeat is a no-op.
    """
    from . import tasks

    cutoff = (now or timezone.now()) - SWEEP_AFTER
    pending = list(
        Message.objects.filter(
            kind=Message.Kind.SUBMITTED,
            submission_state=Message.Submission.PENDING,
            created_at__lt=cutoff,
        ).values_list("pk", flat=True)
    )
    for message_id in pending:
        tasks.message_accept.delay_on_commit(message_id)
    queued = [
        pk
        for pk, recipient in Delivery.objects.filter(
            state=Delivery.State.QUEUED,
            message__submission_state=Message.Submission.ACCEPTED,
            message__created_at__lt=cutoff,
        )
        .exclude(message__envelope_sha256="")
        .values_list("pk", "recipient")
        if is_local(recipient)
    ]
    for delivery_id in queued:
        tasks.delivery_local.delay_on_commit(delivery_id)
    return {"accepted": len(pending), "delivered": len(queued)}
