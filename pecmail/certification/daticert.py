"""daticert.xml (SPEC §6): the certification data of every PEC message, built and parsed.

Pure code, bytes in and bytes out. ``build`` writes the element order of the DTD with a
4-space indent and no DOCTYPE (as real providers do); ``parse`` reads a peer's file with a
hardened parser (no DOCTYPE, no entities, no network, size-capped) and validates it against
the DTD shipped in this package.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from lxml import etree

ROME = ZoneInfo("Europe/Rome")
DTD_PATH = Path(__file__).with_name("daticert.dtd")
# Real files are 1–3 KiB; a peer sending more than this is not sending certification data.
MAX_SIZE = 64 * 1024

TIPI = (
    "accettazione",
    "non-accettazione",
    "presa-in-carico",
    "avvenuta-consegna",
    "posta-certificata",
    "errore-consegna",
    "preavviso-errore-consegna",
    "rilevazione-virus",
)
ERRORI = ("nessuno", "no-dest", "no-dominio", "virus", "altro")
RICEVUTE = ("completa", "breve", "sintetica")
TIPI_DESTINATARIO = ("certificato", "esterno")

# Characters XML 1.0 cannot carry at all: dropped rather than producing an unparsable file.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ZONA = re.compile(r"^([+-])(\d{2})(\d{2})$")


class DaticertError(ValueError):
    """The daticert.xml is missing, oversized, malformed, hostile or not valid against the DTD."""


@dataclass
class Recipient:
    address: str
    tipo: str = "certificato"


@dataclass
class Daticert:
    """The fields of daticert.xml; ``data`` is an aware datetime, rendered in Europe/Rome time."""

    tipo: str
    mittente: str
    destinatari: list[Recipient]
    risposte: str
    gestore_emittente: str
    data: dt.datetime
    identificativo: str
    errore: str = "nessuno"
    oggetto: str | None = ""
    msgid: str = ""
    ricevuta: str = ""
    consegna: str = ""
    ricezione: list[str] = field(default_factory=list)
    errore_esteso: str = ""

    @property
    def zona(self) -> str:
        return zona(self.data)


def zona(when: dt.datetime) -> str:
    """Return the Europe/Rome offset at ``when`` as ``+0100`` / ``+0200``."""
    if when.tzinfo is None:
        raise ValueError("daticert times must be timezone-aware")
    offset = when.astimezone(ROME).utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def local_parts(when: dt.datetime) -> tuple[str, str, str]:
    """Return (dd/mm/yyyy, hh:mm:ss, +hhmm) of ``when`` in Italian legal time."""
    local = when.astimezone(ROME)
    # f-strings, not strftime: this runs for every system message built (same text).
    return (
        f"{local.day:02d}/{local.month:02d}/{local.year:04d}",
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}",
        zona(when),
    )


def _text(value: str) -> str:
    value = _XML_INVALID.sub("", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(value: str) -> str:
    return _text(value).replace('"', "&quot;")


def _check(d: Daticert) -> None:
    if d.tipo not in TIPI:
        raise ValueError(f"unknown daticert tipo {d.tipo!r}")
    if d.errore not in ERRORI:
        raise ValueError(f"unknown daticert errore {d.errore!r}")
    if d.ricevuta and d.ricevuta not in RICEVUTE:
        raise ValueError(f"unknown ricevuta tipo {d.ricevuta!r}")
    if not d.destinatari:
        raise ValueError("daticert needs at least one destinatari element (DTD: destinatari+)")
    for recipient in d.destinatari:
        if recipient.tipo not in TIPI_DESTINATARIO:
            raise ValueError(f"unknown destinatari tipo {recipient.tipo!r}")
    if d.identificativo.startswith("<") or d.identificativo.endswith(">"):
        raise ValueError("identificativo is written without angle brackets")
    if d.msgid and not (d.msgid.startswith("<") and d.msgid.endswith(">")):
        raise ValueError("msgid is written with its angle brackets")


def build(d: Daticert) -> bytes:
    """Return daticert.xml as UTF-8 bytes: DTD element order, 4-space indent, no DOCTYPE."""
    _check(d)
    giorno, ora, offset = local_parts(d.data)
    i1, i2, i3 = "    ", "        ", "            "
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<postacert tipo="{d.tipo}" errore="{d.errore}">',
        f"{i1}<intestazione>",
        f"{i2}<mittente>{_text(d.mittente)}</mittente>",
    ]
    lines += [f'{i2}<destinatari tipo="{r.tipo}">{_text(r.address)}</destinatari>' for r in d.destinatari]
    lines.append(f"{i2}<risposte>{_text(d.risposte)}</risposte>")
    if d.oggetto is not None:
        lines.append(f"{i2}<oggetto>{_text(d.oggetto)}</oggetto>")
    lines += [
        f"{i1}</intestazione>",
        f"{i1}<dati>",
        f"{i2}<gestore-emittente>{_text(d.gestore_emittente)}</gestore-emittente>",
        f'{i2}<data zona="{offset}">',
        f"{i3}<giorno>{giorno}</giorno>",
        f"{i3}<ora>{ora}</ora>",
        f"{i2}</data>",
        f"{i2}<identificativo>{_text(d.identificativo)}</identificativo>",
    ]
    if d.msgid:
        lines.append(f"{i2}<msgid>{_text(d.msgid)}</msgid>")
    if d.ricevuta:
        lines.append(f'{i2}<ricevuta tipo="{_attr(d.ricevuta)}" />')
    if d.consegna:
        lines.append(f"{i2}<consegna>{_text(d.consegna)}</consegna>")
    lines += [f"{i2}<ricezione>{_text(address)}</ricezione>" for address in d.ricezione]
    if d.errore_esteso:
        lines.append(f"{i2}<errore-esteso>{_text(d.errore_esteso)}</errore-esteso>")
    lines += [f"{i1}</dati>", "</postacert>", ""]
    return "\n".join(lines).encode("utf-8")


@cache
def dtd() -> etree.DTD:
    """The DTD of RFC 6109 §4.4, loaded from this package (never from the document)."""
    with DTD_PATH.open("rb") as handle:
        return etree.DTD(handle)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _load(data: bytes) -> etree._Element:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DaticertError("daticert.xml must be bytes")
    data = bytes(data)
    if len(data) > MAX_SIZE:
        raise DaticertError(f"daticert.xml is larger than {MAX_SIZE} bytes")
    # A DOCTYPE can declare entities (billion laughs, external files): real files never carry one.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data or b"<!doctype" in data.lower():
        raise DaticertError("daticert.xml carries a DOCTYPE or entity declaration")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise DaticertError(f"daticert.xml is not well-formed XML: {exc}") from None
    except ValueError as exc:
        raise DaticertError(f"daticert.xml cannot be parsed: {exc}") from None
    if root is None or root.tag != "postacert":
        raise DaticertError("the root element of daticert.xml is not postacert")
    return root


def _children(parent: etree._Element | None) -> dict[str, list[etree._Element]]:
    """The element children of ``parent`` by tag, in document order (one pass, no path lookups)."""
    found: dict[str, list[etree._Element]] = {}
    if parent is not None:
        for child in parent:
            if isinstance(child.tag, str):
                found.setdefault(child.tag, []).append(child)
    return found


def _first(children: dict[str, list[etree._Element]], tag: str) -> etree._Element | None:
    elements = children.get(tag)
    return elements[0] if elements else None


def _child_text(children: dict[str, list[etree._Element]], tag: str) -> str:
    child = _first(children, tag)
    if child is None:
        return ""
    return (child.text or "").strip()


_GIORNO_ORA = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4}) ([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})")


def _parse_data(data_el: etree._Element | None) -> dt.datetime:
    if data_el is None:
        raise DaticertError("daticert.xml has no data element")
    children = _children(data_el)
    giorno = _child_text(children, "giorno")
    ora = _child_text(children, "ora")
    match = _ZONA.match((data_el.get("zona") or "").strip())
    if not match:
        raise DaticertError(f"daticert zona {data_el.get('zona')!r} is not [+|-]hhmm")
    sign, hours, minutes = match.groups()
    offset = dt.timedelta(hours=int(hours), minutes=int(minutes))
    if offset > dt.timedelta(hours=14):
        raise DaticertError(f"daticert zona {data_el.get('zona')!r} is out of range")
    tz = dt.timezone(-offset if sign == "-" else offset)
    # What strptime("%d/%m/%Y %H:%M:%S") takes, at a fraction of its cost; datetime checks ranges.
    stamp = _GIORNO_ORA.fullmatch(f"{giorno} {ora}")
    try:
        if stamp is None:
            raise ValueError
        day, month, year, hour, minute, second = (int(group) for group in stamp.groups())
        return dt.datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError:
        raise DaticertError(f"daticert giorno/ora {giorno!r} {ora!r} are not dd/mm/yyyy hh:mm:ss") from None


def _extract(root: etree._Element) -> Daticert:
    top = _children(root)
    head_el, dati_el = _first(top, "intestazione"), _first(top, "dati")
    if head_el is None or dati_el is None:
        raise DaticertError("daticert.xml lacks intestazione or dati")
    head, dati = _children(head_el), _children(dati_el)
    oggetto_el = _first(head, "oggetto")
    ricevuta_el = _first(dati, "ricevuta")
    return Daticert(
        tipo=root.get("tipo") or "",
        errore=root.get("errore") or "nessuno",
        mittente=_child_text(head, "mittente"),
        destinatari=[
            Recipient(address=(el.text or "").strip(), tipo=el.get("tipo") or "certificato")
            for el in head.get("destinatari", [])
        ],
        risposte=_child_text(head, "risposte"),
        oggetto=None if oggetto_el is None else (oggetto_el.text or ""),
        gestore_emittente=_child_text(dati, "gestore-emittente"),
        data=_parse_data(_first(dati, "data")),
        identificativo=_child_text(dati, "identificativo"),
        msgid=_child_text(dati, "msgid"),
        ricevuta="" if ricevuta_el is None else (ricevuta_el.get("tipo") or ""),
        consegna=_child_text(dati, "consegna"),
        ricezione=[(el.text or "").strip() for el in dati.get("ricezione", [])],
        errore_esteso=_child_text(dati, "errore-esteso"),
    )


def validation_errors(data: bytes) -> list[str]:
    """Return the DTD violations of ``data`` (empty when valid); hostile input is an error too."""
    try:
        root = _load(data)
    except DaticertError as exc:
        return [str(exc)]
    schema = dtd()
    if schema.validate(root):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log.filter_from_errors()] or ["not valid"]


def parse(data: bytes, *, validate: bool = True) -> Daticert:
    """Return the fields of a daticert.xml; raise DaticertError if it is not safe and DTD-valid.

    ``validate=False`` reads what can be read from a well-formed but DTD-invalid file (for
    diagnostics only: such a file never makes a message valid PEC).
    """
    root = _load(data)
    if validate:
        schema = dtd()
        if not schema.validate(root):
            errors = schema.error_log.filter_from_errors()
            first = errors[0].message if errors else "unknown error"
            raise DaticertError(f"daticert.xml is not valid against the DTD: {first}")
    return _extract(root)
