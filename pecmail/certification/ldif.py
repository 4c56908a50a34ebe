"""LDIF (RFC 2849) for the providers index (SPEC §8): a small strict reader and writer.

Pure code, no ORM. Only what the Indice dei gestori uses: content records (no change
records), ``::`` base64 values, line folding with one leading space, ``#`` comments.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pecmail.certification.trust import TrustedProvider, TrustStore, certificate_sha1, normalise_domain

MAX_LDIF_BYTES = 64 * 1024 * 1024
LINE_WIDTH = 76
# RFC 2849 SAFE-STRING: no NUL/CR/LF, not starting with space, ':' or '<', ASCII only.
_SAFE_STRING = re.compile(
    r"^(?:[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*)?$"
)
_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(?:;[A-Za-z0-9-]+)*$")
BINARY_ATTRIBUTES = frozenset({"providercertificate;binary", "providercertificate"})


class LdifError(ValueError):
    """The LDIF text is malformed."""


@dataclass
class LdifEntry:
    dn: str
    attributes: dict[str, list[str | bytes]] = field(default_factory=dict)

    def add(self, name: str, value: str | bytes) -> None:
        self.attributes.setdefault(name, []).append(value)

    def values(self, name: str) -> list[str | bytes]:
        """All values of an attribute, matching its name case-insensitively (options included)."""
        wanted = name.lower()
        return [v for key, vs in self.attributes.items() if key.lower() == wanted for v in vs]

    def text(self, name: str) -> list[str]:
        return [v.decode("utf-8") if isinstance(v, bytes) else v for v in self.values(name)]

    def first(self, name: str, default: str = "") -> str:
        values = self.text(name)
        return values[0] if values else default


def _unfold(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if line.startswith(" "):
            if not lines or not lines[-1][1]:
                raise LdifError(f"line {number}: continuation line without a preceding line")
            lines[-1] = (lines[-1][0], lines[-1][1] + line[1:])
        else:
            lines.append((number, line))
    return lines


def parse(text: str | bytes) -> list[LdifEntry]:
    """Return the records of an LDIF document; raise LdifError when it is malformed."""
    if isinstance(text, bytes):
        if len(text) > MAX_LDIF_BYTES:
            raise LdifError("LDIF too large")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LdifError("LDIF is not UTF-8") from exc
    if len(text) > MAX_LDIF_BYTES:
        raise LdifError("LDIF too large")
    entries: list[LdifEntry] = []
    current: LdifEntry | None = None
    for number, line in _unfold(text):
        if line.startswith("#"):
            continue
        if not line.strip():
            current = None
            continue
        name, sep, rest = line.partition(":")
        if not sep or not _ATTRIBUTE.match(name):
            raise LdifError(f"line {number}: not an attribute line")
        value: str | bytes
        if rest.startswith(":"):
            try:
                value = base64.b64decode(rest[1:].strip(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise LdifError(f"line {number}: bad base64 value") from exc
        elif rest.startswith("<"):
            raise LdifError(f"line {number}: URL values are not accepted")
        else:
            value = rest.lstrip(" ")
        if current is None:
            if name.lower() == "version":
                continue
            if name.lower() != "dn":
                raise LdifError(f"line {number}: a record must start with dn:")
            dn = value.decode("utf-8") if isinstance(value, bytes) else value
            current = LdifEntry(dn=dn)
            entries.append(current)
            continue
        if name.lower() in ("changetype", "dn"):
            raise LdifError(f"line {number}: change records are not supported")
        # Text attributes are UTF-8; only the certificate stays as bytes.
        if isinstance(value, bytes) and name.lower() not in BINARY_ATTRIBUTES:
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise LdifError(f"line {number}: {name} is not UTF-8") from exc
        current.add(name, value)
    return entries


def _fold(line: str) -> str:
    if len(line) <= LINE_WIDTH:
        return line
    chunks = [line[:LINE_WIDTH]]
    rest = line[LINE_WIDTH:]
    while rest:
        chunks.append(" " + rest[: LINE_WIDTH - 1])
        rest = rest[LINE_WIDTH - 1 :]
    return "\n".join(chunks)


def _line(name: str, value: str | bytes) -> str:
    if isinstance(value, bytes) or not _SAFE_STRING.match(value) or value.endswith(" "):
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        return _fold(f"{name}:: {base64.b64encode(raw).decode('ascii')}")
    return _fold(f"{name}: {value}")


def write(entries: Iterable[LdifEntry]) -> str:
    """Return an LDIF document (version 1, LF line ends, folded at 76 columns)."""
    blocks = ["version: 1"]
    for entry in entries:
        lines = [_line("dn", entry.dn)]
        for name, values in entry.attributes.items():
            lines.extend(_line(name, value) for value in values)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


# --------------------------------------------------------------------------------------------
# Provider records (SPEC §8 schema)
# --------------------------------------------------------------------------------------------

BASE_DN = "o=postacert"


def _escape_dn_value(value: str) -> str:
    escaped = re.sub(r'([,+"\\<>;=])', r"\\\1", value)
    if escaped.startswith((" ", "#")):
        escaped = "\\" + escaped
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return escaped


@dataclass
class ProviderRecord:
    name: str
    mail_receipt: str
    domains: list[str]
    certificates: list[x509.Certificate]
    unit: str = ""
    description: str = ""
    ldif_location_url: str = ""

    def to_trusted(self) -> TrustedProvider:
        return TrustedProvider(
            name=self.name,
            mail_receipt=self.mail_receipt,
            domains=frozenset(self.domains),
            certificates=tuple(self.certificates),
            unit=self.unit,
        )

    def to_entry(self) -> LdifEntry:
        dn = f"providerName={_escape_dn_value(self.name)},{BASE_DN}"
        if self.unit:
            dn = f"providerUnit={_escape_dn_value(self.unit)},{dn}"
        entry = LdifEntry(dn=dn)
        entry.add("objectClass", "top")
        entry.add("objectClass", "provider")
        entry.add("providerName", self.name)
        if self.unit:
            entry.add("providerUnit", self.unit)
        for cert in self.certificates:
            entry.add("providerCertificateHash", certificate_sha1(cert).upper())
        for cert in self.certificates:
            entry.add("providerCertificate;binary", cert.public_bytes(serialization.Encoding.DER))
        entry.add("mailReceipt", self.mail_receipt)
        for domain in self.domains:
            entry.add("managedDomains", domain)
        if self.description:
            entry.add("description", self.description)
        if self.ldif_location_url:
            entry.add("LDIFLocationURL", self.ldif_location_url)
        return entry


def is_provider_entry(entry: LdifEntry) -> bool:
    return any(v.lower() == "provider" for v in entry.text("objectClass"))


def provider_record(entry: LdifEntry) -> ProviderRecord:
    """Return the provider of one LDIF entry; raise LdifError when it breaks the schema."""
    names = entry.text("providerName")
    if len(names) != 1 or not names[0].strip():
        raise LdifError(f"{entry.dn}: providerName must have exactly one value")
    receipts = entry.text("mailReceipt")
    if len(receipts) != 1 or "@" not in receipts[0]:
        raise LdifError(f"{entry.dn}: mailReceipt must have exactly one address")
    domains = [normalise_domain(d) for d in entry.text("managedDomains") if d.strip()]
    if not domains:
        raise LdifError(f"{entry.dn}: managedDomains is required")
    raw_certs = entry.values("providerCertificate;binary") + entry.values("providerCertificate")
    if not raw_certs:
        raise LdifError(f"{entry.dn}: providerCertificate is required")
    certificates = []
    for raw in raw_certs:
        if not isinstance(raw, bytes):
            raise LdifError(f"{entry.dn}: providerCertificate must be a base64 (::) value")
        try:
            certificates.append(x509.load_der_x509_certificate(raw))
        except ValueError as exc:
            raise LdifError(f"{entry.dn}: providerCertificate is not a DER certificate") from exc
    hashes = {h.strip().lower().replace(":", "") for h in entry.text("providerCertificateHash")}
    actual = {certificate_sha1(c) for c in certificates}
    if hashes != actual:
        raise LdifError(f"{entry.dn}: providerCertificateHash does not match the certificates")
    return ProviderRecord(
        name=names[0].strip(),
        unit=entry.first("providerUnit").strip(),
        mail_receipt=receipts[0].strip().lower(),
        domains=list(dict.fromkeys(domains)),
        certificates=certificates,
        description=entry.first("description"),
        ldif_location_url=entry.first("LDIFLocationURL"),
    )


def trust_store_from_ldif(text: str | bytes) -> TrustStore:
    """Return a TrustStore of every provider entry in an LDIF document (strict: any bad entry raises)."""
    return TrustStore(provider_record(e).to_trusted() for e in parse(text) if is_provider_entry(e))
