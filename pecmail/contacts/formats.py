"""vCard (3.0, 4.0) and CSV (Outlook, Gmail) for contacts: bytes in, records out, and back.

No ORM here. A *record* is a plain, JSON-serialisable dict (see ``empty_record``), so
a parsed file can wait in the session between the preview and the confirmation.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

import vobject
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

SCALAR_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "job_title",
    "street",
    "city",
    "postal_code",
    "region",
    "country",
    "vat_number",
    "tax_code",
    "website",
    "notes",
)
PHONE_KINDS = ("mobile", "work", "home", "fax", "other")
MAX_FIELD = 2000

Record = dict[str, Any]


class FormatError(ValueError):
    """The file as a whole cannot be read: nothing in it is imported."""


@dataclass
class Parsed:
    records: list[Record] = field(default_factory=list)
    # (which entry, why it was left out)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def empty_record() -> Record:
    record: Record = dict.fromkeys(SCALAR_FIELDS, "")
    record.update(favourite=False, groups=[], addresses=[], phones=[], warnings=[])
    return record


def record_label(record: Record) -> str:
    name = " ".join(p for p in (record["first_name"], record["last_name"]) if p) or record["company"]
    if not name and record["addresses"]:
        name = record["addresses"][0]["address"]
    return name


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM); old Outlook exports are Windows-1252."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def safe_url(value: str) -> str:
    """The URL if it is http(s), else empty: a javascript: link must never reach a template."""
    value = value.strip()
    return value if re.match(r"^https?://[^\s<>\"']+$", value, re.IGNORECASE) else ""


def _clip(value: Any) -> str:
    return str(value or "").strip()[:MAX_FIELD]


def _add_address(record: Record, address: str, kind: str) -> None:
    address = address.strip().strip("<>").lower()
    if address.startswith("mailto:"):
        address = address[len("mailto:") :]
    if not address:
        return
    try:
        validate_email(address)
    except ValidationError:
        record["warnings"].append(
            _("Address “%(address)s” is not valid and was left out.") % {"address": address}
        )
        return
    if any(existing["address"] == address for existing in record["addresses"]):
        return
    record["addresses"].append({"kind": kind, "address": address})


def _add_phone(record: Record, number: str, kind: str) -> None:
    number = _clip(number)
    if number.lower().startswith("tel:"):
        number = number[4:]
    if number:
        record["phones"].append({"kind": kind if kind in PHONE_KINDS else "other", "number": number[:50]})


def _set_website(record: Record, value: str) -> None:
    value = _clip(value)
    if not value:
        return
    url = safe_url(value)
    if url:
        record["website"] = url
    else:
        record["warnings"].append(
            _("Web address “%(url)s” is not http(s) and was left out.") % {"url": value[:100]}
        )


def _finish(record: Record, label: str, parsed: Parsed) -> None:
    for key in SCALAR_FIELDS:
        record[key] = _clip(record[key])
    record["groups"] = sorted({_clip(g)[:100] for g in record["groups"] if _clip(g)})
    if not (record["first_name"] or record["last_name"] or record["company"] or record["addresses"]):
        parsed.skipped.append((label, _("it has no name and no address")))
        return
    parsed.records.append(record)


# --- vCard ---------------------------------------------------------------------------

_BLOCK = re.compile(r"^BEGIN:VCARD\s*$(.*?)^END:VCARD\s*$", re.IGNORECASE | re.MULTILINE | re.DOTALL)


def _types(prop: Any) -> set[str]:
    types: set[str] = set()
    for value in prop.params.get("TYPE", []):
        types.update(part.strip().lower() for part in value.split(",") if part.strip())
    # vCard 2.1 (Outlook's .vcf) writes bare types: TEL;CELL;VOICE:…
    types.update(str(param).lower() for param in getattr(prop, "singletonparams", []))
    return types


def _phone_kind(types: set[str]) -> str:
    if "fax" in types:
        return "fax"
    if "cell" in types:
        return "mobile"
    if "work" in types:
        return "work"
    if "home" in types:
        return "home"
    return "other"


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value if v)
    return str(value or "")


def _card_to_record(card: Any) -> Record:
    record = empty_record()
    contents = card.contents
    if "n" in contents:
        name = contents["n"][0].value
        record["last_name"] = _text(name.family)
        record["first_name"] = " ".join(p for p in (_text(name.given), _text(name.additional)) if p)
    if "org" in contents:
        org = contents["org"][0].value
        record["company"] = _text(org[0] if isinstance(org, list) and org else org)
    if "title" in contents:
        record["job_title"] = _text(contents["title"][0].value)
    for prop in contents.get("email", []):
        types = _types(prop)
        _add_address(record, _text(prop.value), "pec" if {"x-pec", "pec"} & types else "email")
    if not (record["first_name"] or record["last_name"]) and "fn" in contents:
        full = _text(contents["fn"][0].value).strip()
        # A card for a company, or for a bare address, repeats it in FN: that is no person's name.
        not_a_name = {record["company"].lower(), *(a["address"] for a in record["addresses"][:1])}
        if full.lower() not in not_a_name:
            first, _sep, last = full.rpartition(" ")
            record["first_name"], record["last_name"] = (first, last) if first else (full, "")
    for prop in contents.get("tel", []):
        _add_phone(record, _text(prop.value), _phone_kind(_types(prop)))
    if "adr" in contents:
        adr = contents["adr"][0].value
        record["street"] = _text(adr.street)
        record["city"] = _text(adr.city)
        record["region"] = _text(adr.region)
        record["postal_code"] = _text(adr.code)
        record["country"] = _text(adr.country)
    if "note" in contents:
        record["notes"] = _text(contents["note"][0].value)
    if "url" in contents:
        _set_website(record, _text(contents["url"][0].value))
    for prop in contents.get("categories", []):
        value = prop.value
        record["groups"].extend(value if isinstance(value, list) else str(value).split(","))
    if "x-partita-iva" in contents:
        record["vat_number"] = _text(contents["x-partita-iva"][0].value)
    if "x-codice-fiscale" in contents:
        record["tax_code"] = _text(contents["x-codice-fiscale"][0].value)
    if "x-pecmail-favourite" in contents:
        record["favourite"] = _text(contents["x-pecmail-favourite"][0].value).upper() == "TRUE"
    return record


def vcard_parse(data: bytes) -> Parsed:
    """Every card of a .vcf file; a card that cannot be read is skipped with the reason."""
    text = decode(data).replace("\r\n", "\n").replace("\r", "\n")
    blocks = _BLOCK.findall(text)
    if not blocks:
        raise FormatError(_("This is not a vCard file: no BEGIN:VCARD … END:VCARD found."))
    parsed = Parsed()
    for number, body in enumerate(blocks, start=1):
        label = _("card %(number)s") % {"number": number}
        try:
            card = vobject.readOne(
                "BEGIN:VCARD\r\n" + body.strip("\n").replace("\n", "\r\n") + "\r\nEND:VCARD\r\n"
            )
            record = _card_to_record(card)
        except Exception as error:  # vobject raises many unrelated types for bad input
            parsed.skipped.append((label, _("it is malformed (%(error)s)") % {"error": str(error)[:200]}))
            continue
        _finish(record, record_label(record) or label, parsed)
    return parsed


_VCARD3_PHONE = {"mobile": ["CELL"], "work": ["WORK"], "home": ["HOME"], "fax": ["FAX"], "other": ["VOICE"]}


def vcard_serialize(records: list[Record], *, version: str = "3.0") -> str:
    """A .vcf with one card per record, in vCard ``version`` "3.0" or "4.0"."""
    if version not in {"3.0", "4.0"}:
        raise ValueError(version)
    four = version == "4.0"
    out: list[str] = []
    for record in records:
        card = vobject.vCard()
        card.add("version").value = version
        card.add("fn").value = record_label(record) or "-"
        card.add("n").value = vobject.vcard.Name(family=record["last_name"], given=record["first_name"])
        if record["company"]:
            card.add("org").value = [record["company"]]
        if record["job_title"]:
            card.add("title").value = record["job_title"]
        for item in record["addresses"]:
            prop = card.add("email")
            prop.value = item["address"]
            pec = item["kind"] == "pec"
            if four:
                if pec:
                    prop.type_param = "x-pec"
            else:
                prop.type_paramlist = ["INTERNET", "X-PEC"] if pec else ["INTERNET"]
        for phone in record["phones"]:
            prop = card.add("tel")
            prop.value = phone["number"]
            if four:
                prop.params["VALUE"] = ["text"]
                prop.type_paramlist = [_VCARD3_PHONE[phone["kind"]][0].lower()]
            else:
                prop.type_paramlist = _VCARD3_PHONE[phone["kind"]]
        if any(record[k] for k in ("street", "city", "region", "postal_code", "country")):
            card.add("adr").value = vobject.vcard.Address(
                street=record["street"],
                city=record["city"],
                region=record["region"],
                code=record["postal_code"],
                country=record["country"],
            )
        if record["notes"]:
            card.add("note").value = record["notes"]
        if record["website"]:
            card.add("url").value = record["website"]
        if record["groups"]:
            card.add("categories").value = list(record["groups"])
        if record["vat_number"]:
            card.add("x-partita-iva").value = record["vat_number"]
        if record["tax_code"]:
            card.add("x-codice-fiscale").value = record["tax_code"]
        if record["favourite"]:
            card.add("x-pecmail-favourite").value = "TRUE"
        out.append(card.serialize())
    return "".join(out)


# --- CSV -----------------------------------------------------------------------------

OUTLOOK_PHONES = (
    ("Mobile Phone", "mobile"),
    ("Business Phone", "work"),
    ("Business Phone 2", "work"),
    ("Home Phone", "home"),
    ("Home Phone 2", "home"),
    ("Business Fax", "fax"),
    ("Other Phone", "other"),
)
OUTLOOK_COLUMNS = [
    "First Name",
    "Middle Name",
    "Last Name",
    "Company",
    "Job Title",
    "Business Street",
    "Business City",
    "Business State",
    "Business Postal Code",
    "Business Country/Region",
    *[column for column, _kind in OUTLOOK_PHONES],
    "E-mail Address",
    "E-mail Type",
    "E-mail Display Name",
    "E-mail 2 Address",
    "E-mail 2 Type",
    "E-mail 2 Display Name",
    "E-mail 3 Address",
    "E-mail 3 Type",
    "E-mail 3 Display Name",
    "Categories",
    "Government ID Number",
    "Organizational ID Number",
    "Web Page",
    "Notes",
]
_OUTLOOK_ADDRESS_PREFIXES = ("business", "home", "other")
_GMAIL_SEP = " ::: "
_GMAIL_PHONE_LABELS = {
    "mobile": "Mobile",
    "work": "Work",
    "home": "Home",
    "fax": "Work Fax",
    "other": "Other",
}
_VAT_LABELS = {"partita iva", "vat", "vat number", "p.iva", "piva"}
_TAX_LABELS = {"codice fiscale", "tax code", "cf", "c.f."}


def _gmail_values(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(":::") if part.strip()]


def _gmail_phone_kind(label: str) -> str:
    label = label.lower().lstrip("* ")
    if "fax" in label:
        return "fax"
    if "mobile" in label or "cell" in label:
        return "mobile"
    if "work" in label:
        return "work"
    if "home" in label:
        return "home"
    return "other"


def _row_to_record(row: dict[str, str]) -> Record:
    record = empty_record()

    def get(*names: str) -> str:
        for name in names:
            if row.get(name):
                return row[name].strip()
        return ""

    record["first_name"] = " ".join(
        p for p in (get("first name", "given name"), get("middle name", "additional name")) if p
    )
    record["last_name"] = get("last name", "family name", "surname")
    if not (record["first_name"] or record["last_name"]):
        full = get("name", "display name", "full name")
        first, _sep, last = full.rpartition(" ")
        record["first_name"], record["last_name"] = (first, last) if first else (full, "")
    record["company"] = get("company", "organization name", "organization 1 - name")
    record["job_title"] = get("job title", "organization title", "organization 1 - title")
    record["notes"] = get("notes")
    _set_website(record, get("web page", "business web page", "website 1 - value"))
    record["tax_code"] = get("government id number")
    record["vat_number"] = get("organizational id number")

    # Outlook: three fixed address columns; the providers index decides which are PEC.
    for column in ("e-mail address", "e-mail 2 address", "e-mail 3 address"):
        if row.get(column):
            _add_address(record, row[column], "email")
    for column, kind in OUTLOOK_PHONES:
        if row.get(column.lower()):
            _add_phone(record, row[column.lower()], kind)
    for prefix in _OUTLOOK_ADDRESS_PREFIXES:
        if any(row.get(f"{prefix} {part}") for part in ("street", "city", "postal code")):
            record["street"] = get(f"{prefix} street")
            record["city"] = get(f"{prefix} city")
            record["region"] = get(f"{prefix} state")
            record["postal_code"] = get(f"{prefix} postal code")
            record["country"] = get(f"{prefix} country/region", f"{prefix} country")
            break
    if row.get("categories"):
        record["groups"].extend(re.split(r"[;,]", row["categories"]))

    # Gmail (current "Label" and older "Type" exports): numbered groups of columns.
    for n in range(1, 21):
        label = get(f"e-mail {n} - label", f"e-mail {n} - type")
        for value in _gmail_values(row.get(f"e-mail {n} - value", "")):
            _add_address(record, value, "pec" if "pec" in label.lower() else "email")
        label = get(f"phone {n} - label", f"phone {n} - type")
        for value in _gmail_values(row.get(f"phone {n} - value", "")):
            _add_phone(record, value, _gmail_phone_kind(label))
        custom_label = get(f"custom field {n} - label", f"custom field {n} - type").lower()
        custom_value = get(f"custom field {n} - value")
        if custom_value and custom_label in _VAT_LABELS:
            record["vat_number"] = custom_value
        elif custom_value and custom_label in _TAX_LABELS:
            record["tax_code"] = custom_value
    if get("address 1 - street", "address 1 - city", "address 1 - postal code"):
        record["street"] = get("address 1 - street")
        record["city"] = get("address 1 - city")
        record["region"] = get("address 1 - region")
        record["postal_code"] = get("address 1 - postal code")
        record["country"] = get("address 1 - country")
    for label in _gmail_values(get("labels", "group membership")):
        label = label.lstrip("* ").strip()
        if label.lower() == "starred":
            record["favourite"] = True
        elif label.lower() not in {"mycontacts", "my contacts"}:
            record["groups"].append(label)
    return record


_KNOWN_COLUMNS = {
    "first name",
    "last name",
    "given name",
    "family name",
    "name",
    "company",
    "organization name",
    "e-mail address",
    "e-mail 1 - value",
}


def csv_parse(data: bytes) -> Parsed:
    """Rows of an Outlook or Gmail contacts export (comma, semicolon or tab separated)."""
    text = decode(data)
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as error:
        raise FormatError(_("This CSV file is malformed: %(error)s") % {"error": error}) from error
    if not rows:
        raise FormatError(_("This CSV file is empty."))
    header = [column.strip().lower() for column in rows[0]]
    if not _KNOWN_COLUMNS & set(header):
        raise FormatError(
            _(
                "This CSV file has no column that Outlook or Gmail use (such as “First Name” or “E-mail Address”)."
            )
        )
    parsed = Parsed()
    for number, values in enumerate(rows[1:], start=2):
        if not any(v.strip() for v in values):
            continue
        label = _("row %(number)s") % {"number": number}
        if len(values) > len(header):
            parsed.skipped.append((label, _("it has more fields than the header")))
            continue
        record = _row_to_record(dict(zip(header, values, strict=False)))
        _finish(record, record_label(record) or label, parsed)
    return parsed


def csv_serialize(records: list[Record], *, flavour: str = "outlook") -> str:
    """A CSV with the columns Outlook ("outlook") or Google Contacts ("gmail") export."""
    buffer = io.StringIO(newline="")
    if flavour == "outlook":
        writer = csv.DictWriter(buffer, fieldnames=OUTLOOK_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        for record in records:
            writer.writerow(_outlook_row(record))
    elif flavour == "gmail":
        emails = max([len(r["addresses"]) for r in records] + [1])
        phones = max([len(r["phones"]) for r in records] + [1])
        columns = [
            "First Name",
            "Middle Name",
            "Last Name",
            "Organization Name",
            "Organization Title",
            "Notes",
            "Labels",
        ]
        for n in range(1, emails + 1):
            columns += [f"E-mail {n} - Label", f"E-mail {n} - Value"]
        for n in range(1, phones + 1):
            columns += [f"Phone {n} - Label", f"Phone {n} - Value"]
        columns += [
            f"Address 1 - {part}" for part in ("Label", "Street", "City", "Region", "Postal Code", "Country")
        ]
        columns += ["Website 1 - Label", "Website 1 - Value"]
        columns += [
            "Custom Field 1 - Label",
            "Custom Field 1 - Value",
            "Custom Field 2 - Label",
            "Custom Field 2 - Value",
        ]
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
        writer.writeheader()
        for record in records:
            writer.writerow(_gmail_row(record))
    else:
        raise ValueError(flavour)
    return buffer.getvalue()


def _outlook_row(record: Record) -> dict[str, str]:
    row = {
        "First Name": record["first_name"],
        "Last Name": record["last_name"],
        "Company": record["company"],
        "Job Title": record["job_title"],
        "Business Street": record["street"],
        "Business City": record["city"],
        "Business State": record["region"],
        "Business Postal Code": record["postal_code"],
        "Business Country/Region": record["country"],
        "Categories": ";".join(record["groups"]),
        "Government ID Number": record["tax_code"],
        "Organizational ID Number": record["vat_number"],
        "Web Page": record["website"],
        "Notes": record["notes"],
    }
    prefixes = ("E-mail", "E-mail 2", "E-mail 3")
    # Outlook has three e-mail columns: further addresses do not fit its format.
    for prefix, item in zip(prefixes, record["addresses"], strict=False):
        row[f"{prefix} Address"] = item["address"]
        row[f"{prefix} Type"] = "SMTP"
        row[f"{prefix} Display Name"] = f"{record_label(record)} ({item['address']})"
    free = list(OUTLOOK_PHONES)
    for phone in record["phones"]:
        slot = next((s for s in free if s[1] == phone["kind"]), None) or next(
            (s for s in free if s[1] == "other"), None
        )
        if slot:
            row[slot[0]] = phone["number"]
            free.remove(slot)
    return row


def _gmail_row(record: Record) -> dict[str, str]:
    labels = ["* myContacts", *(["* starred"] if record["favourite"] else []), *record["groups"]]
    row = {
        "First Name": record["first_name"],
        "Last Name": record["last_name"],
        "Organization Name": record["company"],
        "Organization Title": record["job_title"],
        "Notes": record["notes"],
        "Labels": _GMAIL_SEP.join(labels),
    }
    for n, item in enumerate(record["addresses"], start=1):
        row[f"E-mail {n} - Label"] = "PEC" if item["kind"] == "pec" else "Other"
        row[f"E-mail {n} - Value"] = item["address"]
    for n, phone in enumerate(record["phones"], start=1):
        row[f"Phone {n} - Label"] = _GMAIL_PHONE_LABELS[phone["kind"]]
        row[f"Phone {n} - Value"] = phone["number"]
    if any(record[k] for k in ("street", "city", "region", "postal_code", "country")):
        row["Address 1 - Label"] = "Work"
        row["Address 1 - Street"] = record["street"]
        row["Address 1 - City"] = record["city"]
        row["Address 1 - Region"] = record["region"]
        row["Address 1 - Postal Code"] = record["postal_code"]
        row["Address 1 - Country"] = record["country"]
    if record["website"]:
        row["Website 1 - Label"] = "Work"
        row["Website 1 - Value"] = record["website"]
    if record["vat_number"]:
        row["Custom Field 1 - Label"] = "Partita IVA"
        row["Custom Field 1 - Value"] = record["vat_number"]
    if record["tax_code"]:
        row["Custom Field 2 - Label"] = "Codice fiscale"
        row["Custom Field 2 - Value"] = record["tax_code"]
    return row
