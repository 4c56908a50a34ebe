"""Keyset pagination of a large mailbox on PostgreSQL (not a test: ``.venv/bin/python bench/mailbox.py``).

Fills a mailbox with 100,000 messages (BENCH_MESSAGES to change it) in its own database,
``<DATABASE_URL name>_bench_mailbox`` on the server of DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/pecmail), created and migrated on first use and kept for
the next run. Then prints the server time of ``selectors.message_list`` (ORM, model
instances) for the first page and for a page 50,000 deep, next to the bare indexed SQL query
returning the same rows, and their ratios. Target (issue 4): under 30 ms and within 5× of the
bare query, at any depth.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pecmail.settings")

import throwaway  # noqa: E402 - bench/throwaway.py

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "100000"))
PAGE = 50
RUNS = int(os.environ.get("BENCH_RUNS", "300"))
BLOCKS = 10


# Kept between runs: filling it is the slow part.
os.environ["DATABASE_URL"] = throwaway.database("mailbox", fresh=False)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from pecmail.mail import selectors, services  # noqa: E402
from pecmail.mail.models import Folder, Mailbox, Message  # noqa: E402


def fill() -> Folder:
    call_command("migrate", verbosity=0)
    address = "bench@pec.bench.test"
    mailbox = Mailbox.objects.filter(address=address).first() or services.mailbox_create(
        address=address, password=None, display_name="Bench"
    )
    inbox = Folder.objects.get(mailbox=mailbox, role=Folder.Role.INBOX)
    have = Message.objects.filter(folder=inbox).count()
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    batch: list[Message] = []
    for i in range(have, MESSAGES):
        batch.append(
            Message(
                mailbox=mailbox,
                folder=inbox,
                raw_sha256=f"{i:064x}",
                size=4096,
                subject=f"Messaggio {i}",
                from_address="mittente@pec.bench.test",
                from_name="Mittente",
                to_addresses=[address],
                # Pairs of messages share a timestamp so that the id tie-break is exercised.
                date=start + dt.timedelta(minutes=i // 2),
                kind=Message.Kind.CERTIFIED,
                seen=i % 3 == 0,
                preview="Testo di anteprima del messaggio",
            )
        )
        if len(batch) == 5000:
            Message.objects.bulk_create(batch)
            batch.clear()
            print(f"  filled {i + 1:,} messages", file=sys.stderr)
    if batch:
        Message.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE mail_message")
    return inbox


def interleaved_ms(first, second) -> tuple[float, float]:
    """Median milliseconds of ``first`` and ``second``, measured in alternating blocks.

    Blocks (not single calls) alternate so that both see the same machine load (this host
    is shared) without one's garbage being collected inside the other's timing.
    """
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(BLOCKS):
        for index, func in enumerate((first, second)):
            func()
            for _ in range(RUNS // BLOCKS):
                start = time.perf_counter()
                func()
                samples[index].append((time.perf_counter() - start) * 1000)
    return statistics.median(samples[0]), statistics.median(samples[1])


BARE_SQL = (
    "SELECT * FROM mail_message WHERE folder_id = %s AND (date, id) < (%s, %s) "
    "ORDER BY date DESC, id DESC LIMIT %s"
)
BARE_FIRST_SQL = "SELECT * FROM mail_message WHERE folder_id = %s ORDER BY date DESC, id DESC LIMIT %s"


def bare(folder_id: int, cursor_value: tuple[dt.datetime, int] | None) -> None:
    with connection.cursor() as cursor:
        if cursor_value is None:
            cursor.execute(BARE_FIRST_SQL, [folder_id, PAGE])
        else:
            cursor.execute(BARE_SQL, [folder_id, cursor_value[0], cursor_value[1], PAGE])
        rows = cursor.fetchall()
    assert len(rows) == PAGE


def main() -> None:
    inbox = fill()
    total = Message.objects.filter(folder=inbox).count()
    depth = min(50_000, total - PAGE)
    deep_cursor = (
        Message.objects.filter(folder=inbox).order_by("-date", "-id").values_list("date", "id")[depth - 1]
    )
    orm_ids = [m.id for m in selectors.message_list(folder=inbox, before=deep_cursor, limit=PAGE)]
    with connection.cursor() as cursor:
        cursor.execute(BARE_SQL.replace("SELECT *", "SELECT id"), [inbox.pk, *deep_cursor, PAGE])
        assert orm_ids == [row[0] for row in cursor.fetchall()], "ORM and bare SQL disagree"

    print(f"PostgreSQL {connection.pg_version}, {total:,} messages in one folder, pages of {PAGE}")
    results = []
    for label, cursor_value in (("first page", None), (f"page {depth:,} deep", deep_cursor)):
        orm, sql = interleaved_ms(
            lambda c=cursor_value: selectors.message_list(folder=inbox, before=c, limit=PAGE),
            lambda c=cursor_value: bare(inbox.pk, c),
        )
        results.append((label, orm, sql))
        verdict = "ok" if orm < 30 and orm <= 5 * sql else "MISSES TARGET"
        print(
            f"  {label:<22} message_list {orm:7.2f} ms   bare SQL {sql:7.2f} ms   ratio {orm / sql:5.2f}×  {verdict}"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN " + BARE_SQL.replace("SELECT *", "SELECT id"),
            [inbox.pk, *deep_cursor, PAGE],
        )
        plan = " / ".join(row[0].strip() for row in cursor.fetchall()[:3])
    print(f"  plan of the deep page: {plan}")
    deep_vs_first = results[1][1] / results[0][1]
    print(f"  deep page ÷ first page (message_list): {deep_vs_first:.2f}×")
    whole_page(inbox, deep_cursor)


def whole_page(inbox: Folder, deep_cursor: tuple[dt.datetime, int]) -> None:
    """Server time of the whole list page (every query, the template), for context.

    The list query is one of its queries; the others (folder sidebar with unread counts,
    session, preferences) belong to the page, not to message_list.
    """
    from django.conf import settings
    from django.test import Client
    from django.urls import reverse

    from pecmail.mail.views._common import cursor_encode, folders_sidebar

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(inbox.mailbox.owner)
    url = reverse("mail:folder", args=[inbox.pk])
    for label, query in (("first page", ""), ("deep page", f"?before={cursor_encode(*deep_cursor)}")):
        assert client.get(url + query).status_code == 200
        samples = []
        for _ in range(max(5, RUNS // 30)):
            start = time.perf_counter()
            client.get(url + query)
            samples.append((time.perf_counter() - start) * 1000)
        print(
            f"  whole page view, {label:<10} {statistics.median(samples):8.2f} ms (all middleware, queries, template)"
        )
    # The sidebar's unread counts (the partial index on unseen rows serves them).
    sidebar_ms = []
    for _ in range(5):
        start = time.perf_counter()
        folders_sidebar(mailbox=inbox.mailbox)
        sidebar_ms.append((time.perf_counter() - start) * 1000)
    print(f"  of which the folder sidebar's unread counts: {statistics.median(sidebar_ms):.2f} ms")


if __name__ == "__main__":
    main()
