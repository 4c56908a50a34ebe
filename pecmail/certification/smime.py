"""S/MIME for PEC (SPEC §4): detached CMS signatures made and checked in-process.

Pure code: bytes in, bytes out, no ORM. ``sign`` signs exactly the bytes it is given;
``build_signed_message`` assembles the ``multipart/signed`` by hand so that the signed bytes
are never re-serialised; ``verify`` checks a received message strictly and never raises.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from pecmail.certification.pki import ProviderIdentity

CRLF = b"\r\n"
SIGNATURE_PROTOCOL = "application/x-pkcs7-signature"
MICALG = "sha-256"
PREAMBLE = b"This is an S/MIME signed message"
# Headers that build_signed_message writes itself: the caller's copies are dropped.
OWN_HEADERS = frozenset({"mime-version", "content-type", "content-transfer-encoding"})

_BARE_LF = re.compile(rb"(?<!\r)\n")
_BARE_CR = re.compile(rb"\r(?!\n)")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")


def sign(entity: bytes, identity: ProviderIdentity) -> bytes:
    """Return a DER detached CMS SignedData over exactly ``entity`` (SHA-256, RSA PKCS#1 v1.5).

    The signer certificate is included; the signed attributes are contentType, signingTime,
    messageDigest and smimeCapabilities (what the real providers emit).
    """
    builder = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(entity)
        .add_signer(identity.cert, identity.key, hashes.SHA256())
    )
    return builder.sign(
        serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
    )


def _header_line(name: str, value: str) -> bytes:
    if not _HEADER_NAME.match(name):
        raise ValueError(f"invalid header name {name!r}")
    # Values arrive already RFC 2047-encoded; only folded continuation lines may contain newlines.
    lines = value.replace("\r\n", "\n").split("\n")
    for continuation in lines[1:]:
        if continuation[:1] not in (" ", "\t"):
            raise ValueError(f"header {name} contains a line break that is not folding")
    try:
        encoded = "\r\n".join(lines).encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError(f"header {name} is not 7-bit: encode it (RFC 2047) first") from exc
    return name.encode("ascii") + b": " + encoded + CRLF


def _base64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return CRLF.join(encoded[i : i + 76] for i in range(0, len(encoded), 76)) + CRLF


def new_boundary(entity: bytes) -> str:
    """Return a boundary string that does not occur in ``entity``."""
    while True:
        boundary = f"----pecmail-signed-{secrets.token_hex(16)}"
        if boundary.encode("ascii") not in entity:
            return boundary


def build_signed_message(
    headers: Sequence[tuple[str, str]], entity: bytes, identity: ProviderIdentity
) -> bytes:
    """Return the whole RFC 5322 ``multipart/signed`` message, CRLF line ends.

    ``headers`` are emitted in order, then ``MIME-Version`` and the multipart/signed
    ``Content-Type`` (any caller copies of those are dropped). ``entity`` (a complete MIME
    entity — its own headers, a blank line, its body — with CRLF line ends only) becomes the
    first part byte for byte; the detached signature over it is the second part ``smime.p7s``.
    """
    if _BARE_LF.search(entity) or _BARE_CR.search(entity):
        raise ValueError("the signed entity must use CRLF line ends only (S/MIME canonical form)")
    signature = sign(entity, identity)
    boundary = new_boundary(entity)
    delimiter = b"--" + boundary.encode("ascii")
    out = bytearray()
    for name, value in headers:
        if name.lower() in OWN_HEADERS:
            continue
        out += _header_line(name, value)
    out += b"MIME-Version: 1.0" + CRLF
    out += (
        f'Content-Type: multipart/signed; protocol="{SIGNATURE_PROTOCOL}"; micalg="{MICALG}";'
        f'\r\n boundary="{boundary}"'
    ).encode("ascii") + CRLF
    out += CRLF + PREAMBLE + CRLF + CRLF
    out += delimiter + CRLF
    out += entity
    # The CRLF before a delimiter belongs to the delimiter, not to the signed entity (RFC 2046 §5.1.1).
    out += CRLF + delimiter + CRLF
    out += f'Content-Type: {SIGNATURE_PROTOCOL}; name="smime.p7s"'.encode("ascii") + CRLF
    out += b"Content-Transfer-Encoding: base64" + CRLF
    out += b'Content-Disposition: attachment; filename="smime.p7s"' + CRLF
    out += b"Content-Description: S/MIME Cryptographic Signature" + CRLF
    out += CRLF
    out += _base64_lines(signature)
    out += CRLF + delimiter + b"--" + CRLF
    return bytes(out)
