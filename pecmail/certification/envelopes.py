"""The PEC system messages of SPEC §1.1, built to the header and signed (pure: no ORM).

Each ``build_*`` function takes a :class:`Transaction` (the certification data of one original
message plus the one timestamp of the event being certified) and the provider identity, and
returns a :class:`BuiltMessage` whose ``raw`` bytes are the final signed message: CRLF line
ends, a ``multipart/signed`` made by ``smime.sign`` + ``smime.assemble_signed_message`` (the
two steps of ``smime.build_signed_message``, minus its whole-entity regex scan: the entity is
proved CRLF-canonical here as it is built) over a ``multipart/mixed`` entity {text (plain +
html alternative), daticert.xml, [postacert.eml]}. The signed bytes are never re-serialised.

Text parts are ISO-8859-1 quoted-printable as the rules require; when a subject or address
cannot be written in Latin-1 the text parts are UTF-8 instead (documented deviation, SPEC
§4.1: the only lossless choice).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import itertools
import re
import secrets
from dataclasses import dataclass, field
from email.header import Header, decode_header, make_header
from email.utils import format_datetime, formataddr, getaddresses

from pecmail.certification import breve, daticert, mimebytes, smime, texts
from pecmail.certification.daticert import ROME, Daticert, Recipient
from pecmail.certification.pki import ProviderIdentity

CRLF = b"\r\n"

SUBJECT_PREFIX = {
    "accettazione": "ACCETTAZIONE",
    "non-accettazione": "AVVISO DI NON ACCETTAZIONE",
    "non-accettazione-virus": "AVVISO DI NON ACCETTAZIONE PER VIRUS",
    "posta-certificata": "POSTA CERTIFICATA",
    "presa-in-carico": "PRESA IN CARICO",
    "avvenuta-consegna": "CONSEGNA",
    "anomalia": "ANOMALIA MESSAGGIO",
    "rilevazione-virus": "PROBLEMA DI SICUREZZA",
    "errore-consegna": "AVVISO DI MANCATA CONSEGNA",
    "errore-consegna-virus": "AVVISO DI MANCATA CONSEGNA PER VIRUS",
    "preavviso-errore-consegna": "AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO",
}
RECEIPT_TYPES = ("completa", "breve", "sintetica")
DELIVERY_ERRORS = ("no-dest", "no-dominio", "altro")
# Headers of the original copied unaltered onto the transport envelope (SPEC §3.3).
ENVELOPE_INHERITED = ("return-path", "received", "to", "cc")
# …and onto the anomaly envelope, which also keeps the Message-ID (SPEC §3.6).
ANOMALY_INHERITED = ("return-path", "received", "to", "cc", "message-id")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_BARE_CR = re.compile(rb"\r(?!\n)")
_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass
class Transaction:
    """The certification data of one original message and the time of the event certified.

    ``when`` is the single timestamp of the transaction: the Date header, the body text and
    daticert.xml all show it. ``recipient_types`` maps lower-case addresses to ``certificato``
    or ``esterno`` (missing ones are ``certificato``). ``client_msgid`` keeps its angle
    brackets; ``pec_id`` has none.
    """

    sender: str
    to: list[str]
    when: dt.datetime
    pec_id: str
    cc: list[str] = field(default_factory=list)
    recipient_types: dict[str, str] = field(default_factory=dict)
    subject: str = ""
    reply_to: str = ""
    client_msgid: str = ""
    receipt_type: str = "completa"

    def __post_init__(self) -> None:
        if self.when.tzinfo is None:
            raise ValueError("Transaction.when must be timezone-aware")
        if self.receipt_type not in RECEIPT_TYPES:
            raise ValueError(f"unknown receipt type {self.receipt_type!r}")
        self.when = self.when.replace(microsecond=0)

    def at(self, when: dt.datetime) -> Transaction:
        """The same message certified by another event (a delivery, a timeout…) at ``when``."""
        return dataclasses.replace(self, when=when)

    @property
    def recipients(self) -> list[Recipient]:
        seen: set[str] = set()
        out: list[Recipient] = []
        for address in [*self.to, *self.cc]:
            key = address.lower()
            if key in seen:
                continue
            seen.add(key)
            out.append(Recipient(address=address, tipo=self.recipient_types.get(key, "certificato")))
        return out

    @property
    def risposte(self) -> str:
        return self.reply_to or self.sender

    @classmethod
    def from_daticert(
        cls,
        d: Daticert,
        *,
        to: list[str] | None = None,
        cc: list[str] | None = None,
        when: dt.datetime | None = None,
    ) -> Transaction:
        """Rebuild the transaction from a received envelope's daticert (the receiving side).

        daticert does not say which recipients were To and which Cc: pass them from the
        envelope headers when they matter (receipt type), else all count as To.
        """
        addresses = [r.address for r in d.destinatari]
        if to is None:
            to, cc = addresses, []
        return cls(
            sender=d.mittente,
            to=list(to),
            cc=list(cc or []),
            recipient_types={r.address.lower(): r.tipo for r in d.destinatari},
            subject=d.oggetto or "",
            reply_to="" if d.risposte == d.mittente else d.risposte,
            client_msgid=d.msgid,
            pec_id=d.identificativo,
            when=when or d.data,
            receipt_type=d.ricevuta if d.ricevuta in RECEIPT_TYPES else "completa",
        )

    @classmethod
    def from_message(
        cls, raw: bytes, *, pec_id: str, when: dt.datetime, recipient_types: dict[str, str] | None = None
    ) -> Transaction:
        """Read sender, recipients, subject, Reply-To, Message-ID and X-TipoRicevuta of ``raw``."""
        root = mimebytes.parse(raw, 0, mimebytes.header_end(raw))
        headers = root.headers
        sender = _first_address(headers.get_all("From") or [])
        requested = (headers.get("X-TipoRicevuta") or "completa").strip().lower()
        return cls(
            sender=sender,
            to=_addresses(headers.get_all("To") or []),
            cc=_addresses(headers.get_all("Cc") or []),
            recipient_types={k.lower(): v for k, v in (recipient_types or {}).items()},
            subject=decode_subject(headers.get("Subject")),
            reply_to=", ".join(_addresses(headers.get_all("Reply-To") or [])),
            client_msgid=_msgid(headers.get("Message-ID")),
            pec_id=pec_id,
            when=when,
            receipt_type=requested if requested in RECEIPT_TYPES else "completa",
        )


@dataclass
class BuiltMessage:
    """A signed system message. ``message_id`` is its own Message-ID without angle brackets."""

    raw: bytes
    message_id: str
    kind: str
    daticert: Daticert | None


# ---------------------------------------------------------------- helpers


def _addresses(values: list[str]) -> list[str]:
    return [address for _name, address in getaddresses([_unescape(v) for v in values]) if address]


def _first_address(values: list[str]) -> str:
    found = _addresses(values)
    return found[0] if found else ""


def _msgid(value: object) -> str:
    if value is None:
        return ""
    match = _MSGID.search(str(value))
    return match.group(0) if match else ""


def _unescape(value: object) -> str:
    """Return a header value as text, raw 8-bit bytes read as UTF-8 (else Latin-1)."""
    if isinstance(value, Header):
        # compat32 wraps raw 8-bit header bytes in an unknown-8bit Header.
        out = []
        for chunk, charset in decode_header(value):
            if isinstance(chunk, str):
                out.append(chunk)
                continue
            try:
                out.append(chunk.decode(charset if charset and charset != "unknown-8bit" else "utf-8"))
            except (UnicodeDecodeError, LookupError):
                out.append(chunk.decode("latin-1"))
        return "".join(out)
    text = str(value)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_subject(value: object) -> str:
    """Return the decoded (RFC 2047) subject on one line; '' when absent."""
    if value is None:
        return ""
    text = _unescape(value)
    # A broken encoded-word is shown as written rather than dropped.
    with contextlib.suppress(Exception):
        text = str(make_header(decode_header(text)))
    return " ".join(text.split())


def new_pec_id(domain: str, when: dt.datetime) -> str:
    """Return a new, unique PEC identifier: ``pecmail.<YYYYMMDDhhmmss>.<128-bit hex>@<domain>``."""
    stamp = when.astimezone(ROME).strftime("%Y%m%d%H%M%S")
    return f"pecmail.{stamp}.{secrets.token_hex(16)}@{domain.lower()}"


def receipt_type_for(recipient: str, envelope_to: list[str], envelope_cc: list[str], requested: str) -> str:
    """Return the delivery receipt kind for one recipient (SPEC §2.4 table).

    To → the requested kind (completa or breve); Cc → sintetica; sintetica requested →
    sintetica for everyone; a recipient in both or neither list is ambiguous → completa.
    """
    requested = (requested or "completa").strip().lower()
    if requested not in RECEIPT_TYPES:
        requested = "completa"
    key = recipient.lower()
    in_to = key in {a.lower() for a in envelope_to}
    in_cc = key in {a.lower() for a in envelope_cc}
    if requested == "sintetica":
        return "sintetica"
    if in_to and not in_cc:
        return requested
    if in_cc and not in_to:
        return "sintetica"
    return "completa"


def _subject(kind: str, subject: str) -> str:
    prefix = SUBJECT_PREFIX[kind] + ": "
    subject = " ".join(subject.split())
    try:
        (prefix + subject).encode("ascii")
        if len(prefix + subject) < 900:
            return prefix + subject
    except UnicodeEncodeError:
        pass
    header = Header(prefix, "us-ascii", header_name="Subject")
    header.append(subject, "utf-8")
    return header.encode(linesep="\r\n")


def _is_canonical(data: bytes) -> bool:
    """True when every CR is followed by LF and every LF preceded by CR.

    Exactly the texts that are the CRLF image of a CR-free text; two C-speed passes
    (faster than counting CRLF pairs or any regex on a 1 MiB original).
    """
    return data.translate(None, b"\r").replace(b"\n", b"\r\n") == data


def _crlf(data: bytes) -> bytes:
    """Return ``data`` with CRLF line ends (the S/MIME canonical form), unchanged if already so."""
    if b"\r" not in data:
        return data.replace(b"\n", b"\r\n")
    # Counting is a fast scan in C: skip the regexes when every line end is already CRLF.
    if _is_canonical(data):
        return data
    data = _BARE_LF.sub(b"\r\n", data)
    return _BARE_CR.sub(b"\r\n", data)


# Boundaries need only be absent from the content (checked below), not secret: a per-process
# random prefix and a counter avoid a system call per part.
_BOUNDARY_PREFIX = f"----=_pecmail_{secrets.token_hex(8)}_"
_boundary_counter = itertools.count()


def _boundary(*contents: bytes) -> str:
    while True:
        boundary = f"{_BOUNDARY_PREFIX}{next(_boundary_counter)}"
        encoded = boundary.encode("ascii")
        if not any(encoded in content for content in contents):
            return boundary


def _text_leaf(subtype: str, text: str) -> bytes:
    try:
        data, charset = text.encode("iso-8859-1"), "iso-8859-1"
    except UnicodeEncodeError:
        # Documented deviation: Latin-1 cannot carry this text, UTF-8 can.
        data, charset = text.encode("utf-8"), "utf-8"
    encoded = binascii.b2a_qp(_crlf(data), istext=True)
    if not encoded.endswith(CRLF):
        encoded += CRLF
    return (
        f'Content-Type: text/{subtype}; charset="{charset}"\r\n'
        "Content-Disposition: inline\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii") + encoded


def _multipart(subtype: str, parts: list[bytes], extra: bytes = b"") -> bytes:
    boundary = _boundary(*parts)
    delimiter = b"--" + boundary.encode("ascii") + CRLF
    # One join: a part may be the 1 MiB original, which must not be copied once per "+".
    chunks = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n'.encode("ascii"), extra, CRLF]
    for part in parts:
        chunks += (delimiter, part, CRLF)
    chunks.append(b"--" + boundary.encode("ascii") + b"--" + CRLF)
    return b"".join(chunks)


def _daticert_part(xml: bytes) -> bytes:
    encoded = base64.encodebytes(xml).replace(b"\n", CRLF)
    return (
        b'Content-Type: application/xml; name="daticert.xml"\r\n'
        b'Content-Disposition: inline; filename="daticert.xml"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded
    )


def _postacert_part(message: bytes) -> bytes:
    if message.isascii():
        cte = b"7bit"
    else:
        cte = b"8bit" if all(len(line) <= 998 for line in message.split(CRLF)) else b"binary"
    # Join without an intermediate copy of the (possibly large) message.
    return b"".join(
        (
            b'Content-Type: message/rfc822; name="postacert.eml"\r\n'
            b'Content-Disposition: inline; filename="postacert.eml"\r\n'
            b"Content-Transfer-Encoding: ",
            cte,
            b"\r\n\r\n",
            message,
        )
    )


def _entity(body: texts.Body, xml: bytes | None, postacert: bytes | None) -> bytes:
    """The signed multipart/mixed; ``postacert`` must already be CRLF-canonical (see _crlf)."""
    alternative = _multipart("alternative", [_text_leaf("plain", body.plain), _text_leaf("html", body.html)])
    parts = [alternative]
    if xml is not None:
        parts.append(_daticert_part(xml))
    if not _is_canonical(b"".join(parts)):
        raise ValueError("the generated parts must use CRLF line ends only")
    if postacert is not None:
        parts.append(_postacert_part(postacert))
    return _multipart("mixed", parts)


def _facts(tx: Transaction, *, destinatario: str = "", errore: str = "") -> texts.Facts:
    giorno, ora, zona = daticert.local_parts(tx.when)
    return texts.Facts(
        giorno=giorno,
        ora=ora,
        zona=zona,
        oggetto=tx.subject,
        mittente=tx.sender,
        identificativo=tx.pec_id,
        destinatari=[(r.address, r.tipo) for r in tx.recipients],
        destinatario=destinatario,
        errore=errore,
    )


def _daticert(tx: Transaction, identity: ProviderIdentity, tipo: str, **extra: object) -> Daticert:
    return Daticert(
        tipo=tipo,
        mittente=tx.sender,
        destinatari=tx.recipients,
        risposte=tx.risposte,
        oggetto=tx.subject,
        gestore_emittente=identity.name,
        data=tx.when,
        identificativo=tx.pec_id,
        msgid=tx.client_msgid,
        **extra,  # type: ignore[arg-type]
    )


def _ascii_value(name: str, value: str) -> str:
    """Return a header value safe for 7-bit transport (re-encoding raw UTF-8 headers)."""
    try:
        value.encode("ascii")
        return value
    except UnicodeEncodeError:
        pass
    if name.lower() in ("to", "cc", "from", "reply-to", "sender"):
        return ", ".join(formataddr((n, a), charset="utf-8") for n, a in getaddresses([value]))
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def _strip_blank_line(head: bytes) -> bytes:
    """The header block without the empty line that ends it."""
    if head.endswith(b"\r\n\r\n"):
        return head[:-2]
    if head.endswith(b"\n\n"):
        return head[:-1]
    if head in (b"\r\n", b"\n"):
        return b""
    return head


def _inherited(raw: bytes, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """Return the original's header fields named in ``names``, in their order, values as sent."""
    head = raw[: mimebytes.header_end(raw)]
    out: list[tuple[str, str]] = []
    for key, field_bytes in breve.header_fields(head):
        if key not in names:
            continue
        text = field_bytes.decode("utf-8", "replace")
        name, _, value = text.partition(":")
        value = value.strip("\r\n").lstrip(" \t")
        value = "\r\n".join(line.rstrip("\r") for line in value.split("\n"))
        out.append((name.strip(), _ascii_value(name.strip(), value)))
    return out


