"""Celery tasks of the transport app; each takes ids and is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from pecmail.celery import app

from . import outbox

# Beat entries live with the tasks they schedule.
app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "transport.outbox_relay": {"task": "transport.outbox_relay", "schedule": 30.0},
    "transport.deadlines_sweep": {"task": "transport.deadlines_sweep", "schedule": 60.0},
}

COMMON = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(name="transport.outbox_relay", **COMMON)
def outbox_relay() -> int:
    return outbox.outbox_relay()


@shared_task(name="transport.inbound_process", **COMMON)
def inbound_process(inbound_id: int) -> None:
    from . import incoming

    incoming.inbound_process(inbound_id=inbound_id)
