"""Celery tasks of the certification pipeline: each takes ids and runs the service of the same name.

Every task is safe to run twice (acks_late re-delivers after a worker crash): the services
claim their work with a conditional UPDATE and unique constraints stop duplicates.
Enqueue only with ``delay_on_commit`` so that a worker never looks for an uncommitted row.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from pecmail.celery import app
from pecmail.transport.scanner import ScannerUnavailable

from . import pipeline, storage, usage

# Beat entries live with the tasks they schedule.
app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "mail.pipeline_sweep": {"task": "pecmail.mail.tasks.pipeline_sweep", "schedule": 60.0},
    "mail.raw_temporary_sweep": {"task": "pecmail.mail.tasks.raw_temporary_sweep", "schedule": 6 * 3600.0},
    "mail.usage_fold": {"task": "pecmail.mail.tasks.usage_fold", "schedule": 300.0},
}

# A locked or briefly unreachable database is worth retrying; anything else is a bug to see.
COMMON = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": 5,
    "max_retries": 8,
}


# A virus scanner that cannot answer leaves the submission pending: try again later (and
# pipeline_sweep re-enqueues it should the retries run out), never accept it unscanned.
@shared_task(
    name="pecmail.mail.tasks.message_accept",
    **{**COMMON, "autoretry_for": (OperationalError, ScannerUnavailable)},
)
def message_accept(message_id: int) -> str:
    return pipeline.message_accept(message_id=message_id)


@shared_task(name="pecmail.mail.tasks.message_deliver_local", **COMMON)
def message_deliver_local(message_id: int) -> list[str]:
    return pipeline.message_deliver_local(message_id=message_id)


@shared_task(name="pecmail.mail.tasks.delivery_local", **COMMON)
def delivery_local(delivery_id: int) -> str:
    return pipeline.delivery_local(delivery_id=delivery_id)


@shared_task(name="pecmail.mail.tasks.pipeline_sweep", **COMMON)
def pipeline_sweep() -> dict[str, int]:
    return pipeline.pipeline_sweep()


@shared_task(name="pecmail.mail.tasks.raw_temporary_sweep", **COMMON)
def raw_temporary_sweep() -> int:
    return storage.raw_temporary_sweep()


@shared_task(name="pecmail.mail.tasks.usage_fold", **COMMON)
def usage_fold() -> int:
    return usage.usage_fold()