def _sign(
    kind: str,
    headers: list[tuple[str, str]],
    entity: bytes,
    identity: ProviderIdentity,
    message_id: str,
    d: Daticert | None,
) -> BuiltMessage:
    # _entity proved the entity CRLF-canonical part by part (the large postacert once, by
    # _crlf); build_signed_message would scan it all again with a regex (~9 ms per MiB), so
    # its two steps, sign and assemble, run here on the exact same bytes.
    raw = smime.assemble_signed_message(headers, entity, smime.sign(entity, identity))
    return BuiltMessage(raw=raw, message_id=message_id, kind=kind, daticert=d)


def _notice(
    *,
    tx: Transaction,
    identity: ProviderIdentity,
    kind: str,
    x_ricevuta: str,
    text_kind: str,
    d: Daticert,
    to: str | None = None,
    extra_headers: tuple[tuple[str, str], ...] = (),
    postacert: bytes | None = None,
    destinatario: str = "",
    errore: str = "",
) -> BuiltMessage:
    """A receipt or notice from ``posta-certificata@<domain>`` to the sender (or ``to``)."""
    message_id = new_pec_id(identity.domain, tx.when)
    headers = [
        ("Date", format_datetime(tx.when.astimezone(ROME))),
        ("Subject", _subject(kind, tx.subject)),
        ("From", identity.service_address),
        ("To", _ascii_value("To", to or tx.sender)),
        ("Message-ID", f"<{message_id}>"),
        ("X-Ricevuta", x_ricevuta),
        *extra_headers,
    ]
    if tx.client_msgid:
        headers.append(("X-Riferimento-Message-ID", tx.client_msgid))
    body = texts.render(text_kind, _facts(tx, destinatario=destinatario, errore=errore))
    entity = _entity(body, daticert.build(d), postacert)
    return _sign(kind, headers, entity, identity, message_id, d)


