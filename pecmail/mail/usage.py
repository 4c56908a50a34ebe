"""How much space a mailbox takes, without reading all its messages.

A mailbox's space is the sum of its messages' raw sizes (Trash included). Summing them on
every delivery costs time in proportion to the mailbox (23 ms at 120,000 messages on
PostgreSQL), and a PEC box keeps every receipt of every message it ever sent.

So the database keeps the figure itself: triggers on ``mail_message`` (migration
``mail.0005``) write one ``MailboxUsageChange`` row per inserted or deleted message (per
statement and mailbox on PostgreSQL), and ``mailbox_usage`` adds the rows written since the
last fold to ``Mailbox.used_bytes``. The rows are only ever inserted, so filing a message
never waits for another transaction's lock on its mailbox's row (a counter updated in place
would serialise every delivery to one mailbox, and could deadlock two envelopes delivered to
the same two mailboxes in opposite orders). ``usage_fold`` (the ``mail.usage_fold`` task, every
five minutes) adds them into ``used_bytes`` and deletes them.

Triggers rather than code at each place that files or deletes messages: deletions happen
through Django's cascades (a folder, a mailbox, a user), bulk deletes and the admin, and the
figure must follow every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from pecmail.lib.prepared import PreparedRead

from .models import Mailbox, MailboxUsageChange

# Above this share of its quota a mailbox is shown as nearly full.
NEARLY_FULL = 0.9
# Changes folded per statement (a long worker outage may leave many).
FOLD_BATCH = 10_000


def _usage_query(pk: int) -> QuerySet:
    pending = (
        MailboxUsageChange.objects.filter(mailbox_id=OuterRef("pk"))
        .order_by()
        .values("mailbox_id")
        .annotate(total=Sum("bytes"))
        .values("total")
    )
    return (
        Mailbox.objects.filter(pk=pk)
        .annotate(total=F("used_bytes") + Coalesce(Subquery(pending), 0))
        .values_list("total", flat=True)
    )


# Read before every delivery: compiled once (``PreparedRead``).
_USAGE = PreparedRead(_usage_query)


def mailbox_usage(*, mailbox: Mailbox) -> int:
    """Bytes the mailbox's messages take now (raw sizes, Trash included).

    One statement, so on PostgreSQL it sees ``used_bytes`` and the changes not yet folded in
    one snapshot: a fold committing meanwhile is seen whole or not at all.
    """
    total = _USAGE.first(mailbox.pk)
    return max(int(total or 0), 0)


@dataclass(frozen=True)
class Space:
    """What the webmail shows of a mailbox's space."""

    used: int
    quota: int

    @property
    def percent(self) -> int:
        if self.quota <= 0:
            return 100
        return min(100, round(self.used * 100 / self.quota))

    @property
    def nearly_full(self) -> bool:
        return self.quota <= 0 or self.used >= self.quota * NEARLY_FULL


def mailbox_space(*, mailbox: Mailbox) -> Space:
    return Space(used=mailbox_usage(mailbox=mailbox), quota=mailbox.quota_bytes)


_FOLD_POSTGRESQL = """
WITH folded AS (
    DELETE FROM mail_mailboxusagechange
    WHERE id IN (SELECT id FROM mail_mailboxusagechange ORDER BY id LIMIT %s)
    RETURNING mailbox_id, bytes
), sums AS (
    SELECT mailbox_id, SUM(bytes) AS bytes FROM folded GROUP BY mailbox_id
), moved AS (
    UPDATE mail_mailbox AS m SET used_bytes = m.used_bytes + sums.bytes
    FROM sums WHERE m.id = sums.mailbox_id
)
SELECT COUNT(*) FROM folded
"""


def usage_fold(*, batch: int = FOLD_BATCH) -> int:
    """Add the changes written so far into ``Mailbox.used_bytes``; returns how many were folded.

    Each batch is one transaction that deletes the changes it adds, so a change is counted
    exactly once, whichever fold takes it and whenever a delivery commits. Changes of
    mailboxes deleted since are dropped.
    """
    done = 0
    while True:
        if connection.vendor == "postgresql":
            # One statement: the rows it deletes are the rows it adds, even while others insert.
            with connection.cursor() as cursor:
                cursor.execute(_FOLD_POSTGRESQL, [batch])
                (folded,) = cursor.fetchone()
        else:
            folded = _fold_batch_locked(batch)
        done += folded
        if folded < batch:
            return done


def _fold_batch_locked(batch: int) -> int:
    """One batch where a transaction holds the database's only write lock (SQLite)."""
    with transaction.atomic():
        ids = list(MailboxUsageChange.objects.order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            return 0
        last = ids[-1]
        sums = (
            MailboxUsageChange.objects.filter(id__lte=last)
            .order_by()
            .values("mailbox_id")
            .annotate(total=Sum("bytes"))
        )
        for row in sums:
            Mailbox.objects.filter(pk=row["mailbox_id"]).update(used_bytes=F("used_bytes") + row["total"])
        MailboxUsageChange.objects.filter(id__lte=last).delete()
        return len(ids)
