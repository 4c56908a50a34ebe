"""Nothing lost, nothing doubled: two providers with real Celery workers on Redis, under abuse.

Alice at pec-a.test sends PEC_CRASH_MESSAGES (default 200) messages to bob at pec-b.test while
provider A's worker is killed with SIGKILL twice (and restarted) and A's Redis database is
flushed once. Every message must end with exactly one acceptance, one take-charge recorded,
one delivery receipt, and exactly one copy in bob's Inbox. Recovery comes from the
transactional outbox, the sweeps (shortened here through settings) and the claims.

Each provider has its own Redis database (11 and 12 on REDIS_URL's server) so that flushing
A touches nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_two_providers import PY, ROOT, Provider, databases, providers_prepare, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (real brokers for the workers)"
    ),
]

MESSAGES = int(os.environ.get("PEC_CRASH_MESSAGES", "200"))


def redis_url(db: int) -> str:
    base = os.environ["REDIS_URL"]
    scheme, _sep, rest = base.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{db}"


def redis_flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


class Worker:
    """A Celery worker (prefork, its own process group so SIGKILL takes every child) plus beat."""

    def __init__(self, provider: Provider, name: str) -> None:
        self.provider = provider
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self.beat: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        handle = open(self.provider.dir / log, "ab")  # noqa: SIM115 - lives as long as the process
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.provider.env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self) -> None:
        self.process = self._spawn(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "pecmail",
                "worker",
                "--concurrency=2",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{self.name}@%h",
            ],
            "worker.log",
        )
        if self.beat is None:
            self.beat = self._spawn(
                [
                    PY,
                    "-m",
                    "celery",
                    "-A",
                    "pecmail",
                    "beat",
                    "--loglevel=WARNING",
                    "-s",
                    str(self.provider.dir / "beat-schedule"),
                ],
                "beat.log",
            )

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        for process in (self.process, self.beat):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


SUBMIT_MANY = """
import json
from pecmail.mail.models import Mailbox
from pecmail.mail.services import message_submit
alice = Mailbox.objects.get(address="alice@pec-a.test")
for i in range({count}):
    message_submit(mailbox=alice, to=["bob@pec-b.test"], cc=[], subject=f"Messaggio {{i}}",
                   body_text="Testo.", body_html=None, attachments=[])
print(json.dumps({count}))
"""

PROGRESS_A = """
import json
from django.db.models import Count
from pecmail.certification.models import ProviderLogEntry
from pecmail.mail.models import Delivery, Message
sent = Message.objects.filter(kind="submitted")
take_charges = {}
for entry in ProviderLogEntry.objects.filter(event="ricevuta-ricevuta"):
    if entry.details.get("kind") == "presa-in-carico":
        for pec_id in entry.related_ids:
            take_charges[pec_id] = take_charges.get(pec_id, 0) + 1
receipts = Message.objects.filter(related__in=sent).values("related_id", "kind").annotate(n=Count("id"))
per_kind = {}
for row in receipts:
    per_kind.setdefault(row["kind"], []).append(row["n"])
print(json.dumps({
    "submitted": sent.count(),
    "accepted": sent.filter(submission_state="accepted").count(),
    "delivered": Delivery.objects.filter(state="delivered", receipt__isnull=False).count(),
    "taken": Delivery.objects.filter(taken_in_charge_at__isnull=False).count(),
    "receipts": {k: [len(v), max(v)] for k, v in per_kind.items()},
    "take_charges": [len(take_charges), max(take_charges.values(), default=0)],
    "pec_ids": sorted(p for p in sent.values_list("pec_id", flat=True) if p),
}))
"""

INBOX_B = """
import json
from pecmail.mail.models import Message
from pecmail.transport.models import TakeCharge
rows = list(Message.objects.filter(mailbox__address="bob@pec-b.test", kind="posta-certificata").values_list("pec_id", flat=True))
print(json.dumps({"envelopes": len(rows), "distinct": len(set(rows)), "pec_ids": sorted(set(rows)),
                  "take_charges": TakeCharge.objects.count()}))
