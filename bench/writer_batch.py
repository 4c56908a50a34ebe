"""The durable commit of ``pec smtpd``'s writer, in one process (not a test:
``DATABASE_URL=postgres://… .venv/bin/python bench/writer_batch.py``).

Times ``services.inbound_store_many``'s transaction (the inbound rows with their bytes, their
provider log rows, one outbox row, the marks of published outbox rows) for batches of 1, 4
and 16 envelope-sized messages, in the two ways the code has: two statements with ``WITH``
queries (PostgreSQL's path) next to the same writes one statement each (the path SQLite
takes, and PostgreSQL's before). They run alternately, ``BENCH_ROUNDS`` (default 5) rounds of
``BENCH_BATCHES`` (default 200) batches each; printed are the median milliseconds per batch
of each and their ratio. On SQLite only the statement-per-write path runs. A throw-away
database is created (PostgreSQL) or a temporary file used (SQLite).
"""

from __future__ import annotations

import base64
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from smtp_ingest import drop_postgres, postgres_database  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
BATCHES = int(os.environ.get("BENCH_BATCHES", "200"))
SIZES = (1, 4, 16)


def main() -> None:
    database_url, name = postgres_database()
    with tempfile.TemporaryDirectory(prefix="pecmail-writer-") as tmp:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="pecmail.settings",
            PECMAIL_DATA_DIR=tmp,
            DEBUG="0",  # on, Django would record every statement
            SECRET_KEY=f"bench-{uuid.uuid4().hex}{uuid.uuid4().hex}",
            LOG_LEVEL="WARNING",
        )
        if database_url:
            os.environ["DATABASE_URL"] = database_url
        else:
            os.environ.pop("DATABASE_URL", None)
        try:
            run()
        finally:
            from django.db import connections

            connections.close_all()
            drop_postgres(database_url, name)


def run() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from pecmail.certification.log import log_verify
    from pecmail.transport import services

    call_command("migrate", verbosity=0)
    # Envelope-sized bytes (base64, as S/MIME is), all distinct.
    bodies = (base64.encodebytes(os.urandom(10_500)) for _ in iter(int, 1))

    def batch(size: int) -> list:
        now = timezone.now()
        return [
            services.InboundMessage(
                raw_sha256=f"{n:064x}",
                raw=next(bodies),
                size=14_000,
                mail_from="alice@pec-a.test",
                rcpt_tos=["bob@pec-b.test"],
                peer="127.0.0.1",
                kind="posta-certificata",
                received_at=now,
            )
            for n in range(size)
        ]

    ways = {"two statements": services._store_in_two_statements}
    if connection.vendor != "postgresql":
        ways = {}
    ways["statement per write"] = services._store_statement_per_write

    def timed(way, size: int) -> float:
        rows_by_batch = [batch(size) for _ in range(BATCHES)]
        marks: list[int] = []
        start = time.perf_counter()
        for rows in rows_by_batch:
            with transaction.atomic():
                item = way(rows, marks)
            marks = [item.pk]
        return (time.perf_counter() - start) * 1000 / BATCHES

    for way in ways.values():  # warm-up: connections, prepared statements
        timed(way, 1)
    print(f"{connection.vendor}: ms per batch, median of {ROUNDS} alternating rounds of {BATCHES} batches")
    print("batch   " + "   ".join(f"{name:>20}" for name in ways) + ("   ratio" if len(ways) == 2 else ""))
    for size in SIZES:
        results: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(ROUNDS):
            for name, way in ways.items():
                results[name].append(timed(way, size))
        medians = [statistics.median(results[name]) for name in ways]
        line = f"{size:5d}   " + "   ".join(f"{m:20.3f}" for m in medians)
        if len(medians) == 2:
            line += f"   {medians[0] / medians[1]:5.2f}"
        print(line)
    report = log_verify()  # both ways appended to one chain
    print(f"provider log: {report.rows} rows, {'intact' if report.ok else report.message}")
    if not report.ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
