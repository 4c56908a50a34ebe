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
    controller = smtpd.server_create(
        host="127.0.0.1", port=port, max_size=10_000, max_recipients=3, publish=False
    )
    controller.start()
    try:
        yield "127.0.0.1", port
    finally:
        # Sessions SMTP out kept open to this server would hold stop() up for 30 s.
        from pecmail.transport import outbound

        outbound.sessions_close()
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
        # SMTP out keeps sessions open for reuse; aiosmtpd's stop() would wait 30 s for them.
        from pecmail.transport import outbound

        outbound.sessions_close()
        controller.stop()


@pytest.fixture(scope="session")
def _local_pki(tmp_path_factory):
    # RSA key generation is the slow part: one identity per test session.
    from django.conf import settings as django_settings

    from pecmail.certification import pki

    directory = tmp_path_factory.mktemp("transport-pki")
    pki.init_provider(
        domain=django_settings.PEC_DOMAIN, name=django_settings.PEC_PROVIDER_NAME, directory=directory
    )
    return directory


@pytest.fixture
def local_provider(db, settings, _local_pki):
    """This provider's identity on disk, listed in its own providers index."""
    from pecmail.certification import pki
    from pecmail.certification.index import provider_register_self

    settings.PEC_PKI_DIR = _local_pki
    settings.PEC_SIGNING_KEY = _local_pki / "provider.key"
    settings.PEC_SIGNING_CERT = _local_pki / "provider.pem"
    settings.PEC_CA_CERT = _local_pki / "ca.pem"
    identity = pki.load_identity()
    provider_register_self(identity=identity)
    return identity


def register_provider(identity, *, name: str | None = None, domain: str | None = None):
    """List another provider (its certificate and domain) in our providers index."""
    from cryptography.hazmat.primitives import serialization

    from pecmail.certification.models import Provider, ProviderCertificate, ProviderDomain
    from pecmail.certification.trust import certificate_sha1

    provider = Provider.objects.create(name=name or identity.name, mail_receipt=identity.service_address)
    ProviderCertificate.objects.create(
        provider=provider,
        der=identity.cert.public_bytes(serialization.Encoding.DER),
        sha1=certificate_sha1(identity.cert),
    )
    ProviderDomain.objects.create(provider=provider, domain=domain or identity.domain)
    return provider


@pytest.fixture
def remote_provider(db, local_provider):
    """Provider A at pec-a.test, trusted by us."""
    from pecmail.certification import testing

    identity = testing.make_identity("pec-a.test", "Provider A")
    register_provider(identity)
    return identity


@pytest.fixture
def routed_sink(sink, settings):
    """Every remote domain of the tests routes to the sink."""
    handler, port = sink
    settings.PEC_ROUTES = {d: f"127.0.0.1:{port}" for d in ("pec-a.test", "pec-b.test", "mail.test")}
    return handler
