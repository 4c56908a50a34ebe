"""The durable writer of a forked ``pec smtpd``, and its workers' link to it.

With several SMTP processes each one's group committer would see only its own sessions, so
its batches stay small and every envelope pays a transaction, a lock of the provider log's
head row and a Celery message nearly alone — and that database work competes with the
sessions for the worker's GIL. So the supervisor forks one more process, the writer, that
runs the single ``GroupCommitter`` for all of them: the SMTP workers send each accepted
transaction over a Unix socket (the bytes with it: they commit in the writer's transaction,
see ``InboundMessage.raw``) and answer 250 only when the writer replies that its transaction
committed. The writer is one thread around a selector (``writer_serve``): what all workers
sent during one transaction is the next transaction.

The wire format: a request is two 4-byte big-endian lengths, a JSON object
``{"id": n, "request": {...}}`` and the message bytes; a reply is one 4-byte length and a JSON
object ``{"id": n, "pk": inbound id}`` or ``{"id": n, "error": "..."}``. The socket lives in
a private (0700) directory.

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
import select
import selectors
import signal
import socket
import struct
import threading
import time
from dataclasses import asdict
from typing import Any

from . import services
from .handler import GroupCommitter
from .models import InboundMessage

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")
_REQUEST = struct.Struct("!II")
# Far above any request's JSON part: a peer sending more is not our worker.
MAX_FRAME = 1 << 20


def frame(payload: dict[str, Any]) -> bytes:
    """A reply: its length, then the JSON object."""
    data = json.dumps(payload, separators=(",", ":")).encode()
    return _LENGTH.pack(len(data)) + data


def request_head(request_id: int, request: services.InboundRequest) -> bytes:
    """A request up to its bytes (which follow it on the wire): both lengths, then the JSON object."""
    fields = asdict(request)
    del fields["raw"]
    fields["raw_sha256"] = request.digest()
    data = json.dumps({"id": request_id, "request": fields}, separators=(",", ":")).encode()
    return _REQUEST.pack(len(data), len(request.raw)) + data


class RemoteCommitter:
    """The committer of a forked worker: the writer process stores the rows.

    It lives on the worker's event loop (no thread, no wake-up across threads): ``store``
    hashes the bytes here, sends them with the rest and waits for the writer's reply. It
    returns ``(InboundMessage with only its pk, None)`` as ``GroupCommitter.store`` returns
    the row and its outbox item.
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
        writer, pending = await self._connected()
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        pending[request_id] = future
        writer.write(request_head(request_id, request))
        writer.write(request.raw)
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


# A worker that does not take its replies for this long is dropped (its sessions answer 451).
SEND_TIMEOUT = 10.0
# How often the writer looks whether it should stop while nothing else happens.
STOP_CHECK = 0.5


class _Link:
    """One worker's connection: its unread bytes, decoded into requests as whole frames arrive."""

    def __init__(self, sock: socket.socket, *, raw_limit: int | None = None) -> None:
        sock.setblocking(False)  # reads never wait; ``reply`` waits for room itself
        self.sock = sock
        self.buffer = bytearray()
        self.closed = False
        # A worker refuses larger DATA with 552: a longer request is not from our worker.
        self.raw_limit = services.max_message_size() if raw_limit is None else raw_limit

    def requests(self) -> list[tuple[int, services.InboundRequest]]:
        """Everything that can be read now without waiting; sets ``closed`` at the end of the stream."""
        while True:
            try:
                data = self.sock.recv(1 << 18)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""  # reset by the worker: as good as closed
            if not data:
                self.closed = True
                break
            self.buffer += data
        found = []
        offset = 0
        with memoryview(self.buffer) as view:  # slices of it copy once, not twice
            while len(view) - offset >= _REQUEST.size:
                length, raw_length = _REQUEST.unpack_from(view, offset)
                if length > MAX_FRAME or raw_length > self.raw_limit:
                    raise ValueError(f"frame of {length} + {raw_length} bytes refused")
                start = offset + _REQUEST.size
                raw_start = start + length
                if len(view) < raw_start + raw_length:
                    break
                received = json.loads(bytes(view[start:raw_start]))
                offset = raw_start + raw_length
                raw = bytes(view[raw_start:offset])
                found.append((received["id"], services.InboundRequest(raw=raw, **received["request"])))
        del self.buffer[:offset]
        return found

    def reply(self, request_id: int, outcome: Any) -> None:
        payload: dict[str, Any] = {"id": request_id}
        if isinstance(outcome, BaseException):
            payload["error"] = type(outcome).__name__
        else:
            payload["pk"] = outcome[0].pk
        view = memoryview(frame(payload))
        deadline = time.monotonic() + SEND_TIMEOUT
        try:
            while view:
                try:
                    view = view[self.sock.send(view) :]
                except (BlockingIOError, InterruptedError):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError("the worker does not read its replies") from None
                    select.select([], [self.sock], [], left)
        except OSError:
            self.closed = True  # the worker is gone or stuck; its sessions got 451


