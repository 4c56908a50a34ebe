"""The link between forked ``pec smtpd`` workers and their writer (``transport/writer.py``).

A real Unix socket and a real ``GroupCommitter`` on the test database; the writer's process
is played by threads here (``test_smtpd_processes`` runs the real processes).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from pecmail.mail import storage
from pecmail.transport import services
from pecmail.transport import writer as writer_module
from pecmail.transport.handler import GroupCommitter
from pecmail.transport.models import InboundMessage
from pecmail.transport.writer import MAX_FRAME, RemoteCommitter

pytestmark = pytest.mark.django_db(transaction=True)


def run(coroutine):
    """``asyncio.run`` on a thread of its own: a browser test may have left this thread with a
    running loop (Playwright's sync API), and a worker's loop is never the test's anyway."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


def request(n: int, mail_from: str = "sender@peer.test") -> services.InboundRequest:
    raw = f"From: {mail_from}\r\nSubject: {n}\r\n\r\nbody {n}\r\n".encode()
    return services.InboundRequest(raw=raw, mail_from=mail_from, rcpt_tos=[f"r{n}@pec.localhost"], tls=True)


@pytest.fixture
def writer(tmp_path):
    """A listening writer socket served by ``writer_serve`` on a thread; yields (path, its links)."""
    path = str(tmp_path / "writer.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    committer = GroupCommitter(publish=None, thread=False)
    stop = threading.Event()
    served: list[socket.socket] = []
    real_accept = writer_module._accept

    def accept(listener, selector, links, **kwargs):
        real_accept(listener, selector, links, **kwargs)
        served.extend(link.sock for link in links if link.sock not in served)

    def serve() -> None:
        try:
            writer_module.writer_serve(listener, committer, stopped=stop.is_set)
        finally:
            committer.finish()

    writer_module._accept = accept
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path, served
    finally:
        stop.set()
        thread.join(timeout=30)
        writer_module._accept = real_accept
        listener.close()


def test_the_writer_commits_the_rows_with_their_bytes(writer):
    path, _served = writer

    async def session() -> list[tuple[InboundMessage, None]]:
        remote = RemoteCommitter(path)
        try:
            return await asyncio.gather(*(remote.store(request(n)) for n in range(5)))
        finally:
            await remote.aclose()

    results = run(session())
    rows = {row.pk: row for row in InboundMessage.objects.all()}
    assert sorted(rows) == sorted(inbound.pk for inbound, _item in results)
    for n, (inbound, _item) in enumerate(results):
        row = rows[inbound.pk]
        raw = request(n).raw
        assert row.rcpt_tos == [f"r{n}@pec.localhost"] and row.tls is True
        assert row.size == len(raw) and bytes(row.raw) == raw
        assert row.raw_sha256 == hashlib.sha256(raw).hexdigest()
        # In the spool only: processing moves them into storage.
        with pytest.raises(storage.RawMissing):
            storage.raw_get(row.raw_sha256)


def test_a_large_message_crosses_the_socket_whole(writer):
    """Bytes far beyond one socket buffer, with CR LF and NULs, arrive byte-exact."""
    path, _served = writer
    raw = b"From: big@peer.test\r\n\r\n" + bytes(range(256)) * 20_000 + b"\r\n"

    async def session() -> tuple[InboundMessage, None]:
        remote = RemoteCommitter(path)
        try:
            return await remote.store(
                services.InboundRequest(raw=raw, mail_from="big@peer.test", rcpt_tos=["b@x"])
            )
        finally:
            await remote.aclose()

    inbound, _item = run(session())
    row = InboundMessage.objects.get(pk=inbound.pk)
    assert bytes(row.raw) == raw and row.size == len(raw)


def test_without_a_writer_store_fails_so_the_session_answers_451(tmp_path):
    async def session() -> None:
        await RemoteCommitter(str(tmp_path / "nobody.sock")).store(request(1))

    with pytest.raises(OSError):
        run(session())
    assert InboundMessage.objects.count() == 0


def test_a_lost_writer_fails_the_waiting_requests_and_the_next_one_reconnects(writer, monkeypatch):
    path, served = writer
    # The writer takes the first request but dies before replying.
    stuck = threading.Event()
    real = services.inbound_store_many

    def dying(requests, **kwargs):
        if requests[0].mail_from == "first@peer.test":
            for sock in served:
                sock.shutdown(socket.SHUT_RDWR)
            stuck.set()
            raise ConnectionError("writer gone")
        return real(requests, **kwargs)

    monkeypatch.setattr(services, "inbound_store_many", dying)

    async def session() -> tuple[BaseException | None, InboundMessage]:
        remote = RemoteCommitter(path)
        try:
            try:
                await remote.store(request(1, mail_from="first@peer.test"))
                failure = None
            except Exception as exc:
                failure = exc
            inbound, _item = await remote.store(request(2))
            return failure, inbound
        finally:
            await remote.aclose()

    failure, inbound = run(session())
    assert stuck.is_set() and failure is not None
    assert list(InboundMessage.objects.values_list("pk", flat=True)) == [inbound.pk]


@pytest.mark.parametrize(
    ("head", "raw"), [(MAX_FRAME + 1, 0), (100, 10_001)], ids=["request too long", "message over SIZE"]
)
def test_a_frame_longer_than_any_request_is_refused(head, raw):
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(struct.pack("!II", head, raw) + b"x")
        with pytest.raises(ValueError, match="refused"):
            writer_module._Link(ours, raw_limit=10_000).requests()


def ends(stream: bytes) -> list[int]:
    """Where each request of ``stream`` ends."""
    found, offset = [], 0
    while offset < len(stream):
        length, raw_length = struct.unpack_from("!II", stream, offset)
        offset += 8 + length + raw_length
        found.append(offset)
    return found


def test_frames_split_anywhere_are_read_whole_and_in_order():
    """A worker's frames arrive in arbitrary pieces; each request is decoded once it is complete."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        link = writer_module._Link(ours)
        sent = {n: request(n) for n in (1, 2, 3)}
        stream = b"".join(writer_module.request_head(n, one) + one.raw for n, one in sent.items())
        seen = []
        for cut in range(0, len(stream), 7):
            # A Unix socket pair: what sendall sent is readable at once.
            theirs.sendall(stream[cut : cut + 7])
            seen += link.requests()
            assert len(seen) == sum(1 for end in ends(stream) if end <= cut + 7)
        assert [request_id for request_id, _request in seen] == [1, 2, 3]
        for request_id, received in seen:
            assert received.raw == sent[request_id].raw and received.rcpt_tos == sent[request_id].rcpt_tos
            assert received.raw_sha256 == sent[request_id].digest()
        assert link.buffer == bytearray() and not link.closed
        theirs.close()
        assert link.requests() == [] and link.closed
