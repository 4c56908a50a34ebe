"""Deadlines across real processes: pec-b.test unreachable, the clock moved in the sweepers.

Provider A runs its ``pec smtpd`` and a real Celery worker (on Redis when REDIS_URL is set,
else on the filesystem broker); pec-b.test is routed to a loopback port where nothing
listens. alice@pec-a.test sends to bob (To) and carol (Cc) at pec-b.test; A tries, fails and
keeps the envelope queued. Then ``manage.py pec deadlines-sweep`` runs in separate OS
processes of provider A whose clock time-machine moves to +11 h 59 (nothing due), +12 h 01
(one preavviso per recipient) and +25 h (one final avviso per recipient). At +12 h 01 and
+25 h two sweepers start together, released by one barrier file, so that "exactly once"
is proved across processes and database connections, not inside one.

Then a delivery receipt B signs after the final notice reaches A's smtpd: the receipt is
still the user's (filed once, Delivery settled), and no further deadline notice follows.
B's receipts are built here with B's own key (B itself never runs: it is "down").

A second test holds a sweeper between listing what is due and emitting it, lands B's
receipt meanwhile, and checks that the receipt wins (no "not delivered" after a delivery).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import smtplib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pecmail.certification import envelopes
from pecmail.certification.classify import classify
from tests.integration.test_two_providers import (
    PY,
    ROOT,
    SUBMIT,
    Provider,
    databases,
    wait_until,
)
from tests.integration.test_two_providers_crash import Worker, redis_flush, redis_url

pytestmark = pytest.mark.integration

BOB, CAROL = "bob@pec-b.test", "carol@pec-b.test"
SUBJECT = "Diffida ad adempiere"
# A Redis database of its own (the crash test uses 11 and 12) so a flush touches nothing else.
REDIS_DB = 13

# Several management commands in one process: a Django start-up costs seconds on a busy machine.
BATCH = """
import django
django.setup()
from django.core.management import call_command
for argv in {commands!r}:
    call_command(*argv)
"""

# Where the submission stands at A: accepted, handed to SMTP, what the attempt got.
ATTEMPT = """
import json
from pecmail.mail.models import Message
from pecmail.transport.models import DeliveryDeadline, OutboundMessage
sent = Message.objects.get(pk={pk})
rows = [
    {{"domain": r.domain, "state": r.state, "attempts": r.attempts, "recipients": sorted(r.recipients),
      "sent_at": r.sent_at is not None, "results": r.results, "last_reply": r.last_reply}}
    for r in OutboundMessage.objects.filter(sent_message_id=sent.pk)
]
print(json.dumps({{
    "submission": sent.submission_state, "pec_id": sent.pec_id, "created": sent.created_at.isoformat(),
    "outbound": rows,
    "deadlines": sorted(
        [d.delivery.recipient, (d.warn_at - d.dispatched_at).total_seconds(),
         (d.expire_at - d.dispatched_at).total_seconds(), d.dispatched_at.isoformat()]
        for d in DeliveryDeadline.objects.select_related("delivery").filter(delivery__message=sent)
    ),
}}))
"""

# One sweeper: waits for the barrier file, then runs the real subcommand at a moved clock.
SWEEP = """
import datetime as dt, io, json, os, time
import django
django.setup()
import time_machine
from django.core.management import call_command
from django.db import connection
connection.ensure_connection()
hold = {hold!r}
if hold:
    # Pause after the sweep listed what is due, before its first notice: a receipt lands meanwhile.
    from pecmail.transport import deadlines
    emit = deadlines._emit
    def held(**kwargs):
        open(hold + ".waiting", "w").close()
        until = time.monotonic() + 120
        while not os.path.exists(hold) and time.monotonic() < until:
            time.sleep(0.005)
        return emit(**kwargs)
    deadlines._emit = held
open({ready!r}, "w").close()
give_up = time.monotonic() + 120
while not os.path.exists({barrier!r}):
    if time.monotonic() > give_up:
        raise SystemExit("the barrier never opened")
    time.sleep(0.005)
