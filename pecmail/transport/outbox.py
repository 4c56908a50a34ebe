"""The transactional outbox: work to publish is a row committed with the work itself.

``outbox_add_many`` must run inside the transaction that creates the work. After the commit a
fast path publishes it at once (``outbox_publish_items``); ``outbox_relay`` (beat) publishes
whatever a crash left behind. Consumers are idempotent, so a row published twice does no harm.
SMTP sends need no row here: their ``OutboundMessage`` row is their outbox entry.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import connection
from django.db.models import F
from django.utils import timezone

from pecmail.lib.rows import rows_insert

from .models import OutboxItem

log = logging.getLogger(__name__)


def relay_grace() -> dt.timedelta:
    """Fresh rows are left to the on-commit fast path, so the common case publishes once."""
    from django.conf import settings

    return dt.timedelta(seconds=float(getattr(settings, "PEC_OUTBOX_RELAY_GRACE", 30)))


def outbox_add_many(items: list[tuple[str, dict]]) -> list[OutboxItem]:
    """Record several (task name, kwargs) in one statement; publish them with ``outbox_publish_items``."""
    return rows_insert([OutboxItem(task_name=name, kwargs=kwargs) for name, kwargs in items])


def outbox_publish(*, item_id: int) -> bool:
    """Send one outbox row to Celery and mark it published; False if already published or gone.

    A failed publish (broker down) leaves the row for the relay.
    """
    return outbox_publish_many([item_id]) == 1


def outbox_publish_many(item_ids: list[int]) -> int:
    """Send the unpublished rows among ``item_ids`` to Celery; return how many were published."""
    items = list(OutboxItem.objects.filter(pk__in=item_ids, published_at__isnull=True).order_by("id"))
    return outbox_publish_items(items)


def outbox_mark_published(item_ids: list[int]) -> None:
    """Record that these rows reached the broker, so that the relay leaves them alone.

    Plain SQL: every batch of ``pec smtpd`` runs this, and the ORM's update costs it more than
    the statement costs the database.
    """
    if item_ids:
        with connection.cursor() as cursor:
            cursor.execute(*outbox_mark_published_sql(item_ids))


def outbox_mark_published_sql(item_ids: list[int]) -> tuple[str, list]:
    """``outbox_mark_published``'s statement and parameters (no row for an empty list)."""
    meta = OutboxItem._meta
    quote = connection.ops.quote_name
    published_at = meta.get_field("published_at")
    attempts = quote(meta.get_field("attempts").column)
    if connection.vendor == "postgresql":  # one statement text (prepared once) for any number of rows
        matches, ids = "= ANY(%s::bigint[])", [list(item_ids)]
    else:
        matches, ids = "IN ({})".format(", ".join(["%s"] * len(item_ids)) or "NULL"), list(item_ids)
    return (
        f"UPDATE {quote(meta.db_table)} SET {quote(published_at.column)} = %s, "  # noqa: S608 - no user input
        f"{attempts} = {attempts} + 1 "
        f"WHERE {quote(meta.pk.column)} {matches} AND {quote(published_at.column)} IS NULL",
        [published_at.get_db_prep_save(timezone.now(), connection=connection), *ids],
    )


def outbox_publish_items(items: list[OutboxItem], *, mark: bool = True) -> int:
    """Send rows just committed (or just read) to Celery and mark them published.

    One statement in the common case. A failed publish (broker down) leaves its row and the
    ones after it for the relay; the rows published before it stay published. A row that
    another process published meanwhile may be sent twice: consumers are idempotent.
    ``mark=False`` leaves the marking to the caller (``outbox_mark_published``), which folds
    it into its next transaction; the first ``len(returned)`` items are the ones published.
    """
    from pecmail.celery import app

    # Importing the tasks module registers the transport tasks with the app.
    from . import tasks as _tasks  # noqa: F401

    published: list[int] = []
    try:
        for item in items:
            app.tasks[item.task_name].apply_async(kwargs=item.kwargs)
            published.append(item.pk)
    except Exception:
        if app.conf.task_always_eager:
            raise
        log.exception("outbox: could not publish %s; the relay will retry", items[len(published)])
    finally:
        attempted = items[: len(published) + 1]
        if mark:
            outbox_mark_published(published)
        if len(attempted) > len(published):
            OutboxItem.objects.filter(pk=attempted[-1].pk).update(attempts=F("attempts") + 1)
    return len(published)


def outbox_relay(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Publish unpublished rows older than the grace period; return how many were published."""
    now = now or timezone.now()
    ids = list(
        OutboxItem.objects.filter(published_at__isnull=True, created_at__lte=now - relay_grace())
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    return sum(1 for item_id in ids if outbox_publish(item_id=item_id))