def writer_serve(
    listener: socket.socket, committer: GroupCommitter, *, stopped: Any, raw_limit: int | None = None
) -> None:
    """Serve the workers' connections on this one thread until ``stopped()`` is true.

    Whatever all workers sent while the last transaction ran is read at once and stored as
    the next batch: no thread hands requests to another (each hand-off costs a wake-up and a
    turn of the GIL), and a busy writer's batches grow by themselves. ``committer`` runs
    without a thread of its own (``GroupCommitter(thread=False)``). What was received before
    the stop is still stored and answered. ``raw_limit``: the workers' SIZE limit (settings'
    by default).
    """
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    links: list[_Link] = []
    try:
        while True:
            stopping = stopped()
            timeout = committer.idle_timeout()
            timeout = STOP_CHECK if timeout is None else min(timeout, STOP_CHECK)
            batch: list[tuple[_Link, int, services.InboundRequest]] = []
            for key, _events in selector.select(0 if stopping else timeout):
                if key.data is None:
                    _accept(listener, selector, links, raw_limit=raw_limit)
                    continue
                link: _Link = key.data
                try:
                    batch += [(link, request_id, request) for request_id, request in link.requests()]
                except (ValueError, TypeError, KeyError) as exc:
                    log.warning("smtpd writer: dropped a worker connection: %s", exc)
                    link.closed = True
            if batch:
                outcomes = committer.commit([request for _link, _id, request in batch])
                for (link, request_id, _request), outcome in zip(batch, outcomes, strict=True):
                    if not link.closed:
                        link.reply(request_id, outcome)
            # After the replies: a publish due now does not hold back this batch's 250s.
            committer.poll()
            for link in [link for link in links if link.closed]:
                links.remove(link)
                selector.unregister(link.sock)
                link.sock.close()
            if stopping:
                return
    finally:
        for link in links:
            link.sock.close()
        selector.close()


def _accept(
    listener: socket.socket, selector: selectors.BaseSelector, links: list[_Link], *, raw_limit: int | None
) -> None:
    while True:
        try:
            sock, _address = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        link = _Link(sock, raw_limit=raw_limit)
        links.append(link)
        selector.register(sock, selectors.EVENT_READ, link)


def writer_run(listener: socket.socket, *, publish: Any, parent: int, raw_limit: int | None = None) -> None:
    """The writer process: serve the workers' connections until SIGTERM or the supervisor is gone.

    On SIGTERM (the supervisor sends it once the SMTP workers have stopped) what was received
    is still stored and answered.
    """
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: stopping.set())
    committer = GroupCommitter(publish=publish, thread=False)
    try:
        # Killed with SIGKILL, the supervisor cannot stop us: stop when it is gone.
        writer_serve(
            listener,
            committer,
            stopped=lambda: stopping.is_set() or os.getppid() != parent,
            raw_limit=raw_limit,
        )
    finally:
        committer.finish()