# ---------------------------------------------------------------- the builders


def build_acceptance(tx: Transaction, *, identity: ProviderIdentity) -> BuiltMessage:
    """Ricevuta di accettazione (SPEC §3.2): one per message, every recipient labelled."""
    d = _daticert(tx, identity, "accettazione")
    return _notice(
        tx=tx,
        identity=identity,
        kind="accettazione",
        x_ricevuta="accettazione",
        text_kind="accettazione",
        d=d,
    )


def build_non_acceptance(
    tx: Transaction, *, identity: ProviderIdentity, reason: str, virus: bool = False
) -> BuiltMessage:
    """Avviso di non accettazione (SPEC §3.1): formal error, or virus with X-VerificaSicurezza."""
    d = _daticert(
        tx, identity, "non-accettazione", errore="virus" if virus else "altro", errore_esteso=reason
    )
    return _notice(
        tx=tx,
        identity=identity,
        kind="non-accettazione-virus" if virus else "non-accettazione",
        x_ricevuta="non-accettazione",
        text_kind="non-accettazione-virus" if virus else "non-accettazione",
        d=d,
        extra_headers=(("X-VerificaSicurezza", "errore"),) if virus else (),
        errore=reason,
    )


def rewrite_original(original: bytes, *, pec_id: str, client_msgid: str) -> bytes:
    """Return the original with ``Message-ID: <pec_id>`` and ``X-Riferimento-Message-ID`` added.

    Only header lines are edited: every previous Message-ID / X-Riferimento-Message-ID field
    is dropped and the two new fields close the header block; the body bytes are untouched
    (apart from CRLF canonicalisation, which S/MIME requires).
    """
    original = _crlf(original)
    body_start = mimebytes.header_end(original)
    head = _strip_blank_line(original[:body_start])
    kept = [
        raw for key, raw in breve.header_fields(head) if key not in ("message-id", "x-riferimento-message-id")
    ]
    new_head = b"".join(kept)
    if new_head and not new_head.endswith(CRLF):
        new_head += CRLF
    new_head += f"Message-ID: <{pec_id}>\r\n".encode("ascii")
    if client_msgid:
        new_head += f"X-Riferimento-Message-ID: {_ascii_value('X', client_msgid)}\r\n".encode("ascii")
    return b"".join((new_head, CRLF, memoryview(original)[body_start:]))


