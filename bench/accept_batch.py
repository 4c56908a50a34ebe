"""Accepting a burst of submissions, batched or one by one (not a test: ``.venv/bin/python bench/accept_batch.py``).

A burst — a queue of ``message_accept`` tasks behind a busy worker — is accepted by the first
task that runs, up to ``pipeline.ACCEPT_BATCH_MAX`` submissions in one transaction; the tasks
behind it find nothing left to do. This prints, per submission, the wall time, the CPU time of
this process and of its PostgreSQL backend, and the number of transactions that locked the
provider log's head, for the same bursts accepted both ways (each task on its own, as before
batching, and batched), in alternating blocks in one process, and their ratios.

Each burst is ``BENCH_BURST`` submissions (default 16) from alice to bob, a local mailbox,
so no SMTP is involved; every task of the burst runs, the skipped ones included, and the
deliveries they publish are not run. ``BENCH_BLOCKS`` (default 8) bursts each way. Uses a
throw-away database ``<DATABASE_URL name>_bench_accept`` (PostgreSQL, default
postgres://postgres@127.0.0.1:5432/pecmail) and a temporary data directory.
"""

from __future__ import annotations

import os

import throwaway

BURST = int(os.environ.get("BENCH_BURST", "16"))
BLOCKS = int(os.environ.get("BENCH_BLOCKS", "8"))

throwaway.setup("accept")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from pecmail.certification.log import log_verify  # noqa: E402
from pecmail.mail import pipeline, services, tasks  # noqa: E402
from pecmail.mail.models import Message  # noqa: E402


def burst(alice) -> list[int]:
    return [
        services.message_submit(
            mailbox=alice,
            to=[f"bob@{settings.PEC_DOMAIN}"],
            cc=[],
            subject=f"Raffica {n}",
            body_text="Testo della fattura.",
            body_html=None,
            attachments=[],
        ).pk
        for n in range(BURST)
    ]


def accept(ids: list[int], *, batched: bool) -> tuple[float, float, float, int]:
    """Run every task of the burst: (wall, process CPU, backend CPU, head locks)."""
    waiting = pipeline._scan_waiting
    if not batched:
        pipeline._scan_waiting = lambda message_id: {}
    try:
        outcomes, took = throwaway.measure(lambda: [tasks.message_accept(pk) for pk in ids])
    finally:
        pipeline._scan_waiting = waiting
    assert outcomes.count("accepted") >= 1 and set(outcomes) <= {"accepted", "skipped"}, outcomes
    return took


def main() -> None:
    call_command("migrate", verbosity=0)
    call_command("pec", "init-provider", verbosity=0)
    alice = services.mailbox_create(address=f"alice@{settings.PEC_DOMAIN}", password=None)
    services.mailbox_create(address=f"bob@{settings.PEC_DOMAIN}", password=None)
    # The tasks are run by hand below; their deliveries are not run at all.
    tasks.message_accept.delay_on_commit = lambda *args, **kwargs: None
    tasks.message_deliver_local.delay_on_commit = lambda *args, **kwargs: None
    accept(burst(alice), batched=True)  # warm-up: compiled statements, the identity, the trust store
    accept(burst(alice), batched=False)
    results: dict[bool, list[tuple[float, float, float, int]]] = {False: [], True: []}
    for _ in range(BLOCKS):
        for batched in (False, True):
            results[batched].append(accept(burst(alice), batched=batched))
    pending = Message.objects.filter(submission_state=Message.Submission.PENDING).count()
    assert pending == 0, f"{pending} submissions left pending"
    assert log_verify().ok

    print(
        f"PostgreSQL {connection.pg_version}, bursts of {BURST} submissions, {BLOCKS} bursts each way, "
        f"ACCEPT_BATCH_MAX {pipeline.ACCEPT_BATCH_MAX}"
    )
    throwaway.report(results, size=BURST, unit="submission", group="burst")


if __name__ == "__main__":
    try:
        main()
    finally:
        throwaway.teardown()
