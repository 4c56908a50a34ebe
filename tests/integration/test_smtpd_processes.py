"""``pec smtpd --processes N``: a supervisor, N forked SMTP workers accepting on one socket and
the writer process that commits for all of them.

Real processes: the supervisor is ``manage.py pec smtpd``; its children are found in /proc
and told apart by the names they give themselves (``pec-smtpd-smtp``, ``pec-smtpd-write``).
Tasks are published to the (filesystem) broker and not run: only ingest is under test.
"""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.test_two_providers import Provider, databases, wait_until

pytestmark = pytest.mark.integration

DOMAIN = "pec-p.test"


def children(pid: int) -> set[int]:
    """The live (not zombie) processes whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid …": comm may hold spaces, so split after its closing parenthesis.
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def named(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def two_workers(supervisor: int, *, without: int | None = None) -> set[int] | None:
    """The supervisor's two SMTP workers (none of them ``without``), or None while that is not so."""
    workers = {pid for pid in children(supervisor) if named(pid) == "pec-smtpd-smtp"}
    return workers if len(workers) == 2 and without not in workers else None


def the_writer(supervisor: int, *, without: int | None = None) -> int | None:
    """The supervisor's writer process (not ``without``), or None while there is none."""
    writers = [pid for pid in children(supervisor) if named(pid) == "pec-smtpd-write"]
    return writers[0] if len(writers) == 1 and writers[0] != without else None


def stored(provider: Provider) -> int:
    return provider.python(
        "import json; from pecmail.transport.models import InboundMessage; "
        "print(json.dumps(InboundMessage.objects.count()))"
    )


def send(port: int, count: int, *, connections: int, tag: str) -> list[str]:
    """Send ``count`` ordinary messages to bob over parallel sessions; return the DATA replies."""

    def session(slot: int) -> list[str]:
        replies = []
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.ehlo("client.mail.test")
            for i in range(slot, count, connections):
                smtp.mail("someone@mail.test")
                smtp.rcpt(f"bob@{DOMAIN}")
                code, text = smtp.data(
                    f"From: someone@mail.test\r\nTo: bob@{DOMAIN}\r\nSubject: {tag} {i}\r\n\r\nCiao.\r\n".encode()
                )
                replies.append(f"{code} {text.decode()}")
        return replies

    with ThreadPoolExecutor(connections) as pool:
        return [reply for replies in pool.map(session, range(connections)) for reply in replies]


@pytest.fixture
def provider(tmp_path) -> Provider:
    dbs = databases()
    url, _unused = next(dbs)
    p = Provider(domain=DOMAIN, name="Provider P", directory=tmp_path / "p", database_url=url)
    # Published, not run: the messages wait for a worker that is not there.
    p.extra_env = {"PEC_SMTP_PROCESSES": "2", "CELERY_TASK_ALWAYS_EAGER": "0"}
    p.dir.mkdir(parents=True)
    p.manage("migrate", "--noinput")
    p.manage("pec", "init-provider")
    p.manage("mailbox", "create", f"bob@{DOMAIN}", "--password", "x-Secret-42")
    yield p
    p.stop()
    next(dbs, None)


def test_workers_share_the_socket_a_dead_one_is_replaced_and_sigterm_stops_them_all(provider):
    provider.start()
    supervisor = provider.process.pid
    first = wait_until(lambda: two_workers(supervisor), what="two workers")

    replies = send(provider.port, 24, connections=6, tag="before")
    assert len(replies) == 24
    assert all(r.startswith("250 ") for r in replies), replies

    # A worker dies (SIGKILL: no chance to clean up): the supervisor forks another.
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    replaced = wait_until(lambda: two_workers(supervisor, without=victim), what="a replacement", seconds=30)
    assert replaced - first and replaced & first == first - {victim}
    replies = send(provider.port, 12, connections=4, tag="after")
    assert all(r.startswith("250 ") for r in replies), replies
    assert stored(provider) == 36

    provider.process.send_signal(signal.SIGTERM)
    assert provider.process.wait(timeout=30) == 0
    assert not any(alive(pid) for pid in replaced)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", provider.port), timeout=2).close()


