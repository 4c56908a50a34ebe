"""Read stored messages for display: text, HTML, attachments, the inner postacert.eml.

Hostile or malformed MIME never raises here: every function returns what can be read.
Nothing in this module writes bytes back into a message (signed bytes are evidence).
"""

from __future__ import annotations

import contextlib
import email
import email.errors
import email.header
import email.utils
import html as html_module
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import Message as EmailMessage

from pecmail.certification import mimebytes

# Nesting depth and part count are bounded by certification.mimebytes.
PREVIEW_CHARS = 200

POSTACERT = "postacert.eml"


@dataclass
class AttachmentInfo:
    index: int
    filename: str
    content_type: str
    size: int


@dataclass
class ParsedMessage:
    text: str = ""
    html: str | None = None
    attachments: list[AttachmentInfo] = field(default_factory=list)
    inner: ParsedMessage | None = None
    subject: str = ""
    from_name: str = ""
    from_address: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    date: datetime | None = None
    message_id: str = ""
    priority_high: bool = False
    confidential: bool = False
    # The PEC headers that say what this is: "posta-certificata"/"errore" (X-Trasporto), or a
    # receipt type (X-Ricevuta, e.g. "avvenuta-consegna").
    x_trasporto: str = ""
    x_ricevuta: str = ""

    @property
    def display(self) -> ParsedMessage:
        """The message a reader wants to see: the postacert.eml of an envelope, else itself.

        A receipt carrying the original (a complete delivery receipt) shows the receipt itself.
        """
        if self.inner is not None and not self.x_ricevuta:
            return self.inner
        return self


def parse_bytes(raw: bytes) -> EmailMessage:
    # compat32 keeps headers as they came and is the most forgiving with broken input.
    return email.message_from_bytes(raw, policy=policy.compat32)


