"""The durable writer of a forked ``pec smtpd``, and its workers' link to it.

With several SMTP processes each one's group committer would see only its own sessions, so
its batches stay small and every envelope pays a transaction, a lock of the provider log's
head row and a Celery message nearly alone — and that database work competes with the
sessions for the worker's GIL. So the supervisor forks one more process, the writer, that
runs the single ``GroupCommitter`` for all of them: the SMTP workers store the bytes
(content-addressed files, no database), then send the rest of each accepted transaction over
a Unix socket and answer 250 only when the writer replies that its transaction committed.

The wire format is a 4-byte big-endian length and a JSON object, both ways: a request
``{"id": n, "request": {...}}`` and a reply ``{"id": n, "pk": inbound id}`` or
``{"id": n, "error": "..."}``. The socket lives in a private (0700) directory.

A worker that loses the writer (it died, or is being replaced) fails its pending requests —
those sessions get 451 and their clients send again; an envelope that was in fact committed
is then stored twice, which the incoming point turns into one delivery — and connects afresh
for its next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import struct
import threading
from concurrent.futures import Future
from dataclasses import asdict, replace
from typing import Any, BinaryIO

from . import services
from .handler import GroupCommitter
from .models import InboundMessage

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")
# Far above any request (the bytes do not travel): a peer sending more is not our worker.
MAX_FRAME = 1 << 20


def frame(payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload, separators=(",", ":")).encode()
    return _LENGTH.pack(len(data)) + data


def frame_read(stream: BinaryIO) -> dict[str, Any] | None:
    """The next frame from a buffered reader of the socket, or None at its end."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes refused")
    data = stream.read(length)
    if len(data) < length:
        return None
    return json.loads(data)


class RemoteCommitter:
    """The committer of a forked worker: the writer process stores the rows.

    It lives on the worker's event loop (no thread, no wake-up across threads): ``store``
    stores the bytes here (they never cross the socket), sends the rest and waits for the
    writer's reply. It returns ``(InboundMessage with only its pk, None)`` as
    ``GroupCommitter.store`` returns the row and its outbox item.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._ids = itertools.count(1)
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._connecting: asyncio.Lock | None = None
        # The loop keeps only a weak reference to a task: hold the reader's here.
        self._reader: asyncio.Task | None = None

    async def store(self, request: services.InboundRequest) -> tuple[InboundMessage, None]:
        sha256, size = request.stored()
        payload = asdict(replace(request, raw=b"", raw_sha256=sha256, size=size))
        del payload["raw"]
        writer, pending = await self._connected()
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        pending[request_id] = future
        writer.write(frame({"id": request_id, "request": payload}))
        if writer.transport.get_write_buffer_size() > 256 * 1024:
            await writer.drain()  # a writer that stopped reading: do not buffer without end
        pk = await future
        return InboundMessage(pk=pk), None

    async def _connected(self) -> tuple[asyncio.StreamWriter, dict[int, asyncio.Future]]:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._writer is None or self._writer.is_closing():
                reader, self._writer = await asyncio.wait_for(asyncio.open_unix_connection(self.path), 10)
                # Each connection fails only the requests sent on it.
                self._pending = {}
                self._reader = asyncio.get_running_loop().create_task(
                    self._read(reader, self._writer, self._pending)
                )
            return self._writer, self._pending

    @staticmethod
    async def _read(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pending: dict[int, asyncio.Future]
    ) -> None:
        reason: BaseException = ConnectionError("the smtpd writer closed the connection")
        try:
            while True:
                (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
                if length > MAX_FRAME:
                    raise ValueError(f"frame of {length} bytes refused")
                reply = json.loads(await reader.readexactly(length))
                future = pending.pop(reply["id"], None)
                if future is None or future.done():
                    continue
                if "pk" in reply:
                    future.set_result(reply["pk"])
                else:
                    future.set_exception(RuntimeError(f"smtpd writer: {reply.get('error')}"))
        except asyncio.IncompleteReadError:
            pass
        except (OSError, ValueError, KeyError) as exc:
            reason = exc
        writer.close()
        for future in pending.values():
            if not future.done():
                future.set_exception(reason)
        pending.clear()

    async def aclose(self) -> None:
        """Flush what is still buffered for the writer and close the connection.

        Called once the sessions have ended: a request already sent is stored by the writer
        (it stops after the workers) whether or not anyone still waits for its reply.
        """
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()

    def close(self) -> None:
        """Nothing left to do once ``aclose`` ran on the loop (``PecHandler.close`` calls this)."""


def _serve_link(sock: socket.socket, committer: GroupCommitter) -> None:
    """Read one worker's requests and hand them to the committer; reply as each commits."""
    send_lock = threading.Lock()

    def reply(request_id: int, future: Future) -> None:
        exc = future.exception()
        payload = {"id": request_id}
        if exc is None:
            inbound, _item = future.result()
            payload["pk"] = inbound.pk
        else:
            payload["error"] = type(exc).__name__
        try:
            with send_lock:
                sock.sendall(frame(payload))
        except OSError:
            pass  # the worker is gone; its sessions got 451 and their clients send again

    try:
        with sock, sock.makefile("rb") as stream:
            while (received := frame_read(stream)) is not None:
                request = services.InboundRequest(raw=b"", **received["request"])
                request_id = received["id"]
                committer.submit(request).add_done_callback(
                    lambda future, request_id=request_id: reply(request_id, future)
                )
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("smtpd writer: dropped a worker connection: %s", exc)


def writer_run(listener: socket.socket, *, publish: Any, parent: int) -> None:
    """The writer process: serve the workers' connections until SIGTERM or the supervisor is gone.

    On SIGTERM (the supervisor sends it once the SMTP workers have stopped) what is queued is
    still stored and answered.
    """
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: stopping.set())
    committer = GroupCommitter(publish=publish)

    def accept() -> None:
        listener.settimeout(0.5)
        while not stopping.is_set():
            try:
                sock, _address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if stopping.is_set():
                    return
                raise
            sock.settimeout(None)
            threading.Thread(
                target=_serve_link, args=(sock, committer), name="pec-smtpd-writer-link", daemon=True
            ).start()

    acceptor = threading.Thread(target=accept, name="pec-smtpd-writer-accept", daemon=True)
    acceptor.start()
    # Killed with SIGKILL, the supervisor cannot stop us: stop when it is gone.
    while not stopping.wait(1.0):
        if os.getppid() != parent or not acceptor.is_alive():
            break
    stopping.set()
    acceptor.join(timeout=5)
    committer.close()
