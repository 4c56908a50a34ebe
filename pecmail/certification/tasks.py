"""Celery tasks of the certification app (provider log retention)."""

from __future__ import annotations

from celery import shared_task

from pecmail.celery import app

# Beat entries live with the tasks they schedule.
app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "certification.log_sweep": {"task": "certification.log_sweep", "schedule": 24 * 3600.0},
}


@shared_task(name="certification.log_sweep", acks_late=True, reject_on_worker_lost=True)
def log_sweep() -> int:
    """Remove provider log rows past the 30-month retention (safe to run twice: the second removes 0)."""
    from pecmail.certification.log import log_sweep as sweep

    return sweep()