out = io.StringIO()
with time_machine.travel(dt.datetime.fromisoformat({at!r}), tick=False):
    call_command("pec", "deadlines-sweep", stdout=out)
print(json.dumps(out.getvalue().strip()))
"""

# Everything alice's provider holds about the message, the notices and their log rows.
OUTCOME = """
import json
from email import message_from_bytes
from pecmail.certification.classify import classify
from pecmail.certification.index import trust_store
from pecmail.certification.log import log_verify
from pecmail.certification.models import ProviderLogEntry
from pecmail.mail.models import Message
from pecmail.mail.storage import raw_get
from pecmail.transport.models import DeliveryDeadline, InboundMessage
sent = Message.objects.get(pk={pk})
# Read first: an inbound message is marked processed only after its work committed, so what is
# read below already holds that work (read last, a receipt could commit between the reads).
inbound = [[i.state, i.kind] for i in InboundMessage.objects.filter(pec_id=sent.pec_id).order_by("id")]
trust = trust_store()
notices = []
for m in Message.objects.filter(related=sent, folder__role="inbox").exclude(kind="accettazione").order_by("id"):
    raw = raw_get(m.raw_sha256)
    c = classify(raw, trust=trust)
    d = c.daticert
    h = message_from_bytes(raw)
    notices.append({{
        "id": m.pk, "kind": m.kind, "stage": m.notice_stage, "recipient": m.recipient,
        "related": m.related_id, "message_id": m.message_id,
        "classified": c.kind, "valid": c.valid, "signed": bool(c.signature and c.signature.valid),
        "trusted": bool(c.signature and c.signature.trusted), "problems": c.problems,
        "signer": c.signature.provider.name if c.signature and c.signature.provider else None,
        "original_included": c.postacert is not None,
        "headers": {{k: str(h.get(k, "")) for k in ("X-Ricevuta", "Subject", "From", "To", "X-Riferimento-Message-ID")}},
        "daticert": None if d is None else {{
            "tipo": d.tipo, "errore": d.errore, "mittente": d.mittente,
            "destinatari": sorted([r.address, r.tipo] for r in d.destinatari),
            "gestore": d.gestore_emittente, "data": d.data.isoformat(), "identificativo": d.identificativo,
            "msgid": d.msgid, "oggetto": d.oggetto, "consegna": d.consegna, "errore_esteso": d.errore_esteso,
        }},
    }})
deliveries = {{
    x.recipient: {{"state": x.state, "receipt": x.receipt_id, "error": x.error,
                   "delivered": x.delivered_at.isoformat() if x.delivered_at else None}}
    for x in sent.deliveries.all()
}}
deadlines = {{
    x.delivery.recipient: [x.warned_at.isoformat() if x.warned_at else None,
                           x.expired_at.isoformat() if x.expired_at else None]
    for x in DeliveryDeadline.objects.select_related("delivery").filter(delivery__message=sent)
}}
log = sorted(
    [e.event, sorted(e.recipients), e.identifier, e.at.isoformat()]
    for e in ProviderLogEntry.objects.filter(event__in=["preavviso-errore-consegna", "errore-consegna-24h"])
    if sent.pec_id in e.related_ids
)
received = sorted(
    [e.details.get("kind"), sorted(e.recipients)]
    for e in ProviderLogEntry.objects.filter(event="ricevuta-ricevuta") if sent.pec_id in e.related_ids
)
print(json.dumps({{"pec_id": sent.pec_id, "client_msgid": sent.client_msgid, "notices": notices,
                   "deliveries": deliveries, "deadlines": deadlines, "log": log, "received": received,
                   "log_ok": log_verify().ok,
                   "inbound": inbound}}))
