"""``pec smtpd``: the provider's incoming SMTP server (aiosmtpd) with STARTTLS.

With one process the server runs in its own thread (aiosmtpd's Controller) with its own
group committer. With several (``--processes``, ``PEC_SMTP_PROCESSES``) a supervisor binds the
socket and forks SMTP workers that all accept on it, each with its own event loop — SMTP
and verification are Python work, and one interpreter's GIL would cap
ingest at one core — and one writer process that commits for all of them (``writer.py``), so
that concurrent sessions share transactions whichever worker they reached. Peers keep their
sessions open, so the workers share out sessions, not just connections (``SessionLoad``). A worker or
writer that dies is replaced; SIGTERM or SIGINT stops them all (the SMTP workers first, then
the writer). Either way ORM reads of the handler run on executor threads so the event loop
never blocks on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, _DataState, syntax
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings

from .handler import PecHandler
from .services import max_message_size

log = logging.getLogger(__name__)


def tls_paths() -> tuple[Path, Path]:
    pki_dir = Path(settings.PEC_PKI_DIR)
    cert = Path(getattr(settings, "PEC_SMTP_TLS_CERT", "") or pki_dir / "smtp-tls.pem")
    key = Path(getattr(settings, "PEC_SMTP_TLS_KEY", "") or pki_dir / "smtp-tls.key")
    return cert, key


def tls_ensure_development_certificate(cert_path: Path, key_path: Path, hostname: str) -> bool:
    """Write a self-signed certificate for ``hostname`` unless both files exist; True if written."""
    if cert_path.exists() and key_path.exists():
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


def tls_context(hostname: str) -> ssl.SSLContext:
    cert_path, key_path = tls_paths()
    if tls_ensure_development_certificate(cert_path, key_path, hostname):
        log.warning("smtpd: generated a self-signed development TLS certificate at %s", cert_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context


# ``<local@domain>`` with a dot-atom local part and a plain domain, then the parameters: what
# every PEC peer sends. Anything else (quoted local parts, literals, source routes, comments)
# goes to aiosmtpd's own parser.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH = re.compile(
    rf"\A[ \t]*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(?![ \t]*\()[ \t]*(.*)\Z",
    re.DOTALL,
)


# How much DATA is asked of the stream at a time.
DATA_CHUNK = 1 << 16


class PecSMTP(SMTP):
    """aiosmtpd's SMTP session (aiosmtpd 1.4.6, pinned) with two fast paths, same answers.

    - Plain MAIL FROM / RCPT TO paths: aiosmtpd parses every path with the ``email``
      package's header parser and defines a class on each call.
    - DATA: aiosmtpd reads it line by line, a coroutine step per line (a fifth of a worker's
      time per envelope). Here it is read in blocks up to the ``CRLF.CRLF`` that ends it and
      un-dot-stuffed with one replace. Only data that is within the size limit and has no
      over-long line takes this path; anything else is put back into the stream and read
      by the line-by-line loop below (aiosmtpd's own), so 552 and 500 come exactly as before.
      ``test_smtpd_data`` checks both paths against stock aiosmtpd on the same byte streams.
    """

    # Told when the session opens and when it ends (a forked worker's share of the load).
    on_open: Callable[[], None] | None = None
    on_close: Callable[[], None] | None = None
    _counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Called again after STARTTLS: count the session once.
        if not self._counted and self.on_open is not None:
            self._counted = True
            self.on_open()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted and self.on_close is not None:
            self._counted = False
            self.on_close()
        super().connection_lost(error)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if self._decode_data or "DATA" not in self._handle_hooks:
            await super().smtp_DATA(arg)  # not how pec smtpd is configured: aiosmtpd's own
            return
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content = await self._data_read_blocks()
        if content is None:
            content, error = await self._data_read_lines()
            if error is not None:
                await self.push(error)
                self._set_post_data_state()
                return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    def _unread(self, data: bytes | bytearray) -> None:
        """Put ``data`` back in front of the stream (aiosmtpd itself reaches into this buffer)."""
        if data:
            self._reader._buffer[0:0] = data

    async def _data_read_blocks(self) -> bytes | None:
        """The DATA content (dot-stuffing undone), or None after putting everything back."""
        reader, limit = self._reader, self.data_size_limit
        # A CRLF in front: the terminator is then always CRLF.CRLF, even for empty content.
        buffer = bytearray(b"\r\n")
        searched = 0
        while True:
            chunk = await reader.read(DATA_CHUNK)
            if not chunk:
                raise ConnectionResetError("connection closed during DATA")
            buffer += chunk
            end = buffer.find(b"\r\n.\r\n", max(0, searched - 4))
            if end != -1:
                break
            searched = len(buffer)
            if limit and len(buffer) - 2 > limit:
                self._unread(memoryview(buffer)[2:])
                return None
        content_end = end + 2  # the CRLF of the last line is content
        content = bytes(memoryview(buffer)[:content_end])
        too_long = max(map(len, content.split(b"\r\n"))) + 2 > self.line_length_limit
        if (limit and content_end - 2 > limit) or too_long:
            self._unread(memoryview(buffer)[2:])
            return None
        self._unread(memoryview(buffer)[end + 5 :])  # a command sent right behind the data
        return content.replace(b"\r\n.", b"\r\n")[2:]

    async def _data_read_lines(self) -> tuple[bytes, str | None]:
        """aiosmtpd 1.4.6's DATA loop: (content, None) or (b"", the error reply)."""
        data: list[bytearray] = []
        num_bytes = 0
        limit = self.data_size_limit
        line_fragments: list[bytes] = []
        state = _DataState.NOMINAL
        while self.transport is not None:  # pragma: nobranch
            try:
                line: bytes = await self._reader.readuntil(b"\r\n")
            except asyncio.CancelledError:
                self._writer.close()
                raise
            except asyncio.LimitOverrunError as e:
                if state == _DataState.NOMINAL:
                    state = _DataState.TOO_LONG
                data *= 0
                line = await self._reader.read(e.consumed)
            if not line_fragments and line == b".\r\n":
                break
            num_bytes += len(line)
            if state == _DataState.NOMINAL and limit and num_bytes > limit:
                state = _DataState.TOO_MUCH
                data *= 0
            line_fragments.append(line)
            if line.endswith(b"\r\n"):
                if state == _DataState.NOMINAL:
                    whole = bytearray().join(line_fragments)
                    if len(whole) > self.line_length_limit:
                        state = _DataState.TOO_LONG
                        data *= 0
                    else:
                        data.append(whole)
                line_fragments *= 0
        if state == _DataState.TOO_LONG:
            return b"", "500 Line too long (see RFC5321 4.5.3.1.6)"
        if state == _DataState.TOO_MUCH:
            return b"", "552 Error: Too much mail data"
        for text in data:
            if text.startswith(b"."):
                del text[0]
        return b"".join(data), None

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _PLAIN_PATH.match(arg)
        if match is None:
            return super()._getaddr(arg)
        address, rest = match.groups()
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest


class PecController(Controller):
    """aiosmtpd's threaded controller that also releases the handler's database connections."""

    def factory(self) -> SMTP:
        return PecSMTP(self.handler, **self.SMTP_kwargs)

    def stop(self, *args: Any, **kwargs: Any) -> None:
        super().stop(*args, **kwargs)
        self.handler.close()


def smtpd_processes() -> int:
    configured = int(getattr(settings, "PEC_SMTP_PROCESSES", 0) or 0)
    return configured if configured > 0 else min(os.cpu_count() or 1, 4)


# The most inbound messages one merged Celery message asks a worker to process.
PUBLISH_MERGE_MAX = 200


def _publish_unmarked(items: list[Any]) -> int:
    """Publish outbox rows that queued together; the committer marks them in its next transaction.

    Rows that each ask to process some inbound messages (one per group commit) travel as one
    ``inbound_process_many`` message per ``PUBLISH_MERGE_MAX`` messages: the Celery publish is
    most of the writer's cost. Returns how many of ``items`` reached the broker, in order.
    """
    from .outbox import outbox_publish_items
    from .services import TASK_INBOUND_PROCESS, TASK_INBOUND_PROCESS_MANY

    inbound = (TASK_INBOUND_PROCESS, TASK_INBOUND_PROCESS_MANY)
    if len(items) == 1 or any(item.task_name not in inbound for item in items):
        return outbox_publish_items(items, mark=False)
    from pecmail.celery import app

    from . import tasks as _tasks  # noqa: F401 - registers the transport tasks

    published = 0
    while published < len(items):
        chunk: list[Any] = []
        ids: list[int] = []
        for item in items[published:]:
            more = item.kwargs.get("inbound_ids") or [item.kwargs["inbound_id"]]
            if chunk and len(ids) + len(more) > PUBLISH_MERGE_MAX:
                break
            chunk.append(item)
            ids.extend(more)
        try:
            app.tasks[TASK_INBOUND_PROCESS_MANY].apply_async(kwargs={"inbound_ids": ids})
        except Exception:
            if app.conf.task_always_eager:
                raise
            log.exception("smtpd: could not publish %d outbox rows; the relay will retry", len(chunk))
            break
        published += len(chunk)
    return published


def _handler_create(*, max_recipients: int | None, publish: bool, committer: Any = None) -> PecHandler:
    return PecHandler(
        max_recipients=max_recipients or settings.PEC_MAX_RECIPIENTS,
        publish=_publish_unmarked if publish else None,
        committer=committer,
    )


def smtp_options(*, max_size: int | None = None) -> dict[str, Any]:
    """The keyword arguments of every ``aiosmtpd.smtp.SMTP`` session this server opens."""
    hostname = getattr(settings, "PEC_SMTP_HOSTNAME", "") or f"mx.{settings.PEC_DOMAIN}"
    return {
        "hostname": hostname,
        "data_size_limit": max_size or max_message_size(),
        "enable_SMTPUTF8": True,
        "decode_data": False,
        "tls_context": tls_context(hostname),
        "require_starttls": False,
        # No AUTH: peers are identified by their S/MIME signature, not by SMTP credentials.
        "auth_exclude_mechanism": ["LOGIN", "PLAIN"],
        "timeout": 300,
    }


def server_create(
    *,
    host: str,
    port: int,
    max_size: int | None = None,
    max_recipients: int | None = None,
    publish: bool = True,
) -> PecController:
    """Return a ready (not yet started) controller serving the PEC handler on host:port."""
    options = smtp_options(max_size=max_size)
    return PecController(
        _handler_create(max_recipients=max_recipients, publish=publish),
        hostname=host,
        port=port,
        server_hostname=options.pop("hostname"),
        ready_timeout=10,
        **options,
    )


def parse_bind(bind: str) -> tuple[str, int]:
    host, _sep, port = bind.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def serve(
    *,
    bind: str,
    max_size: int | None = None,
    max_recipients: int | None = None,
    processes: int | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT."""
    host, port = parse_bind(bind)
    # aiosmtpd logs every connection at INFO; our own log says what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    processes = processes or smtpd_processes()
    if processes > 1:
        _serve_forked(
            host=host, port=port, processes=processes, max_size=max_size, max_recipients=max_recipients
        )
        return
    controller = server_create(host=host, port=port, max_size=max_size, max_recipients=max_recipients)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: stop.set())
    controller.start()
    log.info("smtpd: listening on %s:%s", host, port)
    print(f"pec smtpd listening on {host}:{port}", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()


# A worker that dies is replaced, but not more often than this (a crash loop must not spin).
RESPAWN_INTERVAL = 1.0
# How long the supervisor waits for its workers to finish their commits before SIGKILL.
STOP_TIMEOUT = 60.0


# The slot of the writer process among the supervisor's children (SMTP workers are 0..N-1).
WRITER = -1
# How long a worker with more open sessions than another leaves a waiting connection to it.
ACCEPT_DEFER = 0.005


class SessionLoad:
    """How many SMTP sessions each forked worker has open, in memory all of them share.

    All workers wait on one listening socket and the kernel wakes them all for each
    connection; whoever is first takes it, so four long-lived connections can all land on one
    worker while the other idles (peers keep their connections open). So a worker with more
    sessions than another lets a waiting connection go for ``ACCEPT_DEFER`` seconds first,
    and takes it itself only if nobody did. Each slot is written by its own worker only.
    """

    def __init__(self, slots: int) -> None:
        from multiprocessing.sharedctypes import RawArray

        self._counts = RawArray("q", slots)  # before the fork: every child shares it

    def reset(self, slot: int) -> None:
        self._counts[slot] = 0

    def opened(self, slot: int) -> None:
        self._counts[slot] += 1

    def closed(self, slot: int) -> None:
        self._counts[slot] -= 1

    def busier(self, slot: int) -> bool:
        """True if some other worker has fewer sessions open than ``slot``."""
        mine = self._counts[slot]
        return any(count < mine for index, count in enumerate(self._counts) if index != slot)


def _process_name(name: str) -> None:
    """Name this process for ps/top (Linux ``prctl(PR_SET_NAME)``, 15 bytes); elsewhere nothing."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)


def _serve_forked(
    *, host: str, port: int, processes: int, max_size: int | None, max_recipients: int | None
) -> None:
    from django.db import connections

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family, backlog=1024)
    listener.setblocking(False)
    # The workers reach the writer here; only this user can (0700 directory).
    private = tempfile.mkdtemp(prefix="pec-smtpd-")
    writer_path = os.path.join(private, "writer.sock")
    writer_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    writer_listener.bind(writer_path)
    writer_listener.listen(64)
    options = smtp_options(max_size=max_size)  # the TLS context (and a development certificate) once
    # Nothing the children need may be open at fork: they make their own connections.
    connections.close_all()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: stopping.set())
    children: dict[int, int] = {}  # pid -> slot
    started: dict[int, float] = {}  # slot -> when its current process was forked
    load = SessionLoad(processes)

    def fork(slot: int) -> None:
        started[slot] = time.monotonic()
        if slot != WRITER:
            load.reset(slot)  # a worker that died took its sessions with it
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if slot == WRITER:
                    _process_name("pec-smtpd-write")
                    listener.close()
                    from .writer import writer_run

                    writer_run(
                        writer_listener,
                        publish=_publish_unmarked,
                        parent=os.getppid(),
                        raw_limit=options["data_size_limit"],
                    )
                else:
                    _process_name("pec-smtpd-smtp")
                    writer_listener.close()
                    _worker_run(
                        listener,
                        slot=slot,
                        load=load,
                        options=options,
                        max_recipients=max_recipients,
                        parent=os.getppid(),
                        writer_path=writer_path,
                    )
                code = 0
            except BaseException:
                log.exception("smtpd: process %s failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = slot

    fork(WRITER)
    for slot in range(processes):
        fork(slot)
    log.info("smtpd: listening on %s:%s with %d processes and a writer", host, port, processes)
    print(f"pec smtpd listening on {host}:{port} ({processes} processes)", flush=True)
    try:
        while not stopping.is_set() and children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                stopping.wait(0.2)
                continue
            slot = children.pop(pid, None)
            if slot is None or stopping.is_set():
                continue
            what = "writer" if slot == WRITER else "worker"
            log.error("smtpd: %s %s exited (status %s); starting another", what, pid, status)
            stopping.wait(max(0.0, started[slot] + RESPAWN_INTERVAL - time.monotonic()))
            if not stopping.is_set():
                fork(slot)
    finally:
        # The SMTP workers first: their last transactions still need the writer.
        _workers_stop({pid: slot for pid, slot in children.items() if slot != WRITER})
        _workers_stop({pid: slot for pid, slot in children.items() if slot == WRITER})
        listener.close()
        writer_listener.close()
        shutil.rmtree(private, ignore_errors=True)


def _workers_stop(workers: dict[int, int]) -> None:
    for pid in workers:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while workers and time.monotonic() < deadline:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            workers.pop(pid, None)
        else:
            time.sleep(0.05)
    for pid in workers:
        log.error("smtpd: worker %s did not stop in %.0f s; killing it", pid, STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


async def _accept_balanced(
    listener: socket.socket, *, slot: int, load: SessionLoad, session: Callable[[], SMTP]
) -> None:
    """Accept connections on the shared socket, leaving them to less busy workers first."""
    loop = asyncio.get_running_loop()
    fd = listener.fileno()
    while True:
        ready = loop.create_future()
        loop.add_reader(fd, lambda ready=ready: ready.done() or ready.set_result(None))
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        if load.busier(slot):
            await asyncio.sleep(ACCEPT_DEFER)
        try:
            conn, _address = listener.accept()
        except (BlockingIOError, InterruptedError):
            continue  # another worker took it
        except OSError as exc:  # out of file descriptors, say: wait, as asyncio's own server does
            log.error("smtpd: accept failed: %s", exc)
            await asyncio.sleep(1.0)
            continue
        conn.setblocking(False)
        try:
            await loop.connect_accepted_socket(session, conn)
        except OSError:
            conn.close()


def _worker_run(
    listener: socket.socket,
    *,
    slot: int,
    load: SessionLoad,
    options: dict[str, Any],
    max_recipients: int | None,
    parent: int,
    writer_path: str,
) -> None:
    """One forked worker: accept on the shared socket until SIGTERM/SIGINT or the supervisor is gone."""
    from .writer import RemoteCommitter

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    handler = _handler_create(
        max_recipients=max_recipients, publish=False, committer=RemoteCommitter(writer_path)
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def session() -> SMTP:
        smtp = PecSMTP(handler, **options)
        smtp.on_open = lambda: load.opened(slot)
        smtp.on_close = lambda: load.closed(slot)
        return smtp

    acceptor = loop.create_task(_accept_balanced(listener, slot=slot, load=load, session=session))
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, loop.stop)

    def orphaned() -> None:
        # Killed with SIGKILL, the supervisor cannot stop us: stop when it is gone.
        if os.getppid() != parent:
            loop.stop()
        else:
            loop.call_later(1.0, orphaned)

    loop.call_later(1.0, orphaned)
    try:
        loop.run_forever()
    finally:
        acceptor.cancel()
        # Open sessions end here (a client mid-DATA never saw its 250 and sends again); a
        # transaction already handed to the writer is still stored (it stops after us).
        sessions = asyncio.all_tasks(loop)
        for task in sessions:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*sessions, return_exceptions=True))
        loop.run_until_complete(handler.committer.aclose())
        handler.close()
        loop.close()
