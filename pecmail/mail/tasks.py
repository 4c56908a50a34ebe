"""Celery tasks of the certification pipeline: each takes ids and runs the service of the same name.

Every task is safe to run twice (acks_late re-delivers after a worker crash): the services
claim their work with a conditional UPDATE and unique constraints stop duplicates.
Enqueue only with ``delay_on_commit`` so that a worker never looks for an uncommitted row.
"""

from __future__ import annotations

from celery import shared_task

from . import pipeline


@shared_task(acks_late=True, name="pecmail.mail.tasks.message_accept")
def message_accept(message_id: int) -> str:
    return pipeline.message_accept(message_id=message_id)


@shared_task(acks_late=True, name="pecmail.mail.tasks.message_deliver_local")
def message_deliver_local(message_id: int) -> list[str]:
    return pipeline.message_deliver_local(message_id=message_id)


@shared_task(acks_late=True, name="pecmail.mail.tasks.delivery_local")
def delivery_local(delivery_id: int) -> str:
    return pipeline.delivery_local(delivery_id=delivery_id)
