"""Celery tasks of the Options tab: each takes ids and runs the service of the same name."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import services

COMMON = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": 5,
    "max_retries": 5,
}


@shared_task(name="pecmail.options.tasks.rules_apply", **COMMON)
def rules_apply(message_id: int) -> int:
    return len(services.rules_apply(message_id=message_id))


@shared_task(name="pecmail.options.tasks.receipt_file", **COMMON)
def receipt_file(message_id: int) -> bool:
    return services.receipt_file(message_id=message_id)


@shared_task(name="pecmail.options.tasks.notices_send", **COMMON)
def notices_send(message_id: int) -> int:
    return services.notices_send(message_id=message_id)


@shared_task(name="pecmail.options.tasks.notification_confirmation_send", **COMMON)
def notification_confirmation_send(address_id: int) -> bool:
    return services.notification_confirmation_send(address_id=address_id)


@shared_task(name="pecmail.options.tasks.notice_test_send", **COMMON)
def notice_test_send(address_id: int) -> bool:
    return services.notice_test_send(address_id=address_id)
