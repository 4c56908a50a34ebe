"""``pec smtpd``: the provider's incoming SMTP server (aiosmtpd) with STARTTLS.

The server runs in its own thread (aiosmtpd's Controller); ORM work of the handler runs on
executor threads so the event loop never blocks on the database.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import ssl
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings

from .handler import PecHandler

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


class PecController(Controller):
    """aiosmtpd's threaded controller that also releases the handler's database connections."""

    def stop(self, *args: Any, **kwargs: Any) -> None:
        super().stop(*args, **kwargs)
        self.handler.close()


def max_message_size() -> int:
    return int(getattr(settings, "PEC_SMTP_MAX_MESSAGE_SIZE", settings.PEC_MAX_TOTAL_SIZE))


def server_create(
    *,
    host: str,
    port: int,
    max_size: int | None = None,
    max_recipients: int | None = None,
    publish: bool = True,
) -> PecController:
    """Return a ready (not yet started) controller serving the PEC handler on host:port."""
    from .outbox import outbox_publish_items

    hostname = getattr(settings, "PEC_SMTP_HOSTNAME", "") or f"mx.{settings.PEC_DOMAIN}"
    handler = PecHandler(
        max_recipients=max_recipients or settings.PEC_MAX_RECIPIENTS,
        publish=outbox_publish_items if publish else None,
    )
    return PecController(
        handler,
        hostname=host,
        port=port,
        server_hostname=hostname,
        ready_timeout=10,
        data_size_limit=max_size or max_message_size(),
        enable_SMTPUTF8=True,
        decode_data=False,
        tls_context=tls_context(hostname),
        require_starttls=False,
        # No AUTH: peers are identified by their S/MIME signature, not by SMTP credentials.
        auth_exclude_mechanism=["LOGIN", "PLAIN"],
        timeout=300,
    )


def parse_bind(bind: str) -> tuple[str, int]:
    host, _sep, port = bind.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def serve(*, bind: str, max_size: int | None = None, max_recipients: int | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    host, port = parse_bind(bind)
    # aiosmtpd logs every connection at INFO; our own log says what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
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
