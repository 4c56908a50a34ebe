"""From an accepted submission to SMTP: queue the transport envelope for remote recipients.

MAIL-CORE's pipeline leaves recipients outside our domain ``Delivery.State.QUEUED`` and
fires ``envelope_accepted`` inside the transaction that accepts the submission;
``envelope_dispatch`` queues the envelope and the deadlines there, so they commit with the
acceptance (the 12 h / 24 h clocks start with it) and the send follows that commit.
``dispatch_sweep`` catches an accepted submission left without them (a receiver that was not
connected, or rows removed by hand).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from pecmail.mail import storage
from pecmail.mail.models import Delivery, Message

from .models import DeliveryDeadline, OutboundMessage
from .outbound import outbound_enqueue
from .services import domain_is_local

log = logging.getLogger(__name__)

WARN_AFTER = dt.timedelta(hours=12)
# SPEC §2.5: the final notice comes "by the 24-hour timeout, but not before 22 hours have
# passed". Due at 23 h 30 min, the beat sweep (every 60 s) files it well inside that window.
EXPIRE_AFTER = dt.timedelta(hours=23, minutes=30)


def envelope_dispatch(
    *,
    message_id: int,
    now: dt.datetime | None = None,
    sent: Message | None = None,
    raw: bytes | None = None,
    created: list[Delivery] | None = None,
) -> int:
    """Queue the transport envelope of sent message ``message_id`` for its remote recipients.

    Returns how many recipients were queued now (0 when already done: safe to run twice).
    Certified recipients get their 12 h / 24 h deadlines; esterno ones get none. The accepting
    transaction passes the Sent copy (``sent``, with its mailbox), the envelope's bytes
    (``raw``) and the Delivery rows it has just created (``created``), so none is read back:
    an envelope signed in that very transaction cannot have been queued before.
    """
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):
        if sent is None or sent.pk != message_id:
            sent, raw, created = Message.objects.select_related("mailbox").get(pk=message_id), None, None
        if not sent.envelope_sha256:
            return 0
        if created is not None and all(d.pk is not None and d.message_id == sent.pk for d in created):
            todo = [
                d for d in created if d.state == Delivery.State.QUEUED and not domain_is_local(d.recipient)
            ]
        else:
            todo = _undispatched(sent)
        if not todo:
            return 0
        if raw is None:
            raw = storage.raw_get(sent.envelope_sha256)
        outbound_enqueue(
            raw=raw,
            mail_from=sent.mailbox.address,
            recipients=[d.recipient for d in todo],
            kind=Message.Kind.CERTIFIED,
            pec_id=sent.pec_id,
            sent_message_id=sent.pk,
        )
        # One statement for all; a deadline an earlier run already wrote stays as it is.
        DeliveryDeadline.objects.bulk_create(
            [
                DeliveryDeadline(
                    delivery=delivery,
                    dispatched_at=now,
                    warn_at=now + WARN_AFTER,
                    expire_at=now + EXPIRE_AFTER,
                )
                for delivery in todo
                if delivery.certified
            ],
            ignore_conflicts=True,
        )
    return len(todo)


def _undispatched(sent: Message) -> list[Delivery]:
    """The remote recipients of ``sent`` still queued and not yet handed to transport."""
    remote = [
        d
        for d in Delivery.objects.filter(message=sent, state=Delivery.State.QUEUED).order_by("id")
        if not domain_is_local(d.recipient)
    ]
    queued = set()
    for row in OutboundMessage.objects.filter(raw_sha256=sent.envelope_sha256):
        queued.update(r.lower() for r in row.recipients)
    return [d for d in remote if d.recipient.lower() not in queued]


def dispatch_sweep(*, now: dt.datetime | None = None) -> int:
    """Dispatch accepted submissions that still have undispatched remote recipients."""
    from .outbound import sweep_grace

    now = now or timezone.now()
    grace = sweep_grace()
    candidates = (
        Message.objects.filter(
            kind=Message.Kind.SUBMITTED,
            submission_state=Message.Submission.ACCEPTED,
            created_at__lte=now - grace,
            deliveries__state=Delivery.State.QUEUED,
        )
        .exclude(envelope_sha256="")
        # Already handed to transport: only a lost signal leaves an envelope without outbound rows.
        .exclude(envelope_sha256__in=OutboundMessage.objects.values("raw_sha256"))
        .values_list("id", flat=True)
        .distinct()[:200]
    )
    return sum(envelope_dispatch(message_id=pk, now=now) for pk in list(candidates))
