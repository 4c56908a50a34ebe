"""S/MIME for PEC (SPEC §4): detached CMS signatures made and checked in-process.

Pure code: bytes in, bytes out, no ORM. ``sign`` signs exactly the bytes it is given;
``build_signed_message`` assembles the ``multipart/signed`` by hand so that the signed bytes
are never re-serialised; ``verify`` checks a received message strictly and never raises.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from pecmail.certification import mimebytes
from pecmail.certification.pki import ProviderIdentity
from pecmail.certification.trust import TrustedProvider, TrustStore, certificate_sha1

CRLF = b"\r\n"
SIGNATURE_PROTOCOL = "application/x-pkcs7-signature"
MICALG = "sha-256"
PREAMBLE = b"This is an S/MIME signed message"
# Headers that build_signed_message writes itself: the caller's copies are dropped.
OWN_HEADERS = frozenset({"mime-version", "content-type", "content-transfer-encoding"})

_BARE_LF = re.compile(rb"(?<!\r)\n")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")


def sign(entity: bytes, identity: ProviderIdentity) -> bytes:
    """Return a DER detached CMS SignedData over exactly ``entity`` (SHA-256, RSA PKCS#1 v1.5).

    The signer certificate is included; the signed attributes are contentType, signingTime,
    messageDigest and smimeCapabilities (what the real providers emit). The encoding is
    byte for byte what ``cryptography``'s PKCS7SignatureBuilder makes (a test holds the two
    equal): the constant pieces of an identity are encoded once and the per-message ones
    (digest, time, signature) are spliced in, so signing costs one hash and one RSA operation.
    """
    return _sign_detached(entity, identity, dt.datetime.now(dt.UTC))


def _der_length(size: int) -> bytes:
    if size < 0x80:
        return bytes((size,))
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(encoded),)) + encoded


def _tlv(tag: int, *contents: bytes) -> bytes:
    body = b"".join(contents)
    return bytes((tag,)) + _der_length(len(body)) + body


_OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")
_SHA256_ALGORITHM = bytes.fromhex("300d06096086480165030402010500")
_RSA_ALGORITHM = bytes.fromhex("300d06092a864886f70d0101010500")
_DATA_CONTENT_INFO = bytes.fromhex("300b06092a864886f70d010701")
_ATTR_CONTENT_TYPE = bytes.fromhex("301806092a864886f70d010903310b06092a864886f70d010701")
_ATTR_SIGNING_TIME = bytes.fromhex("06092a864886f70d010905")
_ATTR_MESSAGE_DIGEST = bytes.fromhex("06092a864886f70d010904")
# SMIMECapabilities {aes256-CBC, aes128-CBC, des-EDE3-CBC}: what PKCS7SignatureBuilder emits.
_ATTR_SMIME_CAPABILITIES = bytes.fromhex(
    "303606092a864886f70d01090f31293027300b060960864801650304012a300b0609608648016503040116"
    "300b0609608648016503040102"
)


@dataclass(frozen=True)
class _SignerPieces:
    key: rsa.RSAPrivateKey
    certificates: bytes  # [0] IMPLICIT SET OF Certificate, the signer certificate alone
    sid: bytes  # IssuerAndSerialNumber


_signer_cache: dict[int, tuple[ProviderIdentity, _SignerPieces]] = {}


def _signer_pieces(identity: ProviderIdentity) -> _SignerPieces:
    cached = _signer_cache.get(id(identity))
    # The identity object itself is kept in the cache, so its id cannot be reused meanwhile.
    if cached is not None and cached[0] is identity:
        return cached[1]
    cert_der = identity.cert.public_bytes(serialization.Encoding.DER)
    serial = identity.cert.serial_number
    serial_der = _tlv(0x02, serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=True))
    pieces = _SignerPieces(
        key=identity.key,
        certificates=_tlv(0xA0, cert_der),
        sid=_tlv(0x30, identity.cert.issuer.public_bytes(), serial_der),
    )
    if len(_signer_cache) > 64:
        _signer_cache.clear()
    _signer_cache[id(identity)] = (identity, pieces)
    return pieces


def _signing_time(when: dt.datetime) -> bytes:
    when = when.astimezone(dt.UTC)
    stamp = f"{when.month:02d}{when.day:02d}{when.hour:02d}{when.minute:02d}{when.second:02d}Z"
    # RFC 5652 §11.3: UTCTime for 1950–2049, GeneralizedTime otherwise.
    if 1950 <= when.year < 2050:
        return _tlv(0x17, f"{when.year % 100:02d}{stamp}".encode("ascii"))
    return _tlv(0x18, f"{when.year:04d}{stamp}".encode("ascii"))


# messageDigest attribute up to the 32 digest bytes: SEQUENCE { OID, SET { OCTET STRING (32) } }.
_ATTR_MESSAGE_DIGEST_SHA256 = bytes.fromhex("302f06092a864886f70d01090431220420")


def _sign_detached(entity: bytes, identity: ProviderIdentity, when: dt.datetime) -> bytes:
    pieces = _signer_pieces(identity)
    attributes = sorted(
        (
            _ATTR_CONTENT_TYPE,
            _tlv(0x30, _ATTR_SIGNING_TIME, _tlv(0x31, _signing_time(when))),
            _ATTR_MESSAGE_DIGEST_SHA256 + hashlib.sha256(entity).digest(),
            _ATTR_SMIME_CAPABILITIES,
        )
    )  # DER orders a SET OF by the encodings
    attributes_body = b"".join(attributes)
    # The signature covers the attributes as a SET OF (tag 0x31); they travel as [0] IMPLICIT.
    signature = pieces.key.sign(_tlv(0x31, attributes_body), padding.PKCS1v15(), hashes.SHA256())
    signer_info = _tlv(
        0x30,
        b"\x02\x01\x01",
        pieces.sid,
        _SHA256_ALGORITHM,
        _tlv(0xA0, attributes_body),
        _RSA_ALGORITHM,
        _tlv(0x04, signature),
    )
    signed_data = _tlv(
        0x30,
        b"\x02\x01\x01",
        _tlv(0x31, _SHA256_ALGORITHM),
        _DATA_CONTENT_INFO,
        pieces.certificates,
        _tlv(0x31, signer_info),
    )
    return _tlv(0x30, _OID_SIGNED_DATA, _tlv(0xA0, signed_data))


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
    # A bare LF would be signed as is, and clients that canonicalise before checking would fail.
    # Counting is C-speed; a regex with look-behind over a megabyte is not.
    if entity.count(b"\n") != entity.count(b"\r\n"):
        raise ValueError("the signed entity must use CRLF line ends only (S/MIME canonical form)")
    return assemble_signed_message(headers, entity, sign(entity, identity))


def assemble_signed_message(
    headers: Sequence[tuple[str, str]],
    entity: bytes,
    signature: bytes,
    *,
    protocol: str = SIGNATURE_PROTOCOL,
    micalg: str = MICALG,
) -> bytes:
    """Return the ``multipart/signed`` message around ``entity`` and a ready DER ``signature``.

    ``build_signed_message`` is the normal way in; this is the assembly step alone (tests use it
    to wrap hand-made signatures).
    """
    boundary = new_boundary(entity)
    delimiter = b"--" + boundary.encode("ascii")
    head = bytearray()
    for name, value in headers:
        if name.lower() in OWN_HEADERS:
            continue
        head += _header_line(name, value)
    head += b"MIME-Version: 1.0" + CRLF
    head += (
        f'Content-Type: multipart/signed; protocol="{protocol}"; micalg="{micalg}";\r\n boundary="{boundary}"'
    ).encode("ascii") + CRLF
    head += CRLF + PREAMBLE + CRLF + CRLF
    head += delimiter + CRLF
    tail = bytearray()
    # The CRLF before a delimiter belongs to the delimiter, not to the signed entity (RFC 2046 §5.1.1).
    tail += CRLF + delimiter + CRLF
    tail += f'Content-Type: {protocol}; name="smime.p7s"'.encode("ascii") + CRLF
    tail += b"Content-Transfer-Encoding: base64" + CRLF
    tail += b'Content-Disposition: attachment; filename="smime.p7s"' + CRLF
    tail += b"Content-Description: S/MIME Cryptographic Signature" + CRLF
    tail += CRLF
    tail += _base64_lines(signature)
    tail += CRLF + delimiter + b"--" + CRLF
    # One copy of the (possibly megabytes of) entity, not two.
    return b"".join((head, entity, tail))


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------

SIGNATURE_TYPES = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature"})
# A PEC signature holds one signer certificate and a few attributes: anything bigger is hostile.
MAX_SIGNATURE_BYTES = 1024 * 1024
MAX_DER_DEPTH = 32
# Real headers are a few kilobytes; parsing megabytes of them is only an attacker's wish.
MAX_HEADER_BYTES = 1024 * 1024
# The whole index of every Italian PEC provider is a few hundred kilobytes.
MAX_ATTACHED_BYTES = 64 * 1024 * 1024
MAX_NESTED_PARTS = 200
ACCEPTED_DIGESTS = frozenset({"sha1", "sha224", "sha256", "sha384", "sha512"})
WEAK_DIGESTS = frozenset({"md5", "md2", "md4"})


class Problem:
    """The names of the reasons a signature is not signed/valid/trusted (``SignatureResult.problems``)."""

    NOT_SIGNED = "not-signed"
    NOT_TOP_LEVEL = "signature-not-top-level"
    MALFORMED_MIME = "malformed-mime"
    DUPLICATE_CONTENT_TYPE = "duplicate-content-type"
    NO_BOUNDARY = "missing-boundary"
    PROTOCOL = "unsupported-protocol"
    PART_COUNT = "multipart-signed-part-count"
    UNCLOSED = "multipart-signed-not-closed"
    TRAILING_DATA = "data-after-multipart-signed"
    SIGNATURE_PART_TYPE = "signature-part-type"
    SIGNATURE_ENCODING = "signature-encoding"
    SIGNATURE_TOO_LARGE = "signature-too-large"
    ASN1_TOO_DEEP = "asn1-too-deep"
    ASN1_MALFORMED = "asn1-malformed"
    NOT_SIGNED_DATA = "cms-not-signed-data"
    ECONTENT_TYPE = "cms-encapsulated-type-not-data"
    ECONTENT_PRESENT = "econtent-present"
    ECONTENT_MISSING = "econtent-missing"
    NO_SIGNER = "no-signer"
    MULTIPLE_SIGNERS = "multiple-signers"
    WEAK_DIGEST = "weak-digest-algorithm"
    UNSUPPORTED_DIGEST = "unsupported-digest-algorithm"
    DIGEST_NOT_DECLARED = "digest-algorithm-not-declared"
    BAD_VERSION = "cms-version"
    NO_SIGNED_ATTRIBUTES = "signed-attributes-missing"
    DUPLICATE_ATTRIBUTE = "duplicate-signed-attribute"
    CONTENT_TYPE_MISSING = "content-type-attribute-missing"
    CONTENT_TYPE_MISMATCH = "content-type-attribute-mismatch"
    DIGEST_MISSING = "message-digest-attribute-missing"
    DIGEST_MISMATCH = "message-digest-mismatch"
    CERTIFICATE_MISSING = "signer-certificate-missing"
    CERTIFICATE_MALFORMED = "signer-certificate-malformed"
    UNSUPPORTED_SIGNATURE = "unsupported-signature-algorithm"
    BAD_SIGNATURE = "signature-invalid"
    NOT_IN_TRUST_STORE = "signer-not-in-trust-store"
    EXPIRED = "certificate-expired"
    NOT_YET_VALID = "certificate-not-yet-valid"
    KEY_USAGE = "signer-key-usage"
    NO_CHAIN = "certificate-chain-not-trusted"


@dataclass
class SignatureResult:
    signed: bool = False
    valid: bool = False
    trusted: bool = False
    signer: x509.Certificate | None = None
    signer_sha1: str | None = None
    digest_algorithm: str | None = None
    signed_entity: bytes | None = None
    provider: TrustedProvider | None = None
    problems: list[str] = field(default_factory=list)
    # Extras: when the signer says it signed, and whether only the CRLF form of the entity matched.
    signing_time: dt.datetime | None = None
    canonicalised: bool = False
    # DER of every certificate the signature carries (loaded on demand: only chain checks need them).
    certificate_ders: tuple[bytes, ...] = ()

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        certs = []
        for der in self.certificate_ders:
            try:
                certs.append(x509.load_der_x509_certificate(der))
            except ValueError:
                continue
        return tuple(certs)

    @property
    def signer_addresses(self) -> list[str]:
        return certificate_addresses(self.signer) if self.signer is not None else []

    def to_json(self) -> dict:
        return {
            "signed": self.signed,
            "valid": self.valid,
            "trusted": self.trusted,
            "signer": self.signer.subject.rfc4514_string() if self.signer is not None else None,
            "signer_sha1": self.signer_sha1,
            "signer_addresses": self.signer_addresses,
            "digest_algorithm": self.digest_algorithm,
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
            "provider": self.provider.name if self.provider is not None else None,
            "problems": list(self.problems),
        }


def certificate_addresses(cert: x509.Certificate) -> list[str]:
    """Return the rfc822Name addresses of a certificate's subjectAltName (lower-case)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [address.lower() for address in san.get_values_for_type(x509.RFC822Name)]