def build_transport_envelope(tx: Transaction, original: bytes, *, identity: ProviderIdentity) -> BuiltMessage:
    """Busta di trasporto (SPEC §3.3): the rewritten original as postacert.eml plus daticert.

    The envelope's own Message-ID is the PEC id (``tx.pec_id``); ``BuiltMessage.message_id``
    is that id.
    """
    postacert = rewrite_original(original, pec_id=tx.pec_id, client_msgid=tx.client_msgid)
    inherited = _inherited(original, ENVELOPE_INHERITED)
    reply_to = _inherited(original, ("reply-to",))
    headers = [h for h in inherited if h[0].lower() in ("return-path", "received")]
    headers += [
        ("X-Trasporto", "posta-certificata"),
        ("Date", format_datetime(tx.when.astimezone(ROME))),
        ("Subject", _subject("posta-certificata", tx.subject)),
        ("From", _ascii_value("From", formataddr((f"Per conto di: {tx.sender}", identity.service_address)))),
    ]
    headers += [h for h in inherited if h[0].lower() in ("to", "cc")]
    if not any(h[0].lower() == "to" for h in headers):
        headers.append(("To", _ascii_value("To", ", ".join(tx.to))))
    headers += reply_to or [("Reply-To", _ascii_value("Reply-To", tx.sender))]
    headers.append(("Message-ID", f"<{tx.pec_id}>"))
    if tx.client_msgid:
        headers.append(("X-Riferimento-Message-ID", tx.client_msgid))
    headers.append(("X-TipoRicevuta", tx.receipt_type))
    d = _daticert(tx, identity, "posta-certificata", ricevuta=tx.receipt_type)
    body = texts.render("posta-certificata", _facts(tx))
    entity = _entity(body, daticert.build(d), postacert)
    return _sign("posta-certificata", headers, entity, identity, tx.pec_id, d)