"""


def test_it_loses_and_doubles_nothing_when_workers_die_and_redis_is_flushed(tmp_path_factory):
    dbs = databases()
    url_a, url_b = next(dbs)
    base = tmp_path_factory.mktemp("crash")
    a = Provider(domain="pec-a.test", name="Provider A", directory=base / "a", database_url=url_a)
    b = Provider(domain="pec-b.test", name="Provider B", directory=base / "b", database_url=url_b)
    a.routes = {"pec-b.test": f"127.0.0.1:{b.port}"}
    b.routes = {"pec-a.test": f"127.0.0.1:{a.port}"}
    shortened = {
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PEC_TRANSPORT_SWEEP_INTERVAL": "3",
        "PEC_TRANSPORT_SWEEP_GRACE": "10",
        "PEC_OUTBOX_RELAY_GRACE": "5",
        "PEC_INBOUND_RETRY_AFTER": "15",
        "PEC_SMTP_CLAIM_LEASE": "20",
    }
    a.extra_env = {**shortened, "REDIS_URL": redis_url(11)}
    b.extra_env = {**shortened, "REDIS_URL": redis_url(12)}
    redis_flush(a.extra_env["REDIS_URL"])
    redis_flush(b.extra_env["REDIS_URL"])
    worker_a, worker_b = Worker(a, "pec-a"), Worker(b, "pec-b")
    submitter = None
    try:
        providers_prepare(a, b)
        a.start()
        b.start()
        worker_a.start()
        worker_b.start()
        submitter = subprocess.Popen(
            [PY, "manage.py", "shell", "-c", SUBMIT_MANY.format(count=MESSAGES)],
            cwd=ROOT,
            env=a.env(),
            stdout=subprocess.DEVNULL,
            stderr=open(a.dir / "submit.log", "ab"),  # noqa: SIM115
        )

        def progress() -> dict[str, Any]:
            return a.python(PROGRESS_A)

        wait_until(lambda: progress()["accepted"] >= MESSAGES // 4, what="a quarter accepted")
        worker_a.kill()
        worker_a.start()
        wait_until(lambda: progress()["submitted"] >= MESSAGES // 2, what="half submitted")
        redis_flush(a.extra_env["REDIS_URL"])
        # Tasks flushed away come back through the sweeps (MAIL-CORE's after two minutes).
        wait_until(
            lambda: progress()["accepted"] >= (3 * MESSAGES) // 4, what="three quarters accepted", seconds=600
        )
        worker_a.kill()
        worker_a.start()
        assert submitter.wait(timeout=600) == 0, (a.dir / "submit.log").read_text()[-3000:]

        def all_delivered() -> dict[str, Any] | None:
            state = progress()
            return state if state["delivered"] == MESSAGES and state["taken"] == MESSAGES else None

        state = wait_until(all_delivered, what="every delivery receipt", seconds=900)
        assert state["submitted"] == state["accepted"] == MESSAGES
        # [messages with such a receipt, most copies for one message]
        assert state["receipts"]["accettazione"] == [MESSAGES, 1]
        assert state["receipts"]["avvenuta-consegna"] == [MESSAGES, 1]
        assert "errore-consegna" not in state["receipts"]
        assert state["take_charges"] == [MESSAGES, 1]
        at_b = b.python(INBOX_B)
        assert (at_b["envelopes"], at_b["distinct"], at_b["take_charges"]) == (MESSAGES, MESSAGES, MESSAGES)
        assert at_b["pec_ids"] == state["pec_ids"]
    finally:
        if submitter is not None and submitter.poll() is None:
            submitter.kill()
            submitter.wait()
        worker_a.stop()
        worker_b.stop()
        a.stop()
        b.stop()
        next(dbs, None)
        for p in (a, b):
            print(f"--- {p.domain} logs under {p.dir}", [f.name for f in Path(p.dir).glob("*.log")])