"""

ENVELOPE = """
import base64, json
from pecmail.mail.models import Message
from pecmail.mail.storage import raw_get
sent = Message.objects.get(pk={pk})
print(json.dumps(base64.b64encode(raw_get(sent.envelope_sha256)).decode()))
"""


def batch_start(provider: Provider, *commands: tuple[str, ...]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PY, "-c", BATCH.format(commands=[list(c) for c in commands])],
        cwd=ROOT,
        env=provider.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def batches_run(*started: tuple[Provider, subprocess.Popen[bytes]]) -> None:
    for provider, process in started:
        _out, err = process.communicate(timeout=300)
        assert process.returncode == 0, f"{provider.domain}: {err.decode()[-4000:]}"


def providers_prepare_parallel(a: Provider, b: Provider) -> None:
    """What ``providers_prepare`` does (alice at A, bob and carol at B), in two parallel rounds."""
    for p in (a, b):
        p.dir.mkdir(parents=True, exist_ok=True)
    batches_run(
        *(
            (
                p,
                batch_start(
                    p,
                    ("migrate", "--noinput", "--verbosity", "0"),
                    ("pec", "init-provider"),
                    ("pec", "index", "export", "--self", "--out", str(p.dir / "self.ldif")),
                ),
            )
            for p in (a, b)
        )
    )
    batches_run(
        (
            a,
            batch_start(
                a,
                ("pec", "index", "import", str(b.dir / "self.ldif")),
                (
                    "mailbox",
                    "create",
                    "alice@pec-a.test",
                    "--name",
                    "Alice Rossi",
                    "--password",
                    "x-Secret-42",
                ),
            ),
        ),
        (
            b,
            batch_start(
                b,
                ("pec", "index", "import", str(a.dir / "self.ldif")),
                *(("mailbox", "create", r, "--password", "x-Secret-42") for r in (BOB, CAROL)),
            ),
        ),
    )


class Sweepers:
    """``count`` deadline sweepers of ``provider`` at clock ``at``, released together.

    With ``hold``, each sweeper pauses after listing what is due until that file exists.
    """

    def __init__(
        self, provider: Provider, at: dt.datetime, count: int, tag: str, hold: Path | None = None
    ) -> None:
        self.provider = provider
        self.barrier = provider.dir / f"barrier-{tag}"
        self.ready = [provider.dir / f"ready-{tag}-{i}" for i in range(count)]
        self.processes = [
            subprocess.Popen(
                [
                    PY,
                    "-c",
                    SWEEP.format(
                        ready=str(ready), barrier=str(self.barrier), at=at.isoformat(), hold=str(hold or "")
                    ),
                ],
                cwd=ROOT,
                env=provider.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for ready in self.ready
        ]

    def _alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                pytest.fail(f"a sweeper ended early: {process.communicate()[1].decode()[-4000:]}")

    def release(self) -> None:
        """Open the barrier once every sweeper is connected."""

        def all_ready() -> bool:
            self._alive()
            return all(path.exists() for path in self.ready)

        wait_until(all_ready, what="the sweepers to connect")
        self.barrier.touch()

    def results(self) -> list[int]:
        """What each sweeper emitted."""
        emitted = []
        for process in self.processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err.decode()[-4000:]
            message = json.loads(out.decode().strip().splitlines()[-1])
            # "emitted N notice(s)", printed by ``pec deadlines-sweep``.
            emitted.append(int(message.split()[1]))
        return emitted

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def sweep(provider: Provider, at: dt.datetime, *, count: int, tag: str) -> list[int]:
    sweepers = Sweepers(provider, at, count, tag)
    try:
        sweepers.release()
        return sweepers.results()
    finally:
        sweepers.kill()


@pytest.fixture(scope="module")
def providers(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Provider A up (smtpd + worker), pec-b.test prepared but routed to a port nobody serves."""
    dbs = databases()
    url_a, url_b = next(dbs)
    base = tmp_path_factory.mktemp("deadlines")
    a = Provider(domain="pec-a.test", name="Provider A", directory=base / "a", database_url=url_a)
    b = Provider(domain="pec-b.test", name="Provider B", directory=base / "b", database_url=url_b)
    # Bound but never listening: connections are refused, and no other process can take the port.
    dead_socket = socket.socket()
    dead_socket.bind(("127.0.0.1", 0))
    dead = dead_socket.getsockname()[1]
    a.routes = {"pec-b.test": f"127.0.0.1:{dead}"}
    a.extra_env = {"CELERY_TASK_ALWAYS_EAGER": "0"}
    if os.environ.get("REDIS_URL"):
        a.extra_env["REDIS_URL"] = redis_url(REDIS_DB)
        redis_flush(a.extra_env["REDIS_URL"])
    worker = Worker(a, "pec-a-deadlines")
    try:
        providers_prepare_parallel(a, b)
        worker.start()  # boots while the smtpd starts and alice submits
        a.start()
        yield {"a": a, "b": b, "dead_port": dead}
    finally:
        # Nothing to finish cleanly: a warm shutdown only waits for the pending ETA retry.
        if worker.process is not None:
            with contextlib.suppress(ProcessLookupError):
                worker.kill()
        worker.stop()
        a.stop()
        dead_socket.close()
        next(dbs, None)
        print(f"--- {a.domain} logs under {a.dir}", sorted(f.name for f in Path(a.dir).glob("*.log")))


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(none)"