def build_take_charge(
    tx: Transaction, recipients: list[str], *, identity: ProviderIdentity, to: str
) -> BuiltMessage:
    """Ricevuta di presa in carico (SPEC §3.5) to the sender provider's service mailbox ``to``."""
    d = _daticert(tx, identity, "presa-in-carico", ricezione=list(recipients))
    return _notice(
        tx=tx,
        identity=identity,
        kind="presa-in-carico",
        x_ricevuta="presa-in-carico",
        text_kind="presa-in-carico",
        d=d,
        to=to,
    )


def build_delivery_receipt(
    tx: Transaction, recipient: str, receipt_type: str, original: bytes | None, *, identity: ProviderIdentity
) -> BuiltMessage:
    """Ricevuta di avvenuta consegna (SPEC §3.9) for one recipient.

    ``original`` is the postacert.eml of the delivered envelope (unused for sintetica):
    completa carries it whole, breve carries its brief copy (see ``breve``).
    """
    if receipt_type not in RECEIPT_TYPES:
        raise ValueError(f"unknown receipt type {receipt_type!r}")
    postacert: bytes | None = None
    if receipt_type != "sintetica":
        if original is None:
            raise ValueError(f"a {receipt_type} receipt carries the original message")
        postacert = _crlf(original)
        if receipt_type == "breve":
            postacert = breve.brief_copy(postacert)
    d = _daticert(tx, identity, "avvenuta-consegna", ricevuta=receipt_type, consegna=recipient)
    return _notice(
        tx=tx,
        identity=identity,
        kind="avvenuta-consegna",
        x_ricevuta="avvenuta-consegna",
        text_kind=f"avvenuta-consegna-{receipt_type}",
        d=d,
        postacert=postacert,
        destinatario=recipient,
    )


