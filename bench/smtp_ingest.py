"""SMTP ingest throughput of ``pec smtpd`` (not a test: ``.venv/bin/python bench/smtp_ingest.py``).

Starts, in a temporary data directory, ``manage.py pec smtpd`` and next to it a bare
aiosmtpd server that discards what it receives; then sends the same signed transport
envelopes (``BENCH_ENVELOPES`` distinct ones, default 12,000, so that none is sent twice) to
each for ``BENCH_SECONDS`` (default 5) per run, over each number of parallel connections in
``BENCH_CONNECTIONS`` (default "4,16"). It prints envelopes per second for both servers and
their ratio at each number, then the ratio of their capacities: the best rate each reached
(target ≥ 0.5). Few connections measure latency more than capacity: every session of
pec smtpd waits for a durable commit before its 250, which the bare server does not, and a
busier pec smtpd commits more sessions at once. Before each run the dirty pages of the one
before are written out (``sync``), so that the bare server does not pay for the kernel
flushing what pec smtpd wrote.

To include verification at DATA the recipient's mailbox refuses ordinary mail (unless
BENCH_VERIFY=0), so every envelope is classified (S/MIME verify against the providers
index) before the durable commit (raw bytes + inbound rows + log rows + outbox row, group
committed). The server runs with DEBUG off as in production and publishes its Celery
messages (filesystem broker, or Redis with REDIS_URL), but no worker runs, so only ingest
is measured. Uses SQLite unless DATABASE_URL is set (then a throw-away PostgreSQL database
is created next to it).

``--e2e`` measures instead end to end between two instances (pec-a.test → pec-b.test, each
with ``pec smtpd``, a Celery worker and beat on its own Redis database 7/8 of REDIS_URL (the tests use others)):
alice submits at a steady ``BENCH_RATES`` (default "20,50") messages per second for
``BENCH_SECONDS``; printed are p50/p99 of submit → delivery receipt filed (target p99 < 10 s)
and whether the rate was sustained: the median latency of the first fifth of the messages
submitted next to that of the last fifth. Below the offered capacity latency grows over the run
(and with BENCH_SECONDS); at a steady rate it stays flat. At a steady rate it also prints the
CPU time per message of each kind of process (from /proc, Linux only): what a rate costs, and
so how far the machine is from a higher one.
"""

from __future__ import annotations

import json
import os
import resource
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PY = sys.executable
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = [int(n) for n in os.environ.get("BENCH_CONNECTIONS", "4,16").split(",")]
# BENCH_VERIFY=0: the recipient accepts ordinary mail (the default), so DATA skips classification.
VERIFY = os.environ.get("BENCH_VERIFY", "1") != "0"
ENVELOPES = int(os.environ.get("BENCH_ENVELOPES", "12000"))
DOMAIN = "pec-bench.test"
RCPT = f"bob@{DOMAIN}"

DISCARD_SERVER = """
import sys, threading
from aiosmtpd.controller import Controller
class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
controller = Controller(Discard(), hostname="127.0.0.1", port=int(sys.argv[1]), data_size_limit=100_000_000)
controller.start()
print("ready", flush=True)
threading.Event().wait()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on {port} did not start")


def provider_env(data_dir: Path, database_url: str | None, port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PEC_", "CELERY_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="pecmail.settings",
        PECMAIL_DATA_DIR=str(data_dir),
        PEC_DOMAIN=DOMAIN,
        PEC_PROVIDER_NAME="Bench B",
        PEC_SMTP_BIND=f"127.0.0.1:{port}",
        LOG_LEVEL="WARNING",
        # As in production: DEBUG on would record every SQL statement of the server.
        DEBUG="0",
        SECRET_KEY=f"bench-{uuid.uuid4().hex}{uuid.uuid4().hex}",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, check=False)
    if done.returncode:
        raise SystemExit(done.stderr.decode()[-3000:])
    return done.stdout.decode()


def sender_envelopes(count: int) -> tuple[list[bytes], str]:
    """Signed transport envelopes from a bench provider A, and the LDIF entry that trusts it."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pecmail.settings")
    import django

    django.setup()
    from django.utils import timezone

    from pecmail.certification import envelopes, ldif, testing

    identity = testing.make_identity("pec-a.test", "Bench A")
    raws = []
    for i in range(count):
        when = timezone.now()
        original = (
            f"From: alice@pec-a.test\r\nTo: {RCPT}\r\nSubject: Bench {i}\r\nMessage-ID: <{uuid.uuid4().hex}@pec-a.test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            + ("Testo di prova, riga lunga ottanta caratteri circa per il benchmark di ingresso.\r\n" * 100)
            + "\r\n"
        ).encode()
        tx = envelopes.Transaction.from_message(
            original, pec_id=envelopes.new_pec_id("pec-a.test", when), when=when
        )
        raws.append(envelopes.build_transport_envelope(tx, original, identity=identity).raw)
    record = ldif.ProviderRecord(
        name="Bench A",
        mail_receipt=identity.service_address,
        domains=["pec-a.test"],
        certificates=[identity.cert],
    )
    return raws, ldif.write([record.to_entry()])


