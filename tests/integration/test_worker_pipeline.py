"""The local pipeline with a real Celery worker on Redis, against the test database.

Runs only when REDIS_URL is set and the test database is one another process can open
(PostgreSQL, or an SQLite file); eager tasks cover the same path in tests/mail/test_pipeline.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from pecmail.certification import pki, smime, testing
from pecmail.mail import services, storage
from pecmail.mail.models import Delivery, Folder, Message
from tests.conftest import make_mailbox

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real broker for the worker)"
    ),
]

REPO = Path(__file__).resolve().parents[2]
DOMAIN = django_settings.PEC_DOMAIN
# A real worker takes a few seconds to start; the pipeline itself is well under a second.
WORKER_DEADLINE_SECONDS = 60

# The worker runs this: the pipeline's tasks, consuming and producing only on a private queue
# so that nothing else on the same Redis takes our tasks, nor we theirs.
WORKER_SCRIPT = """
import sys
import django
django.setup()
from pecmail.celery import app
queue = sys.argv[1]
app.conf.task_default_queue = queue
app.conf.task_always_eager = False
app.worker_main(["worker", "--pool=solo", "--loglevel=INFO", "-Q", queue,
                 "--without-gossip", "--without-mingle", "--without-heartbeat"])
"""


def database_url() -> str:
    """A URL for the database this test runs on (the test database, not the configured one)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.postgresql":
        user = db.get("USER") or "postgres"
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or "5432"
        return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"
    name = str(db["NAME"])
    if db["ENGINE"] == "django.db.backends.sqlite3" and "memory" not in name and name != ":memory:":
        return f"sqlite:///{name}"
    pytest.skip("the test database is in-memory SQLite: a worker process cannot open it")


@pytest.fixture
def worker(transactional_db, settings, tmp_path):
    """A real Celery worker subprocess on REDIS_URL, sharing the test database, storage and keys."""
    url = database_url()
    pki_dir = tmp_path / "pki"
    pki.init_provider(domain=DOMAIN, name=settings.PEC_PROVIDER_NAME, directory=pki_dir)
    settings.PEC_PKI_DIR = pki_dir
    settings.PEC_SIGNING_KEY = pki_dir / "provider.key"
    settings.PEC_SIGNING_CERT = pki_dir / "provider.pem"
    settings.PEC_CA_CERT = pki_dir / "ca.pem"
    settings.MEDIA_ROOT = tmp_path / "media"
    identity = pki.load_identity()
    from pecmail.certification.index import provider_register_self

    provider_register_self(identity=identity)

    from pecmail.celery import app

    queue = f"pecmail-it-{uuid.uuid4().hex}"
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pecmail.settings",
        "DATABASE_URL": url,
        "PECMAIL_DATA_DIR": str(tmp_path),
        "PEC_DOMAIN": DOMAIN,
        "PEC_PROVIDER_NAME": settings.PEC_PROVIDER_NAME,
        "PEC_SIGNING_KEY": str(settings.PEC_SIGNING_KEY),
        "PEC_SIGNING_CERT": str(settings.PEC_SIGNING_CERT),
        "PEC_CA_CERT": str(settings.PEC_CA_CERT),
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", WORKER_SCRIPT, queue],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield identity, process, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        app.conf.task_always_eager, app.conf.task_default_queue = previous


def wait_for(predicate, process, log_path):
    """Poll the database until ``predicate()`` holds; fail with the worker's log otherwise."""
    deadline = time.monotonic() + WORKER_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            break
        # Waiting on another process: there is no event to block on short of polling.
        time.sleep(0.2)
    pytest.fail("worker did not finish the pipeline:\n" + log_path.read_text(errors="replace")[-4000:])


def test_it_runs_the_local_pipeline_on_a_real_worker(worker):
    identity, process, log_path = worker
    alice = make_mailbox("alice", "Alice Rossi")
    bob = make_mailbox("bob", "Bob Bianchi")
    carol = make_mailbox("carol", "Carol Verdi")
    sent = services.message_submit(
        mailbox=alice,
        to=[bob.address],
        cc=[carol.address],
        subject="Con un worker vero",
        body_text="Testo",
        body_html="<p><b>Testo</b></p>",
        attachments=[("a.pdf", "application/pdf", b"%PDF-1.4 a")],
        priority_high=True,
    )
    # message_submit is atomic: the commit has happened, so delay_on_commit has published.

    def done() -> bool:
        return (
            Delivery.objects.filter(message=sent).count() == 2
            and not Delivery.objects.filter(message=sent, state=Delivery.State.QUEUED).exists()
        )

    wait_for(done, process, log_path)
    sent.refresh_from_db()
    assert sent.submission_state == Message.Submission.ACCEPTED
    deliveries = {d.recipient: d for d in Delivery.objects.filter(message=sent)}
    assert {r: d.state for r, d in deliveries.items()} == {
        bob.address: Delivery.State.DELIVERED,
        carol.address: Delivery.State.DELIVERED,
    }
    receipts = Message.objects.filter(mailbox=alice, folder__role=Folder.Role.INBOX, related=sent)
    assert sorted((r.kind, r.recipient, r.receipt_type) for r in receipts) == sorted(
        [
            (Message.Kind.ACCEPTANCE, "", ""),
            (Message.Kind.DELIVERY, bob.address, "completa"),
            (Message.Kind.DELIVERY, carol.address, "sintetica"),
        ]
    )
    trust = testing.trust_store_for(identity)
    for receipt in receipts:
        result = smime.verify(storage.raw_get(receipt.raw_sha256), trust=trust)
        assert (result.valid, result.trusted) == (True, True), result.problems
    envelope = storage.raw_get(sent.envelope_sha256)
    for mailbox in (bob, carol):
        delivered = Message.objects.get(mailbox=mailbox, kind=Message.Kind.CERTIFIED)
        assert storage.raw_get(delivered.raw_sha256) == envelope
        assert delivered.priority_high is True