def build_delivery_error(
    tx: Transaction, recipient: str, errore: str, reason: str, *, identity: ProviderIdentity
) -> BuiltMessage:
    """Avviso di mancata consegna (SPEC §3.10); ``errore`` is no-dest, no-dominio or altro."""
    if errore not in DELIVERY_ERRORS:
        raise ValueError(f"unknown delivery error {errore!r}")
    d = _daticert(tx, identity, "errore-consegna", errore=errore, consegna=recipient, errore_esteso=reason)
    return _notice(
        tx=tx,
        identity=identity,
        kind="errore-consegna",
        x_ricevuta="errore-consegna",
        text_kind="errore-consegna",
        d=d,
        destinatario=recipient,
        errore=reason,
    )


TIMEOUT_TEXT = {
    12: ("4.4.7", "il messaggio non è stato consegnato nelle prime dodici ore dal suo invio"),
    24: ("5.4.1", "il messaggio non è stato consegnato nelle prime ventiquattro ore dal suo invio"),
}


def build_timeout_notice(
    tx: Transaction, recipient: str, hours: int, *, identity: ProviderIdentity
) -> BuiltMessage:
    """Avviso di mancata consegna per superamento tempi massimi, 12 h or 24 h (SPEC §3.4, §2.5).

    Both carry the same headers; the 12 h one says 4.4.7 (transient), the 24 h one 5.4.1.
    """
    if hours not in TIMEOUT_TEXT:
        raise ValueError("the timeout notices are for 12 or 24 hours")
    code, text = TIMEOUT_TEXT[hours]
    reason = f"{code} - {identity.name} - {text}"
    d = _daticert(
        tx, identity, "preavviso-errore-consegna", errore="altro", consegna=recipient, errore_esteso=reason
    )
    return _notice(
        tx=tx,
        identity=identity,
        kind="preavviso-errore-consegna",
        x_ricevuta="preavviso-errore-consegna",
        text_kind=f"preavviso-{hours}h",
        d=d,
        destinatario=recipient,
        errore=reason,
    )


