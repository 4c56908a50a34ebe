"""A throw-away PostgreSQL database and data directory for the benchmarks that run pecmail in
their own process (``accept_batch.py``, ``inbound_batch.py``; ``mailbox.py`` keeps its database
between runs: ``database("mailbox", fresh=False)``).

``setup(name)`` runs before ``django.setup()``: it points ``DATABASE_URL`` at a fresh database
``<DATABASE_URL name>_bench_<name>`` on the server of ``DATABASE_URL`` (default
postgres://postgres@127.0.0.1:5432/pecmail) and ``PECMAIL_DATA_DIR`` at a new temporary
directory, with tasks run inline and ``DEBUG`` off. ``teardown()`` drops both.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dj_database_url
import psycopg

ROOT = Path(__file__).resolve().parents[1]


def server_connection(config: dict) -> psycopg.Connection:
    """An autocommit connection to the server's ``postgres`` database (to create and drop)."""
    return psycopg.connect(
        dbname="postgres",
        user=config["USER"] or None,
        password=config["PASSWORD"] or None,
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        autocommit=True,
    )


def database(name: str, *, fresh: bool = True) -> str:
    """The URL of the database ``<DATABASE_URL name>_bench_<name>`` on the server of
    ``DATABASE_URL``: dropped and created anew (``fresh``), or created if missing and kept."""
    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/pecmail"
    config = dj_database_url.parse(url)
    if config["ENGINE"] != "django.db.backends.postgresql":
        sys.exit(f"bench/{Path(sys.argv[0]).name} measures PostgreSQL: set DATABASE_URL=postgres://…")
    database = f"{config['NAME']}_bench_{name}"
    with server_connection(config) as server:
        if fresh:
            server.execute(f'DROP DATABASE IF EXISTS "{database}"')
        if fresh or not server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            server.execute(f'CREATE DATABASE "{database}"')
    return url.rsplit("/", 1)[0] + "/" + database


def setup(name: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pecmail.settings")
    os.environ["PECMAIL_DATA_DIR"] = tempfile.mkdtemp(prefix=f"pecmail-bench-{name}-")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", f"bench-{name}-" + "x" * 50)
    os.environ["DATABASE_URL"] = database(name)


def backend_cpu() -> float:
    """CPU seconds of the default connection's PostgreSQL backend (it runs on this machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure[T](run: Callable[[], T]) -> tuple[T, tuple[float, float, float, int]]:
    """``run()``'s result, and what it took: (wall, process CPU, backend CPU, log head locks)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from pecmail.certification.models import ProviderLogHead

    head = ProviderLogHead._meta.db_table
    backend = backend_cpu()
    cpu, wall = time.process_time(), time.perf_counter()
    # The query log keeps the last 9,000 statements: once full, a capture would see none.
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as queries:
        result = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    backend = backend_cpu() - backend
    locks = sum(1 for q in queries.captured_queries if head in q["sql"] and q["sql"].startswith("SELECT seq"))
    return result, (wall, cpu, backend, locks)


def teardown() -> None:
    from django.db import connection

    connection.close()
    config = dj_database_url.parse(os.environ["DATABASE_URL"])
    with server_connection(config) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{config["NAME"]}"')
    shutil.rmtree(os.environ["PECMAIL_DATA_DIR"], ignore_errors=True)


def report(
    results: dict[bool, list[tuple[float, float, float, int]]], *, size: int, unit: str, group: str
) -> None:
    """Print the medians per ``unit`` of (wall, process CPU, backend CPU, log head locks) per
    ``group`` of ``size``, measured one by one (``results[False]``) and batched (``[True]``)."""
    import statistics

    def per_unit(batched: bool, index: int) -> float:
        return statistics.median(r[index] for r in results[batched]) / size * 1000

    print(f"per {unit} (median of the {group}s)".ljust(40) + "one by one    batched   ratio")
    for label, index in (
        ("wall time, ms", 0),
        ("CPU of this process, ms", 1),
        ("CPU of its PostgreSQL backend, ms", 2),
    ):
        one, many = per_unit(False, index), per_unit(True, index)
        print(f"  {label:<36} {one:10.2f} {many:10.2f}   {many / one:5.2f}")
    one = statistics.median(r[3] for r in results[False])
    many = statistics.median(r[3] for r in results[True])
    print(f"  {f'log head locks per {group}':<36} {one:10.0f} {many:10.0f}")