def _aware(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def first_attempt(a: Provider, pk: int, *, recipients: list[str], dead_port: int) -> dt.datetime:
    """Wait until A tried pec-b.test, got no answer and keeps the envelope queued; the dispatch time."""
    seen: list[dict[str, Any]] = []

    def attempted() -> dict[str, Any] | None:
        seen[:] = [a.python(ATTEMPT.format(pk=pk))]
        rows = seen[0]["outbound"]
        return seen[0] if rows and rows[0]["attempts"] >= 1 and rows[0]["state"] == "queued" else None

    try:
        state = wait_until(attempted, what="A's first SMTP attempt to pec-b.test")
    except pytest.fail.Exception:
        pytest.fail(f"no failed attempt; A's state: {seen}; worker log: {_tail(a.dir / 'worker.log')}")
    assert state["submission"] == "accepted"
    (row,) = state["outbound"]
    assert (row["domain"], row["recipients"], row["sent_at"], row["results"]) == (
        "pec-b.test",
        recipients,
        False,
        {},
    )
    assert row["last_reply"].startswith(f"421 127.0.0.1:{dead_port}: "), row["last_reply"]
    # The final notice is due at 23 h 30 min: inside SPEC §2.5's window of 22 to 24 hours.
    assert [d[:3] for d in state["deadlines"]] == [[r, 12 * 3600, 23.5 * 3600] for r in recipients]
    return _aware(state["deadlines"][0][3])


def receipt_from_b(
    a: Provider, b: Provider, pk: int, recipient: str, *, to: list[str], cc: list[str], when: dt.datetime
) -> bytes:
    """B's signed ricevuta di avvenuta consegna for ``recipient`` of A's envelope, dated ``when``."""
    envelope = base64.b64decode(a.python(ENVELOPE.format(pk=pk)))
    result = classify(envelope)
    assert result.daticert is not None
    tx = envelopes.Transaction.from_daticert(result.daticert, to=to, cc=cc, when=when)
    receipt_type = "completa" if recipient in to else "sintetica"
    original = result.postacert if receipt_type == "completa" else None
    return envelopes.build_delivery_receipt(tx, recipient, receipt_type, original, identity=b.identity()).raw


def smtp_to_a(a: Provider, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", a.port, timeout=30) as smtp:
        smtp.sendmail("posta-certificata@pec-b.test", ["alice@pec-a.test"], raw)


def processed(a: Provider, pk: int, count: int) -> dict[str, Any]:
    """A's outcome once ``count`` inbound messages about ``pk`` are processed."""

    def done() -> dict[str, Any] | None:
        state = a.python(OUTCOME.format(pk=pk))
        return state if [i[0] for i in state["inbound"]] == ["processed"] * count else None

    return wait_until(done, what=f"{count} receipt(s) processed at A")


def stages(outcome: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((n["kind"], n["stage"], n["recipient"]) for n in outcome["notices"])


def test_it_emits_each_deadline_notice_once_across_sweeper_processes(providers):
    a, b = providers["a"], providers["b"]
    pk = a.python(SUBMIT.format(to=[BOB], cc=[CAROL], subject=SUBJECT))
    dispatched = first_attempt(a, pk, recipients=[BOB, CAROL], dead_port=providers["dead_port"])

    warn, expire = dispatched + dt.timedelta(hours=12, minutes=1), dispatched + dt.timedelta(hours=25)
    assert sweep(a, dispatched + dt.timedelta(hours=11, minutes=59), count=1, tag="11h59") == [0]
    at_12h = sweep(a, warn, count=2, tag="12h01")
    assert sum(at_12h) == 2, at_12h
    at_25h = sweep(a, expire, count=2, tag="25h")
    assert sum(at_25h) == 2, at_25h

    outcome = a.python(OUTCOME.format(pk=pk))
    pec_id, client_msgid = outcome["pec_id"], outcome["client_msgid"]
    assert client_msgid and pec_id not in client_msgid
    notices = outcome["notices"]
    assert sorted((n["kind"], n["stage"], n["recipient"]) for n in notices) == [
        ("preavviso-errore-consegna", "12h", BOB),
        ("preavviso-errore-consegna", "12h", CAROL),
        ("preavviso-errore-consegna", "24h", BOB),
        ("preavviso-errore-consegna", "24h", CAROL),
    ]
    by_key = {(n["stage"], n["recipient"]): n for n in notices}
    for (stage, recipient), n in by_key.items():
        at, code, text = (
            (warn, "4.4.7", envelopes.TIMEOUT_TEXT[12][1])
            if stage == "12h"
            else (expire, "5.4.1", envelopes.TIMEOUT_TEXT[24][1])
        )
        assert n["related"] == pk
        assert (n["classified"], n["valid"], n["signed"], n["trusted"], n["signer"]) == (
            "preavviso-errore-consegna",
            True,
            True,
            True,
            "Provider A",
        ), n["problems"]
        assert not n["original_included"]  # SPEC §3.4: the original MUST NOT be included.
        assert n["headers"] == {
            "X-Ricevuta": "preavviso-errore-consegna",
            "Subject": f"AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: {SUBJECT}",
            "From": n["headers"]["From"],
            "To": n["headers"]["To"],
            # SPEC §3: notifications reference the client's msgid, not the PEC one.
            "X-Riferimento-Message-ID": f"<{client_msgid}>",
        }
        assert "posta-certificata@pec-a.test" in n["headers"]["From"]
        assert "alice@pec-a.test" in n["headers"]["To"]
        d = n["daticert"]
        assert {
            k: d[k]
            for k in ("tipo", "errore", "mittente", "gestore", "identificativo", "oggetto", "consegna")
        } == {
            "tipo": "preavviso-errore-consegna",
            "errore": "altro",
            "mittente": "alice@pec-a.test",
            "gestore": "Provider A",
            "identificativo": pec_id,
            "oggetto": SUBJECT,
            "consegna": recipient,
        }
        assert d["msgid"] == f"<{client_msgid}>"
        assert d["destinatari"] == [[BOB, "certificato"], [CAROL, "certificato"]]
        assert d["errore_esteso"] == f"{code} - Provider A - {text}"
        # The notice bears the sweeper's (moved) clock, to the second.
        assert _aware(d["data"]) == at.replace(microsecond=0)

    # Each Delivery timed out and points at its own 24 h notice; both claims carry the sweep times.
    for recipient in (BOB, CAROL):
        delivery = outcome["deliveries"][recipient]
        assert (delivery["state"], delivery["receipt"]) == ("timeout", by_key[("24h", recipient)]["id"])
        assert delivery["error"] == envelopes.TIMEOUT_TEXT[24][1]
        assert [_aware(t) for t in outcome["deadlines"][recipient]] == [warn, expire]
    # One provider log row per notice, naming the notice it records; the hash chain intact.
    assert [[e, r, i, _aware(at)] for e, r, i, at in outcome["log"]] == sorted(
        [
            "preavviso-errore-consegna" if stage == "12h" else "errore-consegna-24h",
            [recipient],
            by_key[(stage, recipient)]["message_id"].strip("<>"),
            warn if stage == "12h" else expire,
        ]
        for stage, recipient in by_key
    )
    assert outcome["log_ok"]
    assert outcome["received"] == []

    # B answers late: its delivery receipt for carol, signed after the final notice, reaches A's
    # smtpd. The receipt is still alice's (filed once, even if B sends it twice) and settles the
    # Delivery; the deadlines are over, so a later sweep emits nothing.
    late = expire + dt.timedelta(minutes=30)
    receipt = receipt_from_b(a, b, pk, CAROL, to=[BOB], cc=[CAROL], when=late)
    smtp_to_a(a, receipt)
    smtp_to_a(a, receipt)
    after = processed(a, pk, 2)
    assert [i[1] for i in after["inbound"]] == ["avvenuta-consegna", "avvenuta-consegna"]
    assert sweep(a, late + dt.timedelta(hours=24), count=1, tag="49h") == [0]
    after = a.python(OUTCOME.format(pk=pk))
    assert stages(after) == sorted([*stages(outcome), ("avvenuta-consegna", "", CAROL)])
    (late_receipt,) = [n for n in after["notices"] if n["kind"] == "avvenuta-consegna"]
    assert (late_receipt["valid"], late_receipt["signer"]) == (True, "Provider B")
    carol = after["deliveries"][CAROL]
    assert (carol["state"], carol["receipt"]) == ("delivered", late_receipt["id"])
    assert _aware(carol["delivered"]) == late.replace(microsecond=0)
    assert after["deliveries"][BOB] == outcome["deliveries"][BOB]
    assert after["log"] == outcome["log"]
    assert after["received"] == [["avvenuta-consegna", [CAROL]]]
    assert after["log_ok"]


def test_it_sends_no_final_notice_for_a_receipt_that_lands_during_the_sweep(providers):
    """The sweep lists what is due, then works through it: a receipt arriving in between wins.

    The sweeper is held after it listed bob's 24 h deadline; B's delivery receipt reaches A's
    smtpd and is processed; released, the sweeper must not tell alice that a message already
    delivered was not delivered.
    """
    a, b = providers["a"], providers["b"]
    pk = a.python(SUBMIT.format(to=[BOB], cc=[], subject="Consegna in extremis"))
    dispatched = first_attempt(a, pk, recipients=[BOB], dead_port=providers["dead_port"])
    warn, expire = dispatched + dt.timedelta(hours=12, minutes=1), dispatched + dt.timedelta(hours=25)
    assert sweep(a, warn, count=1, tag="race-12h01") == [1]

    hold = a.dir / "hold-race"
    sweeper = Sweepers(a, expire, 1, "race-25h", hold=hold)
    try:
        sweeper.release()

        def listed() -> bool:
            sweeper._alive()
            return Path(f"{hold}.waiting").exists()

        wait_until(listed, what="the sweeper to list bob's 24 h deadline")
        delivered = expire - dt.timedelta(seconds=30)
        smtp_to_a(a, receipt_from_b(a, b, pk, BOB, to=[BOB], cc=[], when=delivered))
        receipt_in = processed(a, pk, 1)
        assert receipt_in["deliveries"][BOB]["state"] == "delivered"
        hold.touch()
        assert sweeper.results() == [0]
    finally:
        sweeper.kill()

    outcome = a.python(OUTCOME.format(pk=pk))
    assert stages(outcome) == [("avvenuta-consegna", "", BOB), ("preavviso-errore-consegna", "12h", BOB)]
    (receipt,) = [n for n in outcome["notices"] if n["kind"] == "avvenuta-consegna"]
    bob = outcome["deliveries"][BOB]
    assert (bob["state"], bob["receipt"], _aware(bob["delivered"])) == (
        "delivered",
        receipt["id"],
        delivered.replace(microsecond=0),
    )
    assert [_aware(t) if t else None for t in outcome["deadlines"][BOB]] == [warn, None]
    assert [row[0] for row in outcome["log"]] == ["preavviso-errore-consegna"]
    assert outcome["log_ok"]