def header_text(msg: EmailMessage, name: str) -> str:
    """A header decoded from RFC 2047 into one line of text; "" when absent or unreadable."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        text = str(email.header.make_header(email.header.decode_header(str(value))))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        text = str(value)
    return " ".join(text.split())


def addresses(msg: EmailMessage, name: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header, lower-cased addresses, duplicates dropped."""
    try:
        values = [str(v) for v in msg.get_all(name, [])]
        pairs = email.utils.getaddresses(values)
    except (TypeError, ValueError, IndexError):
        return []
    seen: set[str] = set()
    result: list[tuple[str, str]] = []
    for display, address in pairs:
        address = address.strip().lower()
        if "@" not in address or address in seen:
            continue
        seen.add(address)
        with contextlib.suppress(LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
            display = str(email.header.make_header(email.header.decode_header(display)))
        result.append((display, address))
    return result


def _message_id(msg: EmailMessage, name: str = "Message-ID") -> str:
    return header_text(msg, name).strip().strip("<>").strip()


def _date(msg: EmailMessage) -> datetime | None:
    value = header_text(msg, "Date")
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return parsed


def is_priority_high(msg: EmailMessage) -> bool:
    importance = header_text(msg, "Importance").lower()
    x_priority = header_text(msg, "X-Priority").strip()
    return importance == "high" or x_priority[:1] in {"1", "2"}


def is_confidential(msg: EmailMessage) -> bool:
    return header_text(msg, "Sensitivity").lower() in {"company-confidential", "private", "personal"}


def _payload_bytes(part: mimebytes.Part) -> bytes:
    """The part's content: a nested message exactly as stored, anything else CTE-decoded."""
    if part.content_type == "message/rfc822" and part.children:
        return part.children[0].raw
    try:
        return part.decoded_body()
    except Exception:  # noqa: BLE001 - hostile encodings must not break the reading pane
        return b""


def _decoded_text(part: mimebytes.Part) -> str:
    data = _payload_bytes(part)
    try:
        charset = part.headers.get_content_charset() or "utf-8"
    except Exception:  # noqa: BLE001
        charset = "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _filename(part: mimebytes.Part) -> str:
    name = part.filename or ""
    with contextlib.suppress(LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        name = str(email.header.make_header(email.header.decode_header(name)))
    return safe_filename(name)


def safe_filename(name: str) -> str:
    """Only the last path component, no control characters: it ends up in a download header."""
    name = re.split(r"[\\/]", name)[-1]
    return "".join(ch for ch in name if ch.isprintable()).strip()


def _is_attachment(part: mimebytes.Part, filename: str) -> bool:
    disposition = (part.headers.get("Content-Disposition") or "").split(";")[0].strip().lower()
    if disposition == "attachment" or filename:
        return True
    return part.content_type.split("/")[0] not in ("text", "multipart")


class _Walker:
    """Walks a message tree once, numbering every attachment in the order met (the download index).

    Works on byte offsets (certification.mimebytes), so a downloaded part, a nested
    postacert.eml included, is exactly the bytes the message carries.
    """

    def __init__(self) -> None:
        self.counter = 0
        self.found: dict[int, mimebytes.Part] = {}

    def walk(self, root: mimebytes.Part) -> ParsedMessage:
        parsed = ParsedMessage()
        _read_headers(root.headers, parsed)
        self._body(root, parsed)
        return parsed

    def _body(self, part: mimebytes.Part, parsed: ParsedMessage) -> None:
        ctype = part.content_type
        if ctype.startswith("multipart/"):
            if ctype == "multipart/signed":
                # The signature part is evidence, not content: list it, but read the signed entity.
                for child in part.children[:1]:
                    self._body(child, parsed)
                for child in part.children[1:]:
                    self._attachment(child, parsed, _filename(child) or "smime.p7s")
                return
            for child in part.children:
                self._body(child, parsed)
            return
        filename = _filename(part)
        if ctype == "message/rfc822":
            self._attachment(part, parsed, filename or "message.eml")
            if parsed.inner is None and filename.lower() == POSTACERT and part.children:
                parsed.inner = self.walk(part.children[0])
            return
        if not _is_attachment(part, filename):
            if ctype == "text/html" and parsed.html is None:
                parsed.html = _decoded_text(part)
                return
            if ctype == "text/plain":
                text = _decoded_text(part)
                parsed.text = f"{parsed.text}\n\n{text}" if parsed.text else text
                return
        self._attachment(part, parsed, filename or "attachment")

    def _attachment(self, part: mimebytes.Part, parsed: ParsedMessage, filename: str) -> int:
        index = self.counter
        self.counter += 1
        self.found[index] = part
        parsed.attachments.append(
            AttachmentInfo(
                index=index, filename=filename, content_type=part.content_type, size=len(_payload_bytes(part))
            )
        )
        return index


def _read_headers(msg: EmailMessage, parsed: ParsedMessage) -> None:
    parsed.subject = header_text(msg, "Subject")
    senders = addresses(msg, "From")
    if senders:
        parsed.from_name, parsed.from_address = senders[0]
    parsed.to = [a for _n, a in addresses(msg, "To")]
    parsed.cc = [a for _n, a in addresses(msg, "Cc")]
    parsed.date = _date(msg)
    parsed.message_id = _message_id(msg)
    parsed.priority_high = is_priority_high(msg)
    parsed.confidential = is_confidential(msg)
    parsed.x_trasporto = header_text(msg, "X-Trasporto").lower()
    parsed.x_ricevuta = header_text(msg, "X-Ricevuta").lower()


def _walk(raw: bytes) -> tuple[_Walker, ParsedMessage]:
    walker = _Walker()
    try:
        return walker, walker.walk(mimebytes.parse(raw))
    except mimebytes.MimeLimitError:
        # Too deep or too many parts: show the headers and say why the body is missing.
        parsed = ParsedMessage(text="(This message is too deeply nested or has too many parts to display.)")
        _read_headers(parse_bytes(raw[: mimebytes.header_end(raw)]), parsed)
        return _Walker(), parsed


def message_parts(raw: bytes) -> ParsedMessage:
    """Text, HTML and attachments of ``raw``; for a PEC envelope ``inner`` is the postacert.eml.

    Attachment indexes are unique across the whole raw message (outer and inner), in the order
    met, so ``attachment_bytes(raw, info.index)`` works for either level.
    """
    try:
        return _walk(raw)[1]
    except Exception:  # noqa: BLE001 - last line of defence: show the bytes as text
        return ParsedMessage(text=raw.decode("utf-8", errors="replace"))


def attachment_bytes(raw: bytes, index: int) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of attachment ``index``; KeyError if there is none.

    Files come CTE-decoded; a nested message (postacert.eml) comes byte-exact as carried.
    """
    try:
        walker, parsed = _walk(raw)
    except Exception as exc:  # noqa: BLE001
        raise KeyError(index) from exc
    part = walker.found.get(index)
    if part is None:
        raise KeyError(index)
    infos = _all_infos(parsed)
    info = next((i for i in infos if i.index == index), None)
    filename = info.filename if info else "attachment"
    content_type = info.content_type if info else "application/octet-stream"
    return filename, content_type, _payload_bytes(part)


def _all_infos(parsed: ParsedMessage) -> list[AttachmentInfo]:
    infos = list(parsed.attachments)
    if parsed.inner is not None:
        infos += _all_infos(parsed.inner)
    return infos


def preview_of(parsed: ParsedMessage) -> str:
    """About the first 200 characters of readable text, whitespace collapsed."""
    text = parsed.text
    if not text.strip() and parsed.html:
        text = html_to_text(parsed.html)
    return " ".join(text.split())[:PREVIEW_CHARS]


def html_to_text(html: str) -> str:
    """A rough plain-text rendering of HTML (for previews and the text alternative)."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", html)
    text = re.sub(r"(?i)<br\s*/?>|</p\s*>|</div\s*>|</li\s*>|</h[1-6]\s*>", "\n", text)
    text = re.sub(r"<[^>]*>", "", text)
    text = html_module.unescape(text)
    return "\n".join(line.strip() for line in text.splitlines()).strip()