def blast(port: int, raws: list[bytes], seconds: float, connections: int, first: int = 0) -> tuple[int, int]:
    """Send for ``seconds`` over ``connections`` connections from ``raws[first]`` on; return (accepted, refused)."""
    stop = time.monotonic() + seconds
    counts = [[0, 0] for _ in range(connections)]

    def run(slot: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            i = first + slot
            while time.monotonic() < stop:
                try:
                    smtp.sendmail("alice@pec-a.test", [RCPT], raws[i % len(raws)])
                    counts[slot][0] += 1
                except smtplib.SMTPException as exc:
                    if counts[slot][1] == 0:
                        print(f"first refusal on {port}: {exc}", file=sys.stderr)
                    counts[slot][1] += 1
                i += connections

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def settle() -> None:
    """Write out the dirty pages of the run before, so that no run pays for another's writes."""
    os.sync()
    time.sleep(0.5)


def postgres_database() -> tuple[str | None, str | None]:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        return None, None
    import psycopg

    root = base.rpartition("/")[0]
    name = f"pecmail_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{root}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{root}/{name}", name


def drop_postgres(database_url: str | None, name: str | None) -> None:
    if not database_url:
        return
    import psycopg

    root = database_url.rpartition("/")[0]
    with psycopg.connect(f"{root}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    # Distinct envelopes, enough that none is sent twice, as from real peers.
    raws, trust_ldif = sender_envelopes(ENVELOPES)
    database_url, db_name = postgres_database()
    with tempfile.TemporaryDirectory(prefix="pecmail-bench-") as tmp:
        data_dir = Path(tmp)
        pec_port, discard_port = free_port(), free_port()
        env = provider_env(data_dir, database_url, pec_port)
        manage(env, "migrate", "--noinput")
        manage(env, "pec", "init-provider")
        (data_dir / "a.ldif").write_text(trust_ldif)
        manage(env, "pec", "index", "import", str(data_dir / "a.ldif"))
        manage(env, "mailbox", "create", RCPT, "--password", "bench-Password-1")
        if VERIFY:
            manage(
                env,
                "shell",
                "-c",
                f"from pecmail.mail.models import Mailbox; Mailbox.objects.filter(address={RCPT!r}).update(accept_ordinary_mail=False)",
            )
        servers = [
            subprocess.Popen(
                [PY, "manage.py", "pec", "smtpd", "--bind", f"127.0.0.1:{pec_port}"], cwd=ROOT, env=env
            ),
            subprocess.Popen(
                [PY, "-c", DISCARD_SERVER, str(discard_port)], cwd=ROOT, stdout=subprocess.DEVNULL
            ),
        ]
        try:
            wait_port(pec_port, servers[0])
            wait_port(discard_port, servers[1])
            # Warm-up (connections, caches, the trust store) on the envelopes' last tenth.
            warm = len(raws) - len(raws) // 10
            blast(pec_port, raws, 1.0, 4, first=warm)
            blast(discard_port, raws, 1.0, 4, first=warm)
            runs, sent = [], 0
            for connections in CONNECTIONS:
                settle()
                pec_ok, pec_refused = blast(pec_port, raws, SECONDS, connections, first=sent)
                sent += pec_ok
                # What pec smtpd wrote is flushed to disk now, not by the kernel during the next run.
                settle()
                bare_ok, _ = blast(discard_port, raws, SECONDS, connections)
                runs.append((connections, pec_ok / SECONDS, pec_refused, bare_ok / SECONDS))
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
        stored = manage(
            env,
            "shell",
            "-c",
            "import json; from pecmail.transport.models import InboundMessage, OutboxItem; "
            "print(json.dumps([InboundMessage.objects.count(), OutboxItem.objects.count()]))",
        )
    drop_postgres(database_url, db_name)
    label = "verify + durable commit" if VERIFY else "durable commit only"
    print(f"envelope size: {len(raws[0])} bytes, {SECONDS:.0f} s per run; pec smtpd: {label}")
    if sent > len(raws) - len(raws) // 10:
        print(f"note: some envelopes were sent twice; raise BENCH_ENVELOPES above {sent}")
    print("connections   pec smtpd/s (refused)   aiosmtpd discarding/s   ratio")
    for connections, pec_rate, refused, bare_rate in runs:
        print(
            f"{connections:11d}   {pec_rate:11.1f} ({refused:7d})   {bare_rate:21.1f}   {pec_rate / bare_rate:5.2f}"
        )
    best_pec, best_bare = max(run[1] for run in runs), max(run[3] for run in runs)
    print(
        f"capacity: pec smtpd {best_pec:.1f}/s, aiosmtpd {best_bare:.1f}/s: ratio {best_pec / best_bare:.2f} (target >= 0.5)"
    )
    print(f"stored inbound rows / outbox rows (incl. warm-up): {json.loads(stored.strip().splitlines()[-1])}")


PACED_SUBMIT = """
import json, time
from pecmail.mail.models import Mailbox
from pecmail.mail.services import message_submit
alice = Mailbox.objects.get(address="alice@pec-a.test")
start = time.monotonic()
for i in range({count}):
    delay = start + i / {rate} - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    message_submit(mailbox=alice, to=["bob@pec-b.test"], cc=[], subject="{tag} %d" % i,
                   body_text="Testo.", body_html=None, attachments=[])
print(json.dumps(time.monotonic() - start))
"""

# One long-lived process answers the polls (a tag per line in, a JSON line out): a Django
# start-up per poll would take half a core from the providers while they drain.
LATENCIES = """
import json, sys
from django.db import connection
from pecmail.mail.models import Delivery
for line in sys.stdin:
    tag = line.strip()
    rows = list(Delivery.objects.filter(message__subject__startswith=tag + " ").select_related("message", "receipt"))
    done = [d for d in rows if d.receipt_id]
    # In submission order, so that a trend (latency growing over the run) shows.
    done.sort(key=lambda d: d.message.created_at)
    out = [(d.receipt.created_at - d.message.created_at).total_seconds() for d in done]
    print(json.dumps({"total": len(rows), "latencies": out}), flush=True)
    connection.close()
"""


class Poller:
    """``LATENCIES`` running in provider A's Django, asked once per poll."""

    def __init__(self, provider) -> None:  # noqa: ANN001 - tests.integration Provider
        self.process = subprocess.Popen(
            [PY, "manage.py", "shell", "-c", LATENCIES],
            cwd=ROOT,
            env=provider.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, tag: str) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(tag + "\n")
        self.process.stdin.flush()
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise SystemExit("the latency poller exited")
            if line.startswith('{"total"'):  # anything else is start-up chatter
                return json.loads(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def cpu_snapshot() -> dict[int, tuple[float, str]]:
    """CPU seconds so far of every process on the machine, each with what it is (Linux /proc).

    A process of a provider is told apart by the PEC_DOMAIN in its environment, and by its
    command line: the Celery worker (with its pool), ``pec smtpd`` (with its writer), the rest
    (beat, the poller); every PostgreSQL backend counts as "postgres", the broker as "redis".
    Empty without /proc.
    """
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out: dict[int, tuple[float, str]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmd = handle.read().replace(b"\0", b" ").decode(errors="replace")
            try:
                with open(f"/proc/{entry}/environ", "rb") as handle:
                    env = handle.read().split(b"\0")
            except OSError:
                env = []
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / ticks
        domain = next((e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"PEC_DOMAIN=")), "")
        if cmd.startswith("postgres"):
            label = "postgres"
        elif "redis-server" in cmd:
            label = "redis"
        elif domain and " worker " in cmd:
            label = f"{domain} worker"
        elif domain and " smtpd" in cmd:
            label = f"{domain} smtpd"
        elif domain:
            label = f"{domain} other"
        else:
            label = "rest of the machine"
        out[int(entry)] = (seconds, label)
    return out


def _children_cpu() -> float:
    """CPU seconds of this process's children that have exited (the submitting shell)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_per_message(
    before: dict[int, tuple[float, str]], after: dict[int, tuple[float, str]], count: int
) -> str:
    """Milliseconds of CPU per message, by process kind, between two snapshots."""
    spent: dict[str, float] = {}
    for pid, (seconds, label) in after.items():
        earlier = before.get(pid)
        spent[label] = (
            spent.get(label, 0.0) + seconds - (earlier[0] if earlier and earlier[1] == label else 0.0)
        )
    parts = sorted(spent.items(), key=lambda item: -item[1])
    total = sum(v for label, v in parts if label != "rest of the machine")
    return (
        f"{total * 1000 / count:.0f} ms ("
        + ", ".join(f"{label} {seconds * 1000 / count:.1f}" for label, seconds in parts if seconds > 0)
        + ")"
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def end_to_end() -> None:
    from tests.integration.test_two_providers import Provider, databases, providers_prepare
    from tests.integration.test_two_providers_crash import Worker, redis_flush, redis_url

    if not os.environ.get("REDIS_URL"):
        raise SystemExit("--e2e needs REDIS_URL (a real broker for the workers)")
    rates = [int(r) for r in os.environ.get("BENCH_RATES", "20,50").split(",")]
    dbs = databases()
    url_a, url_b = next(dbs)
    with tempfile.TemporaryDirectory(prefix="pecmail-e2e-") as tmp:
        a = Provider(domain="pec-a.test", name="Provider A", directory=Path(tmp) / "a", database_url=url_a)
        b = Provider(domain="pec-b.test", name="Provider B", directory=Path(tmp) / "b", database_url=url_b)
        a.routes = {"pec-b.test": f"127.0.0.1:{b.port}"}
        b.routes = {"pec-a.test": f"127.0.0.1:{a.port}"}
        # As in production: DEBUG off (on, Django records every SQL statement of every process).
        production = {"CELERY_TASK_ALWAYS_EAGER": "0", "DEBUG": "0"}
        a.extra_env = {
            **production,
            "SECRET_KEY": f"bench-a-{uuid.uuid4().hex}{uuid.uuid4().hex}",
            "REDIS_URL": redis_url(7),
        }
        b.extra_env = {
            **production,
            "SECRET_KEY": f"bench-b-{uuid.uuid4().hex}{uuid.uuid4().hex}",
            "REDIS_URL": redis_url(8),
        }
        for p in (a, b):
            redis_flush(p.extra_env["REDIS_URL"])
        workers = [Worker(a, "bench-a"), Worker(b, "bench-b")]
        try:
            providers_prepare(a, b)
            a.start()
            b.start()
            for worker in workers:
                worker.start()
            poller = Poller(a)
            # Warm-up, not measured: workers still booting, first connections and TLS sessions,
            # cold caches and prepared statements would otherwise land on the first messages.
            a.python(PACED_SUBMIT.format(count=20, rate=10, tag="warm-up"))
            deadline = time.monotonic() + 120
            while len(poller.ask("warm-up")["latencies"]) < 20 and time.monotonic() < deadline:
                time.sleep(0.5)
            for rate in rates:
                tag = f"e2e-{rate}-{uuid.uuid4().hex[:6]}"
                count = int(rate * SECONDS)
                before, children = cpu_snapshot(), _children_cpu()
                took = a.python(PACED_SUBMIT.format(count=count, rate=rate, tag=tag))
                after = cpu_snapshot()
                # The submitting process has exited by now: its time is in this process's children's.
                after[-1] = (_children_cpu() - children, "submitting process (start-up included)")
                deadline = time.monotonic() + 300
                while True:
                    state = poller.ask(tag)
                    if len(state["latencies"]) >= count or time.monotonic() > deadline:
                        break
                    time.sleep(1)
                lat = state["latencies"]
                print(
                    f"{rate:3d} msg/s offered ({count / took:.1f} achieved): {len(lat)}/{count} receipts, "
                    + (
                        f"p50 {percentile(lat, 0.5):.2f} s, p99 {percentile(lat, 0.99):.2f} s"
                        if lat
                        else "none"
                    )
                )
                if len(lat) >= 10:
                    # Steady means the latency does not grow while the load goes on: compare the
                    # messages submitted first with those submitted last.
                    fifth = len(lat) // 5
                    first, last = percentile(lat[:fifth], 0.5), percentile(lat[-fifth:], 0.5)
                    steady = last <= first * 1.5 + 1
                    print(
                        f"    p50 of the first fifth submitted {first:.2f} s, of the last fifth {last:.2f} s"
                        + (" (steady)" if steady else " (growing: not steady at this rate)")
                    )
                    if steady and after:
                        # At a steady rate the work done while submitting is the work of what was
                        # submitted; past capacity it is only what the machine got through.
                        print(
                            f"    CPU per message while submitting: {cpu_per_message(before, after, count)}"
                        )
            poller.close()
        finally:
            for worker in workers:
                worker.stop()
            a.stop()
            b.stop()
            next(dbs, None)


if __name__ == "__main__":
    if "--e2e" in sys.argv:
        end_to_end()
    else:
        main()
