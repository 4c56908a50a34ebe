"""``PecSMTP`` reads DATA in blocks; on every byte stream it must answer as stock aiosmtpd does.

Both servers run side by side on loopback and get the same streams, cut into the same pieces:
dot-stuffed lines, bare CR and LF, lines around the length limit, content around the size
limit, empty content, and commands sent right behind the data.
"""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiosmtpd.smtp import SMTP

from pecmail.transport.smtpd import PecSMTP

LINES = [
    b"Subject: prova",
    b"",
    b"testo normale",
    # (no lone "." line: it would end the data and the rest would reach the server as commands)
    b"..",
    b".riga con punto",
    b"..due punti",
    b"riga\ncon LF nudo",
    b"riga\rcon CR nudo",
    b"\n.\n",
    b"\r.",
    b"x" * 997,
    b"x" * 998,
    b"x" * 999,
    b"x" * 1000,
    b"x" * 1001,
    b"x" * 1002,
    b"." + b"y" * 999,
    b"z" * 3000,
]


class Recorder:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.contents.append(envelope.original_content)
        return f"250 OK {len(envelope.original_content)}"


async def _exchange(port: int, pieces: list[bytes]) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readuntil(b"\r\n")
        for command in (b"HELO client.test\r\n", b"MAIL FROM:<a@peer.test>\r\n", b"RCPT TO:<b@pec.test>\r\n"):
            writer.write(command)
            await reader.readuntil(b"\r\n")
        writer.write(b"DATA\r\n")
        assert (await reader.readuntil(b"\r\n")).startswith(b"354")
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(b"QUIT\r\n")
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def _cases(rng: random.Random) -> list[tuple[bytes, list[bytes], int | None]]:
    cases = []
    for _ in range(250):
        lines = [rng.choice(LINES) for _ in range(rng.randint(0, 12))]
        stream = b"".join(line + b"\r\n" for line in lines) + b".\r\n"
        if rng.random() < 0.3:
            stream += b"NOOP\r\n"  # sent right behind the data, before the reply
        limit = rng.choice([None, 200, 1500, 5000, len(stream) - 3, len(stream) - 8])
        cuts = sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, rng.randint(0, 6))))
        if rng.random() < 0.1:
            cuts = list(range(1, len(stream)))  # byte by byte
        pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        cases.append((stream, pieces, limit))
    return cases


def _run_both(cases) -> list[tuple[tuple[bytes, list[bytes]], tuple[bytes, list[bytes]]]]:
    async def main():
        loop = asyncio.get_running_loop()
        results = []
        for _stream, pieces, limit in cases:
            outcomes = []
            for factory in (SMTP, PecSMTP):
                recorder = Recorder()
                server = await loop.create_server(
                    lambda factory=factory, recorder=recorder, limit=limit: factory(
                        recorder, data_size_limit=limit, decode_data=False, hostname="mx.pec.test"
                    ),
                    "127.0.0.1",
                    0,
                )
                port = server.sockets[0].getsockname()[1]
                try:
                    replies = await _exchange(port, pieces)
                finally:
                    server.close()
                    await server.wait_closed()
                outcomes.append((replies, recorder.contents))
            results.append(tuple(outcomes))
        return results

    with ThreadPoolExecutor(1) as pool:  # a loop of its own, whatever the test thread holds
        return pool.submit(asyncio.run, main()).result(timeout=300)


@pytest.mark.parametrize("seed", [1, 2])
def test_block_reading_answers_and_stores_exactly_as_aiosmtpd_does(seed):
    cases = _cases(random.Random(seed))
    results = _run_both(cases)
    kinds = set()
    for (stream, pieces, limit), (stock, ours) in zip(cases, results, strict=True):
        assert ours == stock, (stream[:200], [len(p) for p in pieces], limit)
        kinds.add(stock[0][:3])  # the reply to DATA
    # Every outcome was exercised: stored, too much data, a line too long.
    assert {b"250", b"552", b"500"} <= kinds


def test_the_fast_path_stores_the_everyday_message():
    content = b"Subject: x\r\n\r\n..stuffed\r\n" + b"riga\r\n" * 500
    stream = content + b".\r\n"
    ((stock, ours),) = _run_both([(stream, [stream[:100], stream[100:]], None)])
    assert ours == stock
    assert ours[1] == [b"Subject: x\r\n\r\n.stuffed\r\n" + b"riga\r\n" * 500]
