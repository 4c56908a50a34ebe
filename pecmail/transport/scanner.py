"""The virus scanner, chosen by ``PEC_VIRUS_SCANNER``: "none" (default), "eicar", "clamd".

``scan(data)`` returns the name of the virus found, or None. "clamd" speaks the clamd
INSTREAM protocol to ``PEC_CLAMD_SOCKET`` (a unix socket path) or ``PEC_CLAMD_ADDRESS``
(host:port). "eicar" is a built-in test scanner that only knows the EICAR test string.
A scanner that cannot answer raises ScannerUnavailable: the caller must treat the message
as not yet checked (retry), never as clean.
"""

from __future__ import annotations

import datetime as dt
import socket
import struct

from django.conf import settings
from django.utils import timezone

from pecmail.mail import storage

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CHUNK = 64 * 1024
# Infected messages are kept 30 months (SPEC §2.6).
QUARANTINE_RETENTION = dt.timedelta(days=30 * 31)


class ScannerUnavailable(Exception):
    """The configured scanner could not give an answer."""


def _clamd_connect() -> socket.socket:
    timeout = float(getattr(settings, "PEC_CLAMD_TIMEOUT", 60))
    path = getattr(settings, "PEC_CLAMD_SOCKET", "")
    if path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(path)
        return sock
    host, _sep, port = getattr(settings, "PEC_CLAMD_ADDRESS", "127.0.0.1:3310").rpartition(":")
    return socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout)


def clamd_scan(data: bytes) -> str | None:
    """Send ``data`` with zINSTREAM; parse "stream: OK" / "stream: <name> FOUND"."""
    try:
        with _clamd_connect() as sock:
            sock.sendall(b"zINSTREAM\0")
            for start in range(0, len(data), CHUNK):
                chunk = data[start : start + CHUNK]
                sock.sendall(struct.pack("!L", len(chunk)) + chunk)
            sock.sendall(struct.pack("!L", 0))
            reply = b""
            while not reply.endswith(b"\0"):
                part = sock.recv(4096)
                if not part:
                    break
                reply += part
    except OSError as exc:
        raise ScannerUnavailable(f"clamd: {exc}") from exc
    text = reply.rstrip(b"\0").decode("utf-8", "replace").strip()
    if text.endswith("OK"):
        return None
    if text.endswith("FOUND"):
        return text.removeprefix("stream:").strip().removesuffix("FOUND").strip()
    raise ScannerUnavailable(f"clamd: unexpected answer {text!r}")


def scan(data: bytes) -> str | None:
    """Return the name of the virus in ``data`` (a whole message), or None if clean."""
    backend = getattr(settings, "PEC_VIRUS_SCANNER", "none") or "none"
    if backend == "none":
        return None
    if backend == "eicar":
        return "Eicar-Test-Signature" if _contains_eicar(data) else None
    if backend == "clamd":
        return clamd_scan(data)
    raise ScannerUnavailable(f"unknown PEC_VIRUS_SCANNER {backend!r}")


def _contains_eicar(data: bytes) -> bool:
    if EICAR in data:
        return True
    # Attachments travel base64-encoded: look inside every decodable part as well.
    from pecmail.certification import mimebytes

    try:
        root = mimebytes.parse(data)
    except Exception:  # noqa: BLE001 - unparseable MIME simply has no parts to look into
        return False
    return any(not part.children and EICAR in part.decoded_body() for part in root.walk(into_messages=True))


def quarantine_put(*, raw: bytes, reason: str, pec_id: str = "", now: dt.datetime | None = None) -> str:
    """Keep an infected message (30 months) under ``quarantine/``; return its storage path."""
    import hashlib

    now = now or timezone.now()
    sha256 = hashlib.sha256(raw).hexdigest()
    keep_until = (now + QUARANTINE_RETENTION).date().isoformat()
    path = f"quarantine/{now:%Y/%m}/{sha256}.eml"
    # On disk before the caller commits: the spooled copy goes with that commit.
    storage.file_put(path, raw)
    storage.file_put(
        f"quarantine/{now:%Y/%m}/{sha256}.txt",
        f"virus: {reason}\npec_id: {pec_id}\nkeep_until: {keep_until}\n".encode(),
    )
    return path
