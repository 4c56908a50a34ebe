"""What a received message is, and whether it is valid PEC (SPEC §2.3, §11, §13.7).

``classify`` reads the headers first (``X-Ricevuta``, then ``X-Trasporto``, names
case-insensitive, never the subject), finds ``daticert.xml`` and ``postacert.eml`` by file
name inside the signed entity, parses daticert strictly and cross-checks it with the headers,
and checks the S/MIME signature with ``smime.verify``. It never raises: hostile input ends
as ``kind="malformed"`` or ``valid=False`` with the reasons in ``problems``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from pecmail.certification import daticert as daticert_mod
from pecmail.certification import mimebytes, smime
from pecmail.certification.daticert import Daticert, DaticertError
from pecmail.certification.envelopes import decode_subject
from pecmail.certification.trust import TrustStore

# The biggest message accepted for classification (providers allow ~100 MB × recipients, but
# a single certified message above this is refused before it is parsed).
MAX_MESSAGE_SIZE = 128 * 1024 * 1024
MAX_HEADER_SIZE = 1024 * 1024

RECEIPT_KINDS = (
    "accettazione",
    "non-accettazione",
    "presa-in-carico",
    "avvenuta-consegna",
    "errore-consegna",
    "preavviso-errore-consegna",
    "rilevazione-virus",
)
TRANSPORT_KINDS = {"posta-certificata": "posta-certificata", "errore": "anomalia"}
KINDS = (*RECEIPT_KINDS, "posta-certificata", "anomalia", "ordinary", "malformed")
# Kinds whose daticert.errore must be "virus" exactly when X-VerificaSicurezza says errore.
VIRUS_HEADER_KINDS = ("non-accettazione", "errore-consegna")
_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass
class Classification:
    kind: str
    valid: bool = False
    receipt_type: str | None = None
    signature: smime.SignatureResult | None = None
    daticert: Daticert | None = None
    pec_id: str = ""
    client_msgid: str = ""
    referenced_ids: list[str] = field(default_factory=list)
    postacert: bytes | None = None
    problems: list[str] = field(default_factory=list)
    virus: bool = False
    subject: str = ""
    message_id: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (``pec verify`` prints it)."""
        d = self.daticert
        datijson: dict[str, Any] | None = None
        if d is not None:
            datijson = dataclasses.asdict(d)
            datijson["data"] = d.data.isoformat()
            datijson["zona"] = d.data.strftime("%z")
        signature = self.signature
        return {
            "type": self.kind,
            "valid": self.valid,
            "receipt_type": self.receipt_type,
            "signature_valid": bool(signature and signature.valid),
            "trusted_signer": bool(signature and signature.trusted),
            "signature": signature.to_json() if signature is not None else None,
            "daticert": datijson,
            "pec_id": self.pec_id,
            "client_msgid": self.client_msgid,
            "referenced_ids": list(self.referenced_ids),
            "message_id": self.message_id,
            "subject": self.subject,
            "virus": self.virus,
            "has_postacert": self.postacert is not None,
            "problems": list(self.problems),
        }


def _header(headers: Any, name: str) -> str:
    try:
        value = headers.get(name)
    except Exception:
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _bare(msgid: str) -> str:
    return msgid.strip().strip("<>").strip()


def classify(raw: bytes, *, trust: TrustStore | None = None, at: dt.datetime | None = None) -> Classification:
    """Return what ``raw`` is and whether it is valid PEC; never raises.

    ``trust``: the providers index; when given, ``valid`` also requires a trusted signer.
    ``at``: the time at which certificates must be valid (default now; use the message's own
    date for archived messages).
    """
    try:
        return _classify(raw, trust=trust, at=at)
    except Exception as exc:  # noqa: BLE001 - hostile input must never crash the caller
        return Classification(kind="malformed", problems=[f"unreadable message: {type(exc).__name__}"])


