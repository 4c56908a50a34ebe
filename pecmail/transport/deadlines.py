"""The 12 h and 24 h deadlines of certified recipients at other providers (SPEC §2.5).

Rows, not Celery ETAs (a long ETA on Redis re-runs after the visibility timeout). A beat
task sweeps them; each notice is claimed by a conditional UPDATE inside the transaction
that builds and files it, so two sweepers emit it exactly once and a crash emits nothing.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from pecmail.certification import envelopes, pki
from pecmail.certification.log import log_append
from pecmail.mail.models import Delivery, Message

from .models import DeliveryDeadline
from .notices import notice_file, sent_transaction

log = logging.getLogger(__name__)


def _still_due(*, deadline_id: int, hours: int) -> bool:
    """Whether the notice is still due, with the recipient's Delivery row locked until commit.

    The sweep lists what is due first, then signs and files one notice after another: a
    take-charge or delivery receipt processed in between must win over the notice. Receipts
    move the Delivery row, so locking it here orders the two (SQLite serialises writers anyway).
    """
    due = Delivery.objects.select_for_update(of=("self",)).filter(
        deadline__pk=deadline_id, state=Delivery.State.QUEUED, delivered_at__isnull=True
    )
    if hours == 12:
        due = due.filter(taken_in_charge_at__isnull=True)
    return due.values_list("pk", flat=True).first() is not None


def _emit(*, deadline_id: int, hours: int, now: dt.datetime) -> bool:
    claim_field = "warned_at" if hours == 12 else "expired_at"
    with transaction.atomic():
        if not _still_due(deadline_id=deadline_id, hours=hours):
            return False
        claimed = DeliveryDeadline.objects.filter(pk=deadline_id, **{f"{claim_field}__isnull": True}).update(
            **{claim_field: now}
        )
        if not claimed:
            return False
        deadline = DeliveryDeadline.objects.select_related("delivery__message__mailbox").get(pk=deadline_id)
        delivery = deadline.delivery
        sent = delivery.message
        tx = sent_transaction(sent=sent, when=now)
        built = envelopes.build_timeout_notice(tx, delivery.recipient, hours, identity=pki.load_identity())
        # Both notices are X-Ricevuta: preavviso-errore-consegna (SPEC §3.4); the stage keeps the
        # 12 h warning and the final 24 h notice apart (one notice per message × recipient × kind × stage).
        notice = notice_file(
            sent=sent,
            built=built,
            kind=Message.Kind.TIMEOUT,
            recipient=delivery.recipient,
            notice_stage=f"{hours}h",
        )
        if hours == 24:
            Delivery.objects.filter(pk=delivery.pk, state=Delivery.State.QUEUED).update(
                state=Delivery.State.TIMEOUT,
                error=envelopes.TIMEOUT_TEXT[24][1],
                receipt=notice,
            )
        log_append(
            event="preavviso-errore-consegna" if hours == 12 else "errore-consegna-24h",
            identifier=built.message_id.strip("<>"),
            msgid=f"<{sent.pec_id}>",
            sender=sent.mailbox.address,
            recipients=[delivery.recipient],
            subject=sent.subject,
            related_ids=[sent.pec_id],
            at=now,
        )
        return True


def deadlines_sweep(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Emit every due notice; return how many this call emitted."""
    now = now or timezone.now()
    warn_ids = list(
        DeliveryDeadline.objects.filter(
            warn_at__lte=now,
            warned_at__isnull=True,
            delivery__taken_in_charge_at__isnull=True,
            delivery__delivered_at__isnull=True,
            delivery__state=Delivery.State.QUEUED,
        ).values_list("id", flat=True)[:limit]
    )
    expire_ids = list(
        DeliveryDeadline.objects.filter(
            expire_at__lte=now,
            expired_at__isnull=True,
            delivery__delivered_at__isnull=True,
            delivery__state=Delivery.State.QUEUED,
        ).values_list("id", flat=True)[:limit]
    )
    emitted = sum(1 for pk in warn_ids if _emit(deadline_id=pk, hours=12, now=now))
    emitted += sum(1 for pk in expire_ids if _emit(deadline_id=pk, hours=24, now=now))
    return emitted
