"""Celery tasks of the Calendar tab."""

from __future__ import annotations

from celery import shared_task

from pecmail.celery import app

# Beat entries live with the tasks they schedule: reminders are checked every minute.
app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "agenda.reminders_send": {"task": "agenda.reminders_send", "schedule": 60.0},
}


@shared_task(name="agenda.reminders_send", acks_late=True, reject_on_worker_lost=True)
def reminders_send() -> int:
    """Send the reminders that are due; safe to run twice (each reminder row is claimed once)."""
    from . import services

    return services.reminders_send()