def _classify(raw: bytes, *, trust: TrustStore | None, at: dt.datetime | None) -> Classification:
    if not isinstance(raw, bytes | bytearray | memoryview):
        return Classification(kind="malformed", problems=["not bytes"])
    raw = bytes(raw)
    if len(raw) > MAX_MESSAGE_SIZE:
        return Classification(kind="malformed", problems=[f"message larger than {MAX_MESSAGE_SIZE} bytes"])
    body_start = mimebytes.header_end(raw)
    if body_start > MAX_HEADER_SIZE:
        return Classification(kind="malformed", problems=["header block too large"])
    headers = mimebytes.parse_headers(raw[:body_start])
    if not headers.keys():
        return Classification(kind="malformed", problems=["no header fields"])

    result = Classification(kind="ordinary")
    result.subject = decode_subject(headers.get("Subject"))
    match = _MSGID.search(_header(headers, "Message-ID"))
    result.message_id = match.group(0) if match else ""
    x_ricevuta = _header(headers, "X-Ricevuta").lower()
    x_trasporto = _header(headers, "X-Trasporto").lower()
    result.virus = _header(headers, "X-VerificaSicurezza").lower() == "errore"
    problems = result.problems
    if x_ricevuta:
        if x_ricevuta in RECEIPT_KINDS:
            result.kind = x_ricevuta
        else:
            result.kind = "malformed"
            problems.append(f"unknown X-Ricevuta value {x_ricevuta!r}")
    elif x_trasporto:
        if x_trasporto in TRANSPORT_KINDS:
            result.kind = TRANSPORT_KINDS[x_trasporto]
        else:
            result.kind = "malformed"
            problems.append(f"unknown X-Trasporto value {x_trasporto!r}")

    signature = smime.verify(raw, trust=trust if trust is not None else TrustStore(), at=at)
    result.signature = signature
    pec_message = result.kind not in ("ordinary", "malformed")

    # Parts are looked for in what was signed; an unsigned or broken message is read as it is.
    tree: mimebytes.Part | None = None
    try:
        if signature.signed_entity is not None:
            tree = mimebytes.parse(signature.signed_entity)
        else:
            tree = mimebytes.parse(raw)
            if tree.content_type == "multipart/signed" and tree.children:
                tree = tree.children[0]
    except mimebytes.MimeLimitError as exc:
        problems.append(str(exc))

    xml_part = postacert_part = None
    if tree is not None:
        named = mimebytes.find_by_filenames(tree, "daticert.xml", "postacert.eml")
        xml_part, postacert_part = named.get("daticert.xml"), named.get("postacert.eml")
    if postacert_part is not None:
        result.postacert = postacert_part.body

    daticert_ok = False
    if xml_part is not None:
        xml = xml_part.decoded_body()
        try:
            result.daticert = daticert_mod.parse(xml)
            daticert_ok = True
        except DaticertError as exc:
            problems.append(f"daticert.xml: {exc}")
            try:
                result.daticert = daticert_mod.parse(xml, validate=False)
            except DaticertError:
                result.daticert = None
    elif pec_message and result.kind != "anomalia":
        problems.append("daticert.xml is missing")

    d = result.daticert
    if d is not None and pec_message and result.kind != "anomalia":
        if d.tipo != result.kind:
            problems.append(f"daticert tipo {d.tipo!r} does not match the header ({result.kind!r})")
        if result.kind in VIRUS_HEADER_KINDS and result.virus != (d.errore == "virus"):
            problems.append("X-VerificaSicurezza and daticert errore disagree about a virus")
        if result.kind == "rilevazione-virus" and d.errore != "virus":
            problems.append("a rilevazione-virus daticert must say errore=virus")
    if result.kind == "posta-certificata" and postacert_part is None:
        problems.append("postacert.eml is missing from the transport envelope")
    if result.kind == "anomalia" and postacert_part is None:
        problems.append("postacert.eml is missing from the anomaly envelope")

    # Identifiers: daticert first (that is what was certified), else the headers.
    riferimento = _MSGID.search(_header(headers, "X-Riferimento-Message-ID"))
    result.client_msgid = (d.msgid if d is not None and d.msgid else "") or (
        riferimento.group(0) if riferimento else ""
    )
    if d is not None and d.identificativo:
        result.pec_id = d.identificativo
    elif result.kind == "posta-certificata":
        result.pec_id = _bare(result.message_id)
    ids = [result.pec_id, _bare(result.client_msgid)]
    result.referenced_ids = [i for i in dict.fromkeys(ids) if i]

    if result.kind == "avvenuta-consegna":
        result.receipt_type = d.ricevuta if d is not None and d.ricevuta else None
    elif result.kind == "posta-certificata":
        requested = (d.ricevuta if d is not None else "") or _header(headers, "X-TipoRicevuta").lower()
        result.receipt_type = requested if requested in daticert_mod.RICEVUTE else "completa"

    if pec_message:
        if not signature.signed:
            problems.append("not signed")
        elif not signature.valid:
            problems.append("signature not valid: " + ", ".join(signature.problems))
        elif trust is not None and not signature.trusted:
            problems.append("signer not trusted: " + ", ".join(signature.problems))
    needs_daticert = pec_message and result.kind != "anomalia"
    result.valid = (
        pec_message
        and signature.valid
        and (trust is None or signature.trusted)
        and (daticert_ok or not needs_daticert)
        and not problems
    )
    return result
