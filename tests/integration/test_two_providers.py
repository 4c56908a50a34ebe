"""Two pecmail providers on loopback, each its own database, CA, keys and SMTP port.

pec-a.test and pec-b.test run as real processes (``manage.py pec smtpd``, tasks eager inside
each process); each lists the other in its providers index. An aiosmtpd sink plays the
ordinary domain mail.test. SQLite files by default; two PostgreSQL databases when
DATABASE_URL points at PostgreSQL.

Real processes deliver asynchronously, so assertions poll their databases until a bounded
deadline instead of assuming a timing.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from pecmail.certification import envelopes, pki, testing

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
DEADLINE_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(probe: Callable[[], Any], *, what: str, seconds: float = DEADLINE_SECONDS) -> Any:
    """Return probe()'s first truthy value; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; last value: {last!r}")


class Provider:
    def __init__(self, *, domain: str, name: str, directory: Path, database_url: str | None) -> None:
        self.domain = domain
        self.name = name
        self.dir = directory
        self.database_url = database_url
        self.port = free_port()
        self.routes: dict[str, str] = {}
        # Overrides for variants (a real broker instead of eager tasks, shorter sweeps…).
        self.extra_env: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PEC_", "CELERY_", "DJANGO_", "PYTEST", "REDIS_URL", "DATABASE_URL"))
        }
        env.update(
            DJANGO_SETTINGS_MODULE="pecmail.settings",
            PECMAIL_DATA_DIR=str(self.dir),
            PEC_DOMAIN=self.domain,
            PEC_PROVIDER_NAME=self.name,
            PEC_ROUTES=",".join(f"{d}={hp}" for d, hp in self.routes.items()),
            PEC_SMTP_BIND=f"127.0.0.1:{self.port}",
            CELERY_TASK_ALWAYS_EAGER="1",
            LOG_LEVEL="WARNING",
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [PY, "manage.py", *args], cwd=ROOT, env=self.env(), capture_output=True, timeout=300, check=False
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{self.domain}: manage.py {' '.join(args)} failed:\n{done.stderr.decode()[-4000:]}"
            )
        return done.stdout.decode()

    def python(self, code: str) -> Any:
        """Run ``code`` in this provider's Django; it must print one JSON value last."""
        out = self.manage("shell", "-c", code)
        return json.loads(out.strip().splitlines()[-1])

    def start(self, *options: str) -> None:
        log = open(self.dir / "smtpd.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [PY, "manage.py", "pec", "smtpd", "--bind", f"127.0.0.1:{self.port}", *options],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def accepting() -> bool:
            assert self.process is not None and self.process.poll() is None, (
                self.dir / "smtpd.log"
            ).read_text()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False

        wait_until(accepting, what=f"{self.domain} smtpd")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def identity(self) -> pki.ProviderIdentity:
        pki_dir = self.dir / "pki"
        return pki.read_identity(
            key_path=pki_dir / "provider.key",
            cert_path=pki_dir / "provider.pem",
            ca_path=pki_dir / "ca.pem",
            domain=self.domain,
            name=self.name,
        )


class Sink:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        self.messages.append({"rcpt_tos": list(envelope.rcpt_tos), "data": envelope.original_content})
        return "250 OK"


def providers_prepare(a: Provider, b: Provider) -> None:
    """Databases, identities, each in the other's index, alice at A, bob and carol at B."""
    for p in (a, b):
        p.dir.mkdir(parents=True, exist_ok=True)
        p.manage("migrate", "--noinput")
        p.manage("pec", "init-provider")
        p.manage("pec", "index", "export", "--self", "--out", str(p.dir / "self.ldif"))
    a.manage("pec", "index", "import", str(b.dir / "self.ldif"))
    b.manage("pec", "index", "import", str(a.dir / "self.ldif"))
    a.manage("mailbox", "create", "alice@pec-a.test", "--name", "Alice Rossi", "--password", "x-Secret-42")
    for local in ("bob", "carol"):
        b.manage("mailbox", "create", f"{local}@pec-b.test", "--password", "x-Secret-42")


def databases() -> Iterator[tuple[str | None, str | None]]:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        yield None, None
        return
    import psycopg

    root, _slash, _name = base.rpartition("/")
    names = [f"pecmail_it_{key}_{uuid.uuid4().hex[:8]}" for key in ("a", "b")]
    with psycopg.connect(f"{root}/postgres", autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{root}/{names[0]}", f"{root}/{names[1]}"
    finally:
        with psycopg.connect(f"{root}/postgres", autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Provider A, provider B and the ordinary sink, set up once for the module."""
    sink = Sink()
    sink_port = free_port()
    sink_controller = Controller(sink, hostname="127.0.0.1", port=sink_port)
    sink_controller.start()
    dbs = databases()
    url_a, url_b = next(dbs)
    base = tmp_path_factory.mktemp("two-providers")
    a = Provider(domain="pec-a.test", name="Provider A", directory=base / "a", database_url=url_a)
    b = Provider(domain="pec-b.test", name="Provider B", directory=base / "b", database_url=url_b)
    a.routes = {"pec-b.test": f"127.0.0.1:{b.port}", "mail.test": f"127.0.0.1:{sink_port}"}
    b.routes = {"pec-a.test": f"127.0.0.1:{a.port}", "mail.test": f"127.0.0.1:{sink_port}"}
    try:
        providers_prepare(a, b)
        a.start()
        b.start()
        yield {"a": a, "b": b, "sink": sink}
    finally:
        a.stop()
        b.stop()
        sink_controller.stop()
        next(dbs, None)


SUBMIT = """
import json
from pecmail.mail.models import Mailbox
from pecmail.mail.services import message_submit
sent = message_submit(mailbox=Mailbox.objects.get(address="alice@pec-a.test"), to={to!r}, cc={cc!r},
                      subject={subject!r}, body_text="Testo di prova.", body_html=None, attachments=[])
print(json.dumps(sent.pk))
"""

STATE = """
import json
from pecmail.certification.classify import classify
from pecmail.certification.models import ProviderLogEntry
from pecmail.mail.models import Message
from pecmail.mail.storage import raw_get
sent = Message.objects.get(pk={pk})
out = {{"pec_id": sent.pec_id, "deliveries": {{}}, "acceptance": None}}
for d in sent.deliveries.all():
    receipt = d.receipt
    errore = None
    if receipt is not None and receipt.kind == "errore-consegna":
        errore = classify(raw_get(receipt.raw_sha256)).daticert.errore
    out["deliveries"][d.recipient] = {{
        "state": d.state, "certified": d.certified, "taken": d.taken_in_charge_at is not None,
        "receipt": receipt.kind if receipt else None, "type": receipt.receipt_type if receipt else None,
        "errore": errore,
    }}
acceptance = Message.objects.filter(related=sent, kind="accettazione").first()
if acceptance is not None:
    d = classify(raw_get(acceptance.raw_sha256)).daticert
    out["acceptance"] = sorted([r.address, r.tipo] for r in d.destinatari)
out["take_charges"] = sum(
    1 for e in ProviderLogEntry.objects.filter(event="ricevuta-ricevuta")
    if e.details.get("kind") == "presa-in-carico" and sent.pec_id in e.related_ids
)
out["inbox_kinds"] = sorted(Message.objects.filter(mailbox=sent.mailbox, folder__role="inbox").values_list("kind", flat=True))
print(json.dumps(out))
"""

INBOX = """
import json
from pecmail.mail.models import Message
rows = Message.objects.filter(mailbox__address={address!r}, folder__role="inbox").order_by("id")
print(json.dumps([[m.kind, m.pec_id, m.subject] for m in rows]))
"""


def test_it_certifies_a_message_between_two_providers(network):
    a, b, sink = network["a"], network["b"], network["sink"]
    pk = a.python(
        SUBMIT.format(
            to=["bob@pec-b.test", "dave@mail.test"], cc=["carol@pec-b.test"], subject="Contratto firmato"
        )
    )

    def settled():
        state = a.python(STATE.format(pk=pk))
        done = all(
            state["deliveries"].get(r, {}).get("receipt") for r in ("bob@pec-b.test", "carol@pec-b.test")
        )
        return state if done and state["take_charges"] else None

    state = wait_until(settled, what="receipts from pec-b.test")
    assert state["acceptance"] == [
        ["bob@pec-b.test", "certificato"],
        ["carol@pec-b.test", "certificato"],
        ["dave@mail.test", "esterno"],
    ]
    assert state["take_charges"] == 1
    bob, carol, dave = (
        state["deliveries"][r] for r in ("bob@pec-b.test", "carol@pec-b.test", "dave@mail.test")
    )
    assert (bob["state"], bob["taken"], bob["receipt"], bob["type"]) == (
        "delivered",
        True,
        "avvenuta-consegna",
        "completa",
    )
    assert (carol["state"], carol["taken"], carol["receipt"], carol["type"]) == (
        "delivered",
        True,
        "avvenuta-consegna",
        "sintetica",
    )
    assert (dave["certified"], dave["receipt"]) == (False, None)
    # The take-charge is recorded, never shown in alice's Inbox.
    assert state["inbox_kinds"] == ["accettazione", "avvenuta-consegna", "avvenuta-consegna"]
    for address in ("bob@pec-b.test", "carol@pec-b.test"):
        assert b.python(INBOX.format(address=address)) == [
            ["posta-certificata", state["pec_id"], "Contratto firmato"]
        ]
    (for_dave,) = [m for m in sink.messages if m["rcpt_tos"] == ["dave@mail.test"]]
    assert b"X-Trasporto: posta-certificata" in for_dave["data"]
    assert f"Message-ID: <{state['pec_id']}>".encode() in for_dave["data"]


def test_it_returns_no_dest_for_an_unknown_mailbox(network):
    a = network["a"]
    pk = a.python(SUBMIT.format(to=["ghost@pec-b.test"], cc=[], subject="Nessuno"))

    def failed():
        state = a.python(STATE.format(pk=pk))
        return state if state["deliveries"]["ghost@pec-b.test"]["receipt"] else None

    ghost = wait_until(failed, what="the no-dest notice")["deliveries"]["ghost@pec-b.test"]
    assert (ghost["state"], ghost["receipt"], ghost["errore"]) == ("error", "errore-consegna", "no-dest")


def _send(provider: Provider, raw: bytes, rcpt: str) -> None:
    with smtplib.SMTP("127.0.0.1", provider.port, timeout=30) as smtp:
        smtp.sendmail("alice@pec-a.test", [rcpt], raw)


def _forged_envelope(identity: pki.ProviderIdentity, subject: str) -> tuple[bytes, str]:
    when = timezone.now()
    original = (
        "From: alice@pec-a.test\r\nTo: bob@pec-b.test\r\nSubject: " + subject + "\r\n"
        "Message-ID: <" + uuid.uuid4().hex + "@pec-a.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nPagare 100 euro.\r\n"
    ).encode()
    tx = envelopes.Transaction.from_message(
        original, pec_id=envelopes.new_pec_id(identity.domain, when), when=when
    )
    return envelopes.build_transport_envelope(tx, original, identity=identity).raw, tx.pec_id


@pytest.mark.parametrize("forgery", ["one-byte", "untrusted-ca"])
def test_it_wraps_a_forged_envelope_in_an_anomaly_without_receipts(network, forgery):
    a, b = network["a"], network["b"]
    subject = f"Forged {forgery} {uuid.uuid4().hex[:6]}"
    if forgery == "one-byte":
        raw, pec_id = _forged_envelope(a.identity(), subject)
        raw = raw.replace(b"Pagare 100 euro", b"Pagare 900 euro", 1)
    else:
        raw, pec_id = _forged_envelope(
            testing.make_identity("pec-a.test", "Provider A", ca_name="forged CA"), subject
        )
    _send(b, raw, "bob@pec-b.test")

    def anomaly():
        rows = b.python(INBOX.format(address="bob@pec-b.test"))
        return [r for r in rows if r[0] == "anomalia" and subject in r[2]]

    assert len(wait_until(anomaly, what="the anomaly envelope")) == 1
    sent_by_b = b.python(
        "import json\nfrom pecmail.transport.models import OutboundMessage\n"
        f"print(json.dumps(OutboundMessage.objects.filter(pec_id={pec_id!r}).count()))"
    )
    assert sent_by_b == 0


def test_it_refuses_smuggling_and_keeps_serving(network):
    b = network["b"]
    with socket.create_connection(("127.0.0.1", b.port), timeout=30) as sock:
        stream = sock.makefile("rwb")

        def command(line: bytes) -> bytes:
            stream.write(line)
            stream.flush()
            reply = stream.readline()
            while reply[3:4] == b"-":
                reply = stream.readline()
            return reply

        stream.readline()
        assert command(b"EHLO peer.test\r\n").startswith(b"250")
        assert command(b"MAIL FROM:<x@pec-a.test>\r\n").startswith(b"250")
        assert command(b"RCPT TO:<bob@pec-b.test>\r\n").startswith(b"250")
        assert command(b"DATA\r\n").startswith(b"354")
        reply = command(
            b"Subject: a\r\n\r\nbody\n.\nMAIL FROM:<ceo@bank.test>\r\nRCPT TO:<bob@pec-b.test>\r\nDATA\r\nx\r\n.\r\n"
        )
        assert reply.startswith(b"554")
        assert command(b"NOOP\r\n").startswith(b"250")
