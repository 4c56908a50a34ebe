"""Notices this provider issues to its own users about their sent messages.

Permanent SMTP refusals, deadlines and virus reports from other providers all end the same
way: a signed notice filed in the sender's Inbox, linked to the Sent copy, and the
recipient's ``Delivery`` row moved. Unique constraints (one notice per sent message ×
recipient × kind) make each call safe to repeat.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from pecmail.certification import envelopes, pki
from pecmail.certification.classify import classify
from pecmail.certification.index import trust_store
from pecmail.certification.log import log_append
from pecmail.lib.prepared import PreparedUpdate
from pecmail.mail import storage
from pecmail.mail.models import Delivery, Folder, Message
from pecmail.mail.services import message_store

from .models import OutboundMessage

log = logging.getLogger(__name__)


def sent_transaction(*, sent: Message, when: dt.datetime) -> envelopes.Transaction:
    """The certification data of a sent message, read back from its own transport envelope."""
    envelope = storage.raw_get(sent.envelope_sha256)
    result = classify(envelope)
    if result.daticert is None:
        raise ValueError(f"sent message {sent.pk} has no readable transport envelope")
    return envelopes.Transaction.from_daticert(
        result.daticert, to=list(sent.to_addresses), cc=list(sent.cc_addresses), when=when
    )


def notice_file(
    *, sent: Message, built: envelopes.BuiltMessage, kind: str, recipient: str, notice_stage: str = ""
) -> Message | None:
    """File ``built`` in the sender's Inbox, linked to ``sent``; None if already filed.

    ``notice_stage`` ("12h" / "24h") tells the two timeout notices of one recipient apart.
    """
    inbox = Folder.objects.get(mailbox=sent.mailbox, role=Folder.Role.INBOX)
    try:
        with transaction.atomic():
            return message_store(
                mailbox=sent.mailbox,
                raw=built.raw,
                kind=kind,
                folder=inbox,
                related=sent,
                recipient=recipient,
                classification=classify(built.raw, trust=trust_store()),
                notice_stage=notice_stage,
            )
    except IntegrityError:
        return None


def delivery_error_issue(
    *, delivery: Delivery, errore: str, reason: str, when: dt.datetime | None = None, virus: str = ""
) -> Message | None:
    """Emit the avviso di mancata consegna (or per virus) for one recipient and mark it failed."""
    when = when or timezone.now()
    sent = delivery.message
    with transaction.atomic():
        claimed = (
            Delivery.objects.filter(pk=delivery.pk)
            .exclude(state=Delivery.State.DELIVERED)
            .update(state=Delivery.State.ERROR, error=reason[:2000])
        )
        if not claimed:
            return None
        identity = pki.load_identity()
        tx = sent_transaction(sent=sent, when=when)
        if virus:
            built = envelopes.build_virus_delivery_error(tx, delivery.recipient, virus, identity=identity)
        else:
            built = envelopes.build_delivery_error(tx, delivery.recipient, errore, reason, identity=identity)
        notice = notice_file(
            sent=sent, built=built, kind=Message.Kind.DELIVERY_ERROR, recipient=delivery.recipient
        )
        if notice is not None:
            Delivery.objects.filter(pk=delivery.pk).update(receipt=notice)
            log_append(
                event="errore-consegna-virus" if virus else "errore-consegna",
                identifier=built.message_id.strip("<>"),
                msgid=f"<{sent.pec_id}>",
                sender=sent.mailbox.address,
                recipients=[delivery.recipient],
                subject=sent.subject,
                related_ids=[sent.pec_id],
                details={"errore": "virus" if virus else errore, "reason": reason},
                at=when,
            )
        return notice


def _errore_for(code: int, reply: str) -> str:
    if "does not exist" in reply or "null MX" in reply or "neither MX nor A" in reply:
        return "no-dominio"
    if "5.1.1" in reply or code in (550, 551, 553):
        return "no-dest"
    return "altro"


def outbound_refused(*, row: OutboundMessage, refused: dict[str, tuple[int, str]]) -> None:
    """A remote server permanently refused some recipients of one of our transport envelopes.

    Certified recipients get an avviso di mancata consegna; esterno ones only their Delivery
    marked failed (no PEC notices for ordinary recipients). Receipts we send to other
    providers that bounce are only logged: there are no receipts about receipts.
    """
    if row.kind != Message.Kind.CERTIFIED or row.sent_message_id is None:
        return
    for recipient, (code, reply) in refused.items():
        delivery = (
            Delivery.objects.select_related("message__mailbox")
            .filter(message_id=row.sent_message_id, recipient__iexact=recipient)
            .first()
        )
        if delivery is None:
            continue
        reason = f"{code} {reply}".strip()
        if delivery.certified:
            delivery_error_issue(delivery=delivery, errore=_errore_for(code, reply), reason=reason)
        else:
            Delivery.objects.filter(pk=delivery.pk, state=Delivery.State.QUEUED).update(
                state=Delivery.State.ERROR, error=reason[:2000]
            )


# Runs for every envelope handed to a peer (certified recipients match nothing): compiled once.
_ESTERNO_DELIVERED = PreparedUpdate(
    lambda message_id, recipients: Delivery.objects.filter(
        message_id=message_id, recipient__in=recipients, certified=False, state=Delivery.State.QUEUED
    ),
    "state",
    "delivered_at",
)


def outbound_accepted(*, row: OutboundMessage, accepted: list[str], when: dt.datetime | None = None) -> None:
    """Ordinary (esterno) recipients are settled when their server takes the envelope: no receipt will come."""
    if row.kind != Message.Kind.CERTIFIED or row.sent_message_id is None:
        return
    # Delivery.recipient is stored lower-cased (message_accept): one statement for them all.
    _ESTERNO_DELIVERED(
        row.sent_message_id,
        [recipient.lower() for recipient in accepted],
        state=Delivery.State.DELIVERED,
        delivered_at=when or timezone.now(),
    )
