"""Celery tasks of the transport app; each takes ids and is safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from pecmail.celery import app

# Beat entries live with the tasks they schedule.
_every = float(getattr(settings, "PEC_TRANSPORT_SWEEP_INTERVAL", 30))
app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "transport.outbox_relay": {"task": "transport.outbox_relay", "schedule": _every},
    "transport.deadlines_sweep": {"task": "transport.deadlines_sweep", "schedule": 60.0},
}


COMMON = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(name="transport.outbox_relay", **COMMON)
def outbox_relay() -> dict[str, int]:
    """Publish what a crash left in the outbox, resend overdue SMTP rows, dispatch lost submissions,
    re-run inbound processing that failed."""
    from .dispatch import dispatch_sweep
    from .incoming import inbound_retry_due
    from .outbound import outbound_retry_due
    from .outbox import outbox_relay as relay

    return {
        "published": relay(),
        "retried": outbound_retry_due(),
        "dispatched": dispatch_sweep(),
        "reprocessed": inbound_retry_due(),
    }


@shared_task(name="transport.inbound_process", **COMMON)
def inbound_process(inbound_id: int) -> str:
    """One SMTP transaction, and the ones stored after it still waiting (``inbound_process_waiting``)."""
    from .incoming import inbound_process_waiting

    return inbound_process_waiting(inbound_id=inbound_id)


@shared_task(name="transport.inbound_process_many", **COMMON)
def inbound_process_many(inbound_ids: list[int]) -> dict[str, int]:
    """Process what one group commit of ``pec smtpd`` stored: one Celery message per batch.

    A message that fails stays ``received`` and ``inbound_retry_due`` runs it again; the
    others of its batch are not held back by it (``incoming.inbound_process_batch``).
    """
    from .incoming import inbound_process_batch

    return inbound_process_batch(inbound_ids)


@shared_task(bind=True, name="transport.outbound_send", max_retries=None, **COMMON)
def outbound_send(self, outbound_id: int) -> str:  # noqa: ANN001
    from .outbound import OutboundRetry
    from .outbound import outbound_send as send

    try:
        return send(outbound_id=outbound_id)
    except OutboundRetry as retry:
        if self.request.is_eager:
            # Inline (tests, no broker): the row stays queued for outbound_retry_due.
            return "queued"
        raise self.retry(countdown=retry.countdown) from retry


@shared_task(name="transport.envelope_dispatch", **COMMON)
def envelope_dispatch(message_id: int) -> int:
    from .dispatch import envelope_dispatch as dispatch

    return dispatch(message_id=message_id)


@shared_task(name="transport.deadlines_sweep", **COMMON)
def deadlines_sweep() -> int:
    from .deadlines import deadlines_sweep as sweep

    return sweep()