def test_one_writer_commits_for_all_workers_and_a_dead_one_loses_nothing(provider):
    provider.start()
    supervisor = provider.process.pid
    wait_until(lambda: two_workers(supervisor), what="two workers")
    writer = wait_until(lambda: the_writer(supervisor), what="the writer")

    replies = send(provider.port, 40, connections=8, tag="shared")
    assert all(r.startswith("250 ") for r in replies), replies
    assert stored(provider) == 40

    # The writer dies mid-traffic: each session gets 250 (stored) or 451 (sent again later);
    # a 250 is never lost, and once the replacement is up everything is stored again.
    os.kill(writer, signal.SIGKILL)
    during = send(provider.port, 8, connections=2, tag="during")
    assert all(r[:4] in ("250 ", "451 ") for r in during), during
    replacement = wait_until(lambda: the_writer(supervisor, without=writer), what="a new writer", seconds=30)
    after = send(provider.port, 10, connections=2, tag="after")
    assert all(r.startswith("250 ") for r in after), after
    accepted = 40 + sum(r.startswith("250 ") for r in during) + 10
    assert stored(provider) >= accepted

    provider.process.send_signal(signal.SIGTERM)
    assert provider.process.wait(timeout=30) == 0
    assert not alive(replacement)


def test_the_writer_takes_messages_up_to_the_size_given_on_the_command_line(provider):
    """``--max-size`` above the settings' limit: the message bytes reach the writer whole."""
    provider.extra_env["PEC_MAX_TOTAL_SIZE"] = "20000"
    provider.start("--max-size", "300000")
    body = b"".join(b"%07d " % n + b"x" * 70 + b"\r\n" for n in range(1250))  # 100 KB
    message = f"From: someone@mail.test\r\nTo: bob@{DOMAIN}\r\nSubject: big\r\n\r\n".encode() + body
    with smtplib.SMTP("127.0.0.1", provider.port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.esmtp_features["size"] == "300000"
        assert smtp.sendmail("someone@mail.test", [f"bob@{DOMAIN}"], message) == {}
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.sendmail("someone@mail.test", [f"bob@{DOMAIN}"], message * 4)
        assert refused.value.smtp_code == 552
    spooled = provider.python(
        "import hashlib, json; from pecmail.transport.models import InboundMessage; "
        "print(json.dumps([(r.size, hashlib.sha256(bytes(r.raw)).hexdigest() == r.raw_sha256) "
        "for r in InboundMessage.objects.all()]))"
    )
    assert spooled == [[len(message), True]]


def sessions_per_process(pids: set[int], port: int) -> dict[int, int]:
    """How many established TCP connections on local ``port`` each of ``pids`` holds (from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rpartition(":")[2], 16)
            if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                inodes.add(fields[9])
    counts = {}
    for pid in pids:
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held += 1
        counts[pid] = held
    return counts


def test_long_lived_connections_are_spread_evenly_over_the_workers(provider):
    """Peers keep their sessions open: all of them on one worker would leave the other idle."""
    provider.start()
    supervisor = provider.process.pid
    workers = wait_until(lambda: two_workers(supervisor), what="two workers")
    for attempt in range(5):  # the kernel's own choice would pile them up often enough
        clients = []
        try:
            for _ in range(4):
                smtp = smtplib.SMTP("127.0.0.1", provider.port, timeout=30)
                clients.append(smtp)
                assert smtp.ehlo("client.mail.test")[0] == 250
                time.sleep(0.05)

            def all_four() -> dict[int, int] | None:
                counts = sessions_per_process(workers, provider.port)
                return counts if sum(counts.values()) == 4 else None

            counts = wait_until(all_four, what="four sessions")
            assert sorted(counts.values()) == [2, 2], (attempt, counts)
        finally:
            for smtp in clients:
                smtp.quit()
        wait_until(
            lambda: sum(sessions_per_process(workers, provider.port).values()) == 0 or None, what="closed"
        )


def test_workers_stop_when_the_supervisor_is_killed(provider):
    provider.start()
    supervisor = provider.process.pid
    workers = wait_until(lambda: two_workers(supervisor), what="two workers")
    workers.add(wait_until(lambda: the_writer(supervisor), what="the writer"))
    assert all(r.startswith("250 ") for r in send(provider.port, 4, connections=2, tag="x"))

    os.kill(supervisor, signal.SIGKILL)
    provider.process.wait(timeout=10)
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers), "orphaned workers kept serving"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", provider.port), timeout=2).close()