def build_virus_detection(
    tx: Transaction, recipient: str, virus_name: str, *, identity: ProviderIdentity, to: str
) -> BuiltMessage:
    """Avviso di rilevazione virus (SPEC §3.7) to the sender provider's service mailbox ``to``."""
    d = _daticert(
        tx, identity, "rilevazione-virus", errore="virus", consegna=recipient, errore_esteso=virus_name
    )
    return _notice(
        tx=tx,
        identity=identity,
        kind="rilevazione-virus",
        x_ricevuta="rilevazione-virus",
        text_kind="rilevazione-virus",
        d=d,
        to=to,
        extra_headers=(("X-Mittente", _ascii_value("X-Mittente", tx.sender)),),
        destinatario=recipient,
        errore=virus_name,
    )


def build_virus_delivery_error(
    tx: Transaction, recipient: str, virus_name: str, *, identity: ProviderIdentity
) -> BuiltMessage:
    """Avviso di mancata consegna per virus (SPEC §3.8), with X-VerificaSicurezza: errore."""
    d = _daticert(
        tx, identity, "errore-consegna", errore="virus", consegna=recipient, errore_esteso=virus_name
    )
    return _notice(
        tx=tx,
        identity=identity,
        kind="errore-consegna-virus",
        x_ricevuta="errore-consegna",
        text_kind="errore-consegna-virus",
        d=d,
        extra_headers=(("X-VerificaSicurezza", "errore"),),
        destinatario=recipient,
        errore=virus_name,
    )


def build_anomaly(
    received: bytes, reason: str, *, identity: ProviderIdentity, when: dt.datetime
) -> BuiltMessage:
    """Busta di anomalia (SPEC §3.6): the received message whole as postacert.eml, no daticert.

    Received, To, Cc, Return-Path and Message-ID are inherited; ``when`` is the arrival time.
    """
    received = _crlf(received)
    tx = Transaction.from_message(received, pec_id="", when=when)
    inherited = _inherited(received, ANOMALY_INHERITED)
    reply_to = _inherited(received, ("reply-to",))
    message_id = next((_msgid(v) for n, v in inherited if n.lower() == "message-id" and _msgid(v)), "")
    if not message_id:
        message_id = f"<{new_pec_id(identity.domain, tx.when)}>"
    headers = [h for h in inherited if h[0].lower() in ("return-path", "received")]
    headers += [
        ("X-Trasporto", "errore"),
        ("Date", format_datetime(tx.when.astimezone(ROME))),
        ("Subject", _subject("anomalia", tx.subject)),
        ("From", _ascii_value("From", formataddr((f"Per conto di: {tx.sender}", identity.service_address)))),
    ]
    headers += [h for h in inherited if h[0].lower() in ("to", "cc")]
    headers += reply_to or ([("Reply-To", _ascii_value("Reply-To", tx.sender))] if tx.sender else [])
    headers.append(("Message-ID", message_id))
    body = texts.render("anomalia", _facts(tx, errore=reason))
    entity = _entity(body, None, received)
    return _sign("anomalia", headers, entity, identity, message_id.strip("<>"), None)