class _Invalid(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


_HEADER_END = re.compile(rb"\r?\n\r?\n")
# Blanks a base64 body may carry between its characters (removed with bytes.translate: no regex).
_WSP = b" \t\r\n"


def _header_end(entity: bytes) -> tuple[int, int]:
    """Return where a MIME entity's header block ends and where its body starts."""
    if entity.startswith(b"\r\n"):
        return 0, 2
    if entity.startswith(b"\n"):
        return 0, 1
    match = _HEADER_END.search(entity)
    if match is None:
        return len(entity), len(entity)
    return match.start(), match.end()


def _split_entity(entity: bytes) -> tuple[bytes, bytes]:
    """Split a MIME entity into its header block and body (the body may be empty)."""
    end, body = _header_end(entity)
    return entity[:end], entity[body:]


# A header block of nothing but well-formed fields (a printable name, a colon) and their
# continuation lines, with CRLF or LF line ends. For such a block ``mimebytes.parse_headers``
# yields exactly the fields the ``email`` feedparser yields; anything else (a bare CR, a line
# that is neither, an empty name, a leading continuation, a "From " line) goes to the feedparser.
_PLAIN_HEADER_BLOCK = re.compile(rb"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*(?:\r?\n|\Z))+")


def _parse_headers(block: bytes) -> Message:
    if len(block) > MAX_HEADER_BYTES:
        raise _Invalid(Problem.MALFORMED_MIME)
    if block.count(b"\r") == block.count(b"\r\n") and _PLAIN_HEADER_BLOCK.fullmatch(block):
        return mimebytes.parse_headers(block)
    return BytesParser(policy=compat32).parsebytes(block + b"\n\n", headersonly=True)


def _split_multipart(body: bytes, boundary: str, offset: int = 0) -> tuple[list[bytes], bool, bytes]:
    """Return the parts of a multipart body, whether it was closed, and the epilogue.

    A delimiter is ``--boundary`` at the start of a line, optionally ``--`` (close), optional
    blanks, then the end of the line; the line break before it belongs to the delimiter.
    Plain ``find`` rather than a regex: this runs over megabytes per message.
    """
    try:
        marker = b"--" + boundary.encode("ascii")
    except UnicodeEncodeError as exc:
        # RFC 2046 boundaries are 7-bit; anything else cannot delimit anything.
        raise _Invalid(Problem.NO_BOUNDARY) from exc
    size = len(body)
    parts: list[bytes] = []
    start: int | None = None
    pos = offset
    while True:
        i = mimebytes.find_delimiter(body, marker, pos, size)
        if i < 0:
            break
        pos = i + 1
        if i > offset and body[i - 1] != 0x0A:
            continue
        j = i + len(marker)
        close = body.startswith(b"--", j)
        if close:
            j += 2
        while j < size and body[j] in (0x20, 0x09):
            j += 1
        if j < size and body[j] == 0x0A:
            end = j + 1
        elif body.startswith(b"\r\n", j):
            end = j + 2
        elif j == size:
            end = j
        else:
            continue
        line_start = i
        if i > offset:
            line_start = i - 2 if i >= offset + 2 and body[i - 2] == 0x0D else i - 1
        if start is not None:
            parts.append(body[start:line_start])
            if len(parts) > MAX_NESTED_PARTS:
                return parts, False, b""
        if close:
            return parts, True, body[end:]
        start = end
        pos = end
    if start is not None:
        parts.append(body[start:])
    return parts, False, b""


def _der_check(data: bytes) -> None:
    """Walk the TLV structure iteratively: reject nesting deeper than MAX_DER_DEPTH or bad lengths.

    Runs before asn1crypto (which recurses) sees the bytes, so hostile nesting fails fast here.
    """
    size = len(data)
    pos = 0
    ends: list[int] = []  # end offset of each open constructed value, -1 for indefinite length
    limits: list[int] = [size]  # the nearest definite end above: no child may pass it
    while True:
        while ends and ends[-1] == pos:
            ends.pop()
            limits.pop()
        if pos >= size:
            break
        if pos + 2 > size:
            raise _Invalid(Problem.ASN1_MALFORMED)
        tag = data[pos]
        if tag == 0 and data[pos + 1] == 0 and ends and ends[-1] == -1:
            pos += 2
            ends.pop()
            limits.pop()
            continue
        pos += 1
        if tag & 0x1F == 0x1F:
            while pos < size and data[pos] & 0x80:
                pos += 1
            pos += 1
            if pos >= size:
                raise _Invalid(Problem.ASN1_MALFORMED)
        first = data[pos]
        pos += 1
        limit = limits[-1]
        if first < 0x80:
            end = pos + first
        elif first == 0x80:
            if not tag & 0x20:
                raise _Invalid(Problem.ASN1_MALFORMED)
            end = -1
        else:
            count = first & 0x7F
            if count > 4 or pos + count > size:
                raise _Invalid(Problem.ASN1_MALFORMED)
            end = pos + count + int.from_bytes(data[pos : pos + count], "big")
            pos += count
        if end > limit:
            raise _Invalid(Problem.ASN1_MALFORMED)
        if tag & 0x20:
            ends.append(end)
            limits.append(limit if end == -1 else end)
            if len(ends) > MAX_DER_DEPTH:
                raise _Invalid(Problem.ASN1_TOO_DEEP)
        else:
            pos = end
    if ends or pos != size:
        raise _Invalid(Problem.ASN1_MALFORMED)


def _canonical(entity: bytes) -> bytes:
    return _BARE_LF.sub(b"\r\n", entity)


def _hash_algorithm(name: str) -> hashes.HashAlgorithm:
    return {
        # SHA-1 digests are what real PEC providers still sign with (SPEC §4.2): verify only.
        "sha1": hashes.SHA1(),  # noqa: S303
        "sha224": hashes.SHA224(),
        "sha256": hashes.SHA256(),
        "sha384": hashes.SHA384(),
        "sha512": hashes.SHA512(),
    }[name]


def _find_signed_part(raw: bytes, depth: int = 0) -> bool:
    """True if a multipart/signed or a detached signature hides inside a multipart (not rfc822)."""
    if depth > 20:
        return False
    headers_block, body = _split_entity(raw)
    headers = _parse_headers(headers_block)
    ctype = headers.get_content_type()
    if ctype == "multipart/signed" or ctype in SIGNATURE_TYPES:
        return True
    if not ctype.startswith("multipart/"):
        return False
    boundary = mimebytes.get_param(headers, "boundary")
    if not isinstance(boundary, str) or not boundary:
        return False
    parts, _, _ = _split_multipart(body, boundary)
    return any(_find_signed_part(part, depth + 1) for part in parts[:MAX_NESTED_PARTS])


def _decode_signature(part: bytes) -> bytes:
    headers_block, body = _split_entity(part)
    headers = _parse_headers(headers_block)
    if headers.get_content_type() not in SIGNATURE_TYPES:
        raise _Invalid(Problem.SIGNATURE_PART_TYPE)
    # base64 costs 4/3: bound the encoded size before decoding anything.
    if len(body) > MAX_SIGNATURE_BYTES * 2:
        raise _Invalid(Problem.SIGNATURE_TOO_LARGE)
    # compat32 hands back a Header object for undecodable bytes: str() it either way.
    encoding = str(headers.get("Content-Transfer-Encoding") or "").strip().lower()
    if encoding == "base64":
        try:
            der = base64.b64decode(body.translate(None, _WSP), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _Invalid(Problem.SIGNATURE_ENCODING) from exc
    elif encoding in ("binary", ""):
        der = body
    else:
        raise _Invalid(Problem.SIGNATURE_ENCODING)
    if len(der) > MAX_SIGNATURE_BYTES:
        raise _Invalid(Problem.SIGNATURE_TOO_LARGE)
    if not der:
        raise _Invalid(Problem.SIGNATURE_ENCODING)
    return der


def _signer_certificate(
    signer: cms.SignerInfo, certificates: list[cms.CertificateChoices]
) -> x509.Certificate:
    sid = signer["sid"]
    for choice in certificates:
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            issuer = sid.chosen["issuer"]
            # Serial, then issuer bytes: the normalising Name comparison is slow and rarely needed.
            match = cert.serial_number == sid.chosen["serial_number"].native and (
                cert.issuer.dump() == issuer.dump() or cert.issuer == issuer
            )
        else:
            match = cert.key_identifier == sid.chosen.native
        if match:
            try:
                return x509.load_der_x509_certificate(cert.dump())
            except ValueError as exc:
                raise _Invalid(Problem.CERTIFICATE_MALFORMED) from exc
    raise _Invalid(Problem.CERTIFICATE_MISSING)


def _check_signature(
    signer: cms.SignerInfo, cert: x509.Certificate, signed_attrs_der: bytes, digest: str
) -> None:
    try:
        public_key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise _Invalid(Problem.CERTIFICATE_MALFORMED) from exc
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise _Invalid(Problem.UNSUPPORTED_SIGNATURE)
    algorithm = signer["signature_algorithm"]
    name = algorithm["algorithm"].native
    signature = signer["signature"].native
    try:
        if name == "rsassa_pss":
            params = algorithm["parameters"]
            pss_hash = params["hash_algorithm"]["algorithm"].native
            if pss_hash != digest:
                raise _Invalid(Problem.UNSUPPORTED_SIGNATURE)
            pad: padding.AsymmetricPadding = padding.PSS(
                mgf=padding.MGF1(
                    _hash_algorithm(params["mask_gen_algorithm"]["parameters"]["algorithm"].native)
                ),
                salt_length=params["salt_length"].native,
            )
        elif name == "rsassa_pkcs1v15" or name == f"{digest}_rsa":
            pad = padding.PKCS1v15()
        else:
            raise _Invalid(Problem.UNSUPPORTED_SIGNATURE)
        public_key.verify(signature, signed_attrs_der, pad, _hash_algorithm(digest))
    except InvalidSignature as exc:
        raise _Invalid(Problem.BAD_SIGNATURE) from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise _Invalid(Problem.UNSUPPORTED_SIGNATURE) from exc


# ------------------------------------------------------------------ the fast, accept-only path
#
# Every message pecmail verifies has the shape its peers and itself emit: one signer named by
# issuer and serial, SHA-x digest, a handful of signed attributes, no eContent, no CRLs, no
# unsigned attributes. _fast_verify_cms reads that shape with plain offset arithmetic and only
# ever *accepts*: anything else, any doubt and any failure (a bad digest, a bad signature)
# returns False and the full asn1crypto path above decides and names the problem. So what is
# accepted here is a subset of what the full path accepts, and every rejection is unchanged.


class _Unusual(Exception):
    """The structure is not the common shape: let the full path decide."""


def _read_tlv(der: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Return (tag, content start, content end) of the DER TLV at ``pos`` (definite, minimal lengths)."""
    if pos + 2 > end:
        raise _Unusual
    tag = der[pos]
    if tag & 0x1F == 0x1F:
        raise _Unusual
    first = der[pos + 1]
    if first < 0x80:
        start = pos + 2
        stop = start + first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + 2 + count > end or der[pos + 2] == 0:
            raise _Unusual
        length = int.from_bytes(der[pos + 2 : pos + 2 + count], "big")
        if length < 0x80:
            raise _Unusual
        start = pos + 2 + count
        stop = start + length
    if stop > end:
        raise _Unusual
    return tag, start, stop


def _read_children(der: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """Return (tag, TLV start, content start, content end) of each TLV filling der[start:end] exactly."""
    children = []
    pos = start
    while pos < end:
        tag, content_start, content_end = _read_tlv(der, pos, end)
        children.append((tag, pos, content_start, content_end))
        pos = content_end
        if len(children) > 16:
            raise _Unusual
    return children


def _algorithm_ids(oids: dict[str, str]) -> dict[bytes, str]:
    """The DER AlgorithmIdentifiers, with NULL parameters and without, of the dotted ``oids``."""
    out = {}
    for dotted, name in oids.items():
        arcs = [int(a) for a in dotted.split(".")]
        body = bytearray((arcs[0] * 40 + arcs[1],))
        for arc in arcs[2:]:
            chunk = [arc & 0x7F]
            arc >>= 7
            while arc:
                chunk.append(0x80 | (arc & 0x7F))
                arc >>= 7
            body += bytes(reversed(chunk))
        oid = _tlv(0x06, bytes(body))
        out[_tlv(0x30, oid)] = name
        out[_tlv(0x30, oid, b"\x05\x00")] = name
    return out


_FAST_DIGESTS = _algorithm_ids(
    {
        "1.3.14.3.2.26": "sha1",
        "2.16.840.1.101.3.4.2.4": "sha224",
        "2.16.840.1.101.3.4.2.1": "sha256",
        "2.16.840.1.101.3.4.2.2": "sha384",
        "2.16.840.1.101.3.4.2.3": "sha512",
    }
)
# PKCS#1 v1.5 only (PSS takes the full path): rsaEncryption, or sha-x-WithRSAEncryption
# matching the digest, as the full path's check requires.
_FAST_SIGNATURES = _algorithm_ids(
    {
        "1.2.840.113549.1.1.1": "rsa",
        "1.2.840.113549.1.1.5": "sha1",
        "1.2.840.113549.1.1.14": "sha224",
        "1.2.840.113549.1.1.11": "sha256",
        "1.2.840.113549.1.1.12": "sha384",
        "1.2.840.113549.1.1.13": "sha512",
    }
)
_OID_CONTENT_TYPE = bytes.fromhex("06092a864886f70d010903")
_OID_SMIME_CAPABILITIES = bytes.fromhex("06092a864886f70d01090f")
_DATA_OID = bytes.fromhex("06092a864886f70d010701")
# smimeCapabilities values known to parse (what pecmail and the PKCS7 builders emit): any
# other value goes to the full path, which parses it.
_KNOWN_CAPABILITIES = frozenset({_ATTR_SMIME_CAPABILITIES[15:]})
_UTC_TIME = re.compile(rb"\d{12}Z\Z")


@dataclass(frozen=True)
class _CertInfo:
    """What verification needs of one certificate, computed once per certificate."""

    der: bytes
    cert: x509.Certificate
    sha1: str
    public_key: object
    issuer_der: bytes
    serial: int
    key_usage_problem: str | None
    not_before: dt.datetime
    not_after: dt.datetime


_cert_cache: dict[bytes, _CertInfo] = {}
_cert_by_id: dict[int, _CertInfo] = {}
_CERT_CACHE_SIZE = 256


def _cert_info(der: bytes) -> _CertInfo:
    """The checked, loaded certificate ``der`` (raises _Unusual for anything the full path might refuse)."""
    info = _cert_cache.get(der)
    if info is not None:
        return info
    from asn1crypto import x509 as asn1_x509

    try:
        _der_check(der)
        # The full path reads serial and issuer with asn1crypto: it must be able to.
        parsed = asn1_x509.Certificate.load(der, strict=True)
        serial = parsed.serial_number
        if serial <= 0:  # RFC 5280 §4.1.2.2: the full path deals with such certificates
            raise _Unusual
        issuer_der = parsed.issuer.dump()
        cert = x509.load_der_x509_certificate(der)
        if serial != cert.serial_number or issuer_der != cert.issuer.public_bytes():
            raise _Unusual
        public_key = cert.public_key()
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            usage_problem = (
                None if (usage.digital_signature or usage.content_commitment) else Problem.KEY_USAGE
            )
        except x509.ExtensionNotFound:
            usage_problem = None
        except ValueError:
            usage_problem = Problem.KEY_USAGE
        info = _CertInfo(
            der=der,
            cert=cert,
            sha1=hashlib.sha1(der, usedforsecurity=False).hexdigest(),
            public_key=public_key,
            issuer_der=issuer_der,
            serial=serial,
            key_usage_problem=usage_problem,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )
    except _Unusual:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever it is, the full path decides
        raise _Unusual from exc
    if len(_cert_cache) >= _CERT_CACHE_SIZE:
        _cert_cache.clear()
        _cert_by_id.clear()
    _cert_cache[der] = info
    # The info holds the certificate object, so its id stays unique while cached.
    _cert_by_id[id(cert)] = info
    return info


def _provider_for(trust: TrustStore, info: _CertInfo) -> TrustedProvider | None:
    """``trust.provider_for_certificate`` with the SHA-1 and DER already at hand."""
    index = getattr(trust, "_by_sha1", None)
    if not isinstance(index, dict):
        return trust.provider_for_certificate(info.cert)
    for candidate_der, provider in index.get(info.sha1, ()):
        # SHA-1 is only the index key: the certificate itself must match byte for byte.
        if candidate_der == info.der:
            return provider
    return None


def _fast_verify_cms(der: bytes, entity: bytes, result: SignatureResult) -> bool:
    """Verify the common shape of a detached SignedData; True only if the full path would accept it."""
    try:
        return _fast_verify(der, entity, result)
    except _Unusual:
        return False
    except Exception:  # noqa: BLE001 - never decide a rejection here
        return False


def _fast_verify(der: bytes, entity: bytes, result: SignatureResult) -> bool:
    tag, start, end = _read_tlv(der, 0, len(der))
    if tag != 0x30 or end != len(der):
        raise _Unusual
    info = _read_children(der, start, end)
    if len(info) != 2 or der[info[0][1] : info[0][3]] != _OID_SIGNED_DATA or info[1][0] != 0xA0:
        raise _Unusual
    wrapper = _read_children(der, info[1][2], info[1][3])
    if len(wrapper) != 1 or wrapper[0][0] != 0x30:
        raise _Unusual
    fields = _read_children(der, wrapper[0][2], wrapper[0][3])
    if len(fields) != 5:  # version, digestAlgorithms, encapContentInfo, [0] certificates, signerInfos
        raise _Unusual
    version, digests, encap, certs, signers = fields
    if der[version[1] : version[3]] not in (b"\x02\x01\x01", b"\x02\x01\x03"):
        raise _Unusual
    if digests[0] != 0x31 or der[encap[1] : encap[3]] != _DATA_CONTENT_INFO:
        raise _Unusual
    declared = set()
    for _, tlv_start, _, tlv_end in _read_children(der, digests[2], digests[3]):
        name = _FAST_DIGESTS.get(der[tlv_start:tlv_end])
        if name is None:
            raise _Unusual
        declared.add(name)
    if certs[0] != 0xA0 or signers[0] != 0x31:
        raise _Unusual
    certificate_tlvs = _read_children(der, certs[2], certs[3])
    if not certificate_tlvs or any(c[0] != 0x30 for c in certificate_tlvs):
        raise _Unusual
    signer_tlvs = _read_children(der, signers[2], signers[3])
    if len(signer_tlvs) != 1 or signer_tlvs[0][0] != 0x30:
        raise _Unusual
    parts = _read_children(der, signer_tlvs[0][2], signer_tlvs[0][3])
    if len(parts) != 6:  # version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature
        raise _Unusual
    s_version, sid, s_digest, attrs, s_algorithm, s_signature = parts
    if der[s_version[1] : s_version[3]] != b"\x02\x01\x01" or sid[0] != 0x30:
        raise _Unusual
    digest = _FAST_DIGESTS.get(der[s_digest[1] : s_digest[3]])
    if digest is None or digest not in declared:
        raise _Unusual
    algorithm = _FAST_SIGNATURES.get(der[s_algorithm[1] : s_algorithm[3]])
    if algorithm not in ("rsa", digest) or attrs[0] != 0xA0 or s_signature[0] != 0x04:
        raise _Unusual
    sid_parts = _read_children(der, sid[2], sid[3])
    if len(sid_parts) != 2 or sid_parts[0][0] != 0x30 or sid_parts[1][0] != 0x02:
        raise _Unusual
    sid_issuer = der[sid_parts[0][1] : sid_parts[0][3]]
    serial_bytes = der[sid_parts[1][2] : sid_parts[1][3]]
    if not serial_bytes or (
        len(serial_bytes) > 1
        and serial_bytes[0] in (0, 0xFF)
        and (serial_bytes[0] ^ serial_bytes[1]) & 0x80 == 0
    ):
        raise _Unusual
    sid_serial = int.from_bytes(serial_bytes, "big", signed=True)
    # The full path takes the first certificate with the sid's serial: it must match bytewise.
    signer_info: _CertInfo | None = None
    cert_ders = []
    for _, tlv_start, _, tlv_end in certificate_tlvs:
        cert_info = _cert_info(der[tlv_start:tlv_end])
        cert_ders.append(cert_info.der)
        if signer_info is None and cert_info.serial == sid_serial:
            if cert_info.issuer_der != sid_issuer:
                raise _Unusual
            signer_info = cert_info
    if signer_info is None:
        raise _Unusual
    # Signed attributes: contentType = data, messageDigest, signingTime (UTCTime),
    # smimeCapabilities (a known value); each once, each with one value.
    seen: set[bytes] = set()
    expected_digest = signing_time = None
    for tag, _, content_start, content_end in _read_children(der, attrs[2], attrs[3]):
        if tag != 0x30:
            raise _Unusual
        pieces = _read_children(der, content_start, content_end)
        if len(pieces) != 2 or pieces[0][0] != 0x06 or pieces[1][0] != 0x31:
            raise _Unusual
        oid = der[pieces[0][1] : pieces[0][3]]
        if oid in seen:
            raise _Unusual
        seen.add(oid)
        values = _read_children(der, pieces[1][2], pieces[1][3])
        if len(values) != 1:
            raise _Unusual
        value_tag, value_start, value_content, value_end = values[0]
        if oid == _OID_CONTENT_TYPE:
            if der[value_start:value_end] != _DATA_OID:
                raise _Unusual
        elif oid == _ATTR_MESSAGE_DIGEST:
            if value_tag != 0x04:
                raise _Unusual
            expected_digest = der[value_content:value_end]
        elif oid == _ATTR_SIGNING_TIME:
            text = der[value_content:value_end]
            if value_tag != 0x17 or not _UTC_TIME.match(text):
                raise _Unusual
            year = int(text[0:2])
            signing_time = dt.datetime(
                (2000 if year < 50 else 1900) + year,
                int(text[2:4]),
                int(text[4:6]),
                int(text[6:8]),
                int(text[8:10]),
                int(text[10:12]),
                tzinfo=dt.UTC,
            )
        elif oid == _OID_SMIME_CAPABILITIES:
            if der[value_start:value_end] not in _KNOWN_CAPABILITIES:
                raise _Unusual
        else:
            raise _Unusual
    if _OID_CONTENT_TYPE not in seen or expected_digest is None:
        raise _Unusual
    if hashlib.new(digest, entity).digest() != expected_digest:
        raise _Unusual  # the full path tries the canonical form and names the mismatch
    public_key = signer_info.public_key
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise _Unusual
    signed_attrs_der = b"\x31" + der[attrs[1] + 1 : attrs[3]]
    try:
        public_key.verify(
            der[s_signature[2] : s_signature[3]],
            signed_attrs_der,
            padding.PKCS1v15(),
            _hash_algorithm(digest),
        )
    except InvalidSignature as exc:
        raise _Unusual from exc
    result.digest_algorithm = digest
    result.signer = signer_info.cert
    result.signer_sha1 = signer_info.sha1
    result.certificate_ders = tuple(cert_ders)
    result.signing_time = signing_time
    return True


def _verify_cms(der: bytes, entity: bytes | None, result: SignatureResult) -> None:
    """Check the SignedData ``der``; fill ``result``; raise _Invalid.

    Detached over ``entity``, or (``entity`` None) attached: the content is the eContent,
    returned in ``result.signed_entity``.
    """
    if entity is not None and _fast_verify_cms(der, entity, result):
        return
    _der_check(der)
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise _Invalid(Problem.NOT_SIGNED_DATA)
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "data":
            raise _Invalid(Problem.ECONTENT_TYPE)
        detached = entity is not None
        if detached and encap["content"].native is not None:
            raise _Invalid(Problem.ECONTENT_PRESENT)
        if entity is None:
            entity = encap["content"].native
            if not isinstance(entity, bytes):
                raise _Invalid(Problem.ECONTENT_MISSING)
            result.signed_entity = entity
        signers = list(signed["signer_infos"])
        if not signers:
            raise _Invalid(Problem.NO_SIGNER)
        if len(signers) > 1:
            raise _Invalid(Problem.MULTIPLE_SIGNERS)
        signer = signers[0]
        # Parse every field outside the certificates now: a malformed unsigned field is still malformed.
        # (asn1crypto's recursive parse without building .native values: a third of the cost.)
        signed["digest_algorithms"]._parse_children(recurse=True)
        signer._parse_children(recurse=True)
        digest = signer["digest_algorithm"]["algorithm"].native
        result.digest_algorithm = digest
        if digest in WEAK_DIGESTS:
            raise _Invalid(Problem.WEAK_DIGEST)
        if digest not in ACCEPTED_DIGESTS:
            raise _Invalid(Problem.UNSUPPORTED_DIGEST)
        if signer["digest_algorithm"]["parameters"].native is not None:
            raise _Invalid(Problem.UNSUPPORTED_DIGEST)
        if digest not in {a["algorithm"].native for a in signed["digest_algorithms"]}:
            raise _Invalid(Problem.DIGEST_NOT_DECLARED)
        expected_version = "v1" if signer["sid"].name == "issuer_and_serial_number" else "v3"
        if signer["version"].native != expected_version or signed["version"].native not in ("v1", "v3"):
            raise _Invalid(Problem.BAD_VERSION)
        certificates = list(signed["certificates"] or [])
        cert = _signer_certificate(signer, certificates)
        result.signer = cert
        result.signer_sha1 = certificate_sha1(cert)
        result.certificate_ders = tuple(c.chosen.dump() for c in certificates if c.name == "certificate")
        attrs = signer["signed_attrs"]
        if not attrs:
            raise _Invalid(Problem.NO_SIGNED_ATTRIBUTES)
        by_type: dict[str, list] = {}
        for attr in attrs:
            by_type.setdefault(attr["type"].dotted, []).append(attr["values"])
        if any(len(v) > 1 for v in by_type.values()):
            raise _Invalid(Problem.DUPLICATE_ATTRIBUTE)
        content_type = by_type.get("1.2.840.113549.1.9.3")
        if not content_type:
            raise _Invalid(Problem.CONTENT_TYPE_MISSING)
        if len(content_type[0]) != 1 or content_type[0][0].native != "data":
            raise _Invalid(Problem.CONTENT_TYPE_MISMATCH)
        message_digest = by_type.get("1.2.840.113549.1.9.4")
        if not message_digest or len(message_digest[0]) != 1:
            raise _Invalid(Problem.DIGEST_MISSING)
        expected = message_digest[0][0].native
        signing_time = by_type.get("1.2.840.113549.1.9.5")
        if signing_time and len(signing_time[0]) == 1:
            result.signing_time = signing_time[0][0].native
        # The digest of the entity as received first; S/MIME signs the CRLF form, which a relay may have lost.
        if hashlib.new(digest, entity).digest() != expected:
            canonical = _canonical(entity) if detached else entity
            if canonical == entity or hashlib.new(digest, canonical).digest() != expected:
                raise _Invalid(Problem.DIGEST_MISMATCH)
            result.canonicalised = True
        # The signature covers the DER of the attributes as a SET OF (tag 0x31), not as [0] IMPLICIT.
        signed_attrs_der = b"\x31" + attrs.dump()[1:]
    except _Invalid:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
        OverflowError,
        RecursionError,
    ) as exc:
        raise _Invalid(Problem.ASN1_MALFORMED) from exc
    _check_signature(signer, cert, signed_attrs_der, digest)


def _check_trust(result: SignatureResult, trust: TrustStore, at: dt.datetime) -> list[str]:
    cert = result.signer
    assert cert is not None
    problems: list[str] = []
    info = _cert_by_id.get(id(cert))
    if info is not None and info.cert is cert:
        # A certificate already checked by the fast path: its facts were computed once.
        result.provider = _provider_for(trust, info)
        not_before, not_after, usage_problem = info.not_before, info.not_after, info.key_usage_problem
    else:
        result.provider = trust.provider_for_certificate(cert)
        not_before, not_after, usage_problem = cert.not_valid_before_utc, cert.not_valid_after_utc, None
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            if not (usage.digital_signature or usage.content_commitment):
                usage_problem = Problem.KEY_USAGE
        except x509.ExtensionNotFound:
            pass
        except ValueError:
            usage_problem = Problem.KEY_USAGE
    if result.provider is None:
        problems.append(Problem.NOT_IN_TRUST_STORE)
    if at < not_before:
        problems.append(Problem.NOT_YET_VALID)
    if at > not_after:
        problems.append(Problem.EXPIRED)
    if usage_problem:
        problems.append(usage_problem)
    if trust.anchors and not _chains_to_anchor(cert, result.certificates, trust.anchors, at):
        problems.append(Problem.NO_CHAIN)
    return problems


def _chains_to_anchor(
    cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: dt.datetime,
) -> bool:
    current = cert
    for _ in range(6):
        for anchor in anchors:
            if anchor == current:
                return True
            if _issued_by(current, anchor, at):
                return True
        issuer = next((c for c in intermediates if c != current and _issued_by(current, c, at)), None)
        if issuer is None:
            return False
        current = issuer
    return False


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> bool:
    if cert.issuer != issuer.subject or not (issuer.not_valid_before_utc <= at <= issuer.not_valid_after_utc):
        return False
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    if not constraints.ca:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def verify(raw: bytes, *, trust: TrustStore, at: dt.datetime | None = None) -> SignatureResult:
    """Check the S/MIME signature of a whole received message, strictly; never raises.

    ``valid``: the top-level entity is a ``multipart/signed`` with exactly the signed part and
    one detached CMS SignedData whose single signer signed, with SHA-1/SHA-2, the bytes of the
    first part as received (or their CRLF canonical form). ``trusted``: valid, the signer
    certificate is listed in ``trust`` and is valid at ``at`` (default: now).
    """
    result = SignatureResult()
    try:
        _verify(raw, trust=trust, at=at or dt.datetime.now(dt.UTC), result=result)
    except _Invalid as exc:
        result.problems.append(exc.problem)
    except Exception:  # noqa: BLE001 — hostile input must never crash the caller
        result.problems.append(Problem.MALFORMED_MIME)
    return result


def _verify(raw: bytes, *, trust: TrustStore, at: dt.datetime, result: SignatureResult) -> None:
    if at.tzinfo is None:
        raise ValueError("at must be an aware datetime")
    # Offsets, not slices: the body may be megabytes and only the signed part needs copying.
    headers_end, body_start = _header_end(raw)
    headers = _parse_headers(raw[:headers_end])
    if len(headers.get_all("Content-Type") or []) > 1:
        result.signed = True
        raise _Invalid(Problem.DUPLICATE_CONTENT_TYPE)
    if headers.get_content_type() != "multipart/signed":
        if _find_signed_part(raw):
            result.signed = True
            raise _Invalid(Problem.NOT_TOP_LEVEL)
        raise _Invalid(Problem.NOT_SIGNED)
    result.signed = True
    protocol = mimebytes.get_param(headers, "protocol")
    protocol = protocol.lower() if isinstance(protocol, str) else ""
    if protocol not in SIGNATURE_TYPES:
        raise _Invalid(Problem.PROTOCOL)
    boundary = mimebytes.get_param(headers, "boundary")
    if not isinstance(boundary, str) or not boundary:
        raise _Invalid(Problem.NO_BOUNDARY)
    parts, closed, epilogue = _split_multipart(raw, boundary, body_start)
    if not closed:
        raise _Invalid(Problem.UNCLOSED)
    if len(parts) != 2:
        raise _Invalid(Problem.PART_COUNT)
    if epilogue.strip():
        raise _Invalid(Problem.TRAILING_DATA)
    entity, signature_part = parts
    result.signed_entity = entity
    der = _decode_signature(signature_part)
    _verify_cms(der, entity, result)
    result.valid = True
    problems = _check_trust(result, trust, at)
    result.problems.extend(problems)
    result.trusted = not problems


# --------------------------------------------------------------------------------------------
# Attached signatures (.p7m): the signed LDIF of the providers index (SPEC §8)
# --------------------------------------------------------------------------------------------


def sign_attached(content: bytes, identity: ProviderIdentity) -> bytes:
    """Return a DER CMS SignedData that carries ``content`` itself (a ``.p7m``), SHA-256, certificate included."""
    builder = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(identity.cert, identity.key, hashes.SHA256())
    )
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])


def verify_attached(data: bytes, *, trust: TrustStore, at: dt.datetime | None = None) -> SignatureResult:
    """Check a ``.p7m`` (DER, or PEM ``PKCS7``/``CMS``); the content is ``signed_entity``. Never raises.

    ``trusted`` as for ``verify``: the signer must be listed in ``trust`` (or chain to one of its
    anchors when the store has anchors) and be valid at ``at``.
    """
    result = SignatureResult(signed=True)
    try:
        der = data
        if data.lstrip().startswith(b"-----BEGIN"):
            body = re.search(rb"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END", data, re.S)
            if body is None:
                raise _Invalid(Problem.SIGNATURE_ENCODING)
            der = base64.b64decode(body.group(1).translate(None, _WSP), validate=True)
        if len(der) > MAX_ATTACHED_BYTES:
            raise _Invalid(Problem.SIGNATURE_TOO_LARGE)
        _verify_cms(der, None, result)
        result.valid = True
        problems = _check_trust(result, trust, at or dt.datetime.now(dt.UTC))
        result.problems.extend(problems)
        result.trusted = not problems
    except _Invalid as exc:
        result.problems.append(exc.problem)
        result.signed_entity = None
    except Exception:  # noqa: BLE001 — hostile input must never crash the caller
        result.problems.append(Problem.ASN1_MALFORMED)
        result.signed_entity = None
    return result
