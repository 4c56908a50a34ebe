"""A trivial task that proves a real Celery worker consumes our broker."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="pecmail.accounts.ping")
def ping(value: str = "pong") -> str:
    return value
