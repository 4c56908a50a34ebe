"""An in-process ``pec smtpd`` on a free loopback port, and a raw SMTP client for hostile input."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from pecmail.transport import smtpd


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(transactional_db, settings, tmp_path) -> Iterator[tuple[str, int]]:
    """A running server (10 kB SIZE, 3 recipients) that does not publish work, so tests see it queued."""
    settings.PEC_PKI_DIR = tmp_path / "pki"
    port = free_port()
    controller = smtpd.server_create(host="127.0.0.1", port=port, max_size=10_000, max_recipients=3, publish=False)
    controller.start()
    try:
        yield "127.0.0.1", port
    finally:
        controller.stop()


class RawClient:
    """Speaks SMTP byte by byte, so tests can send what smtplib would normalise away."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buffer = b""
        self.greeting = self.reply()

    def reply(self) -> str:
        """Read one (possibly multi-line) reply and return it as text."""
        lines = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line.decode())
            if len(line) < 4 or line[3:4] != b"-":
                return "\n".join(lines)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str) -> str:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.sock.close()


class SinkHandler:
    """An ordinary SMTP server for tests: keeps what it accepts, refuses what it is told to."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.rcpt_replies: dict[str, str] = {}
        self.data_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "data": envelope.original_content,
                "tls": session.ssl is not None,
            }
        )
        return "250 OK"


@pytest.fixture
def sink(tmp_path) -> Iterator[tuple[SinkHandler, int]]:
    """An ordinary SMTP server on a free port, offering STARTTLS."""
    from aiosmtpd.controller import Controller

    cert, key = tmp_path / "sink.pem", tmp_path / "sink.key"
    smtpd.tls_ensure_development_certificate(cert, key, "sink.test")
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=context)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()
