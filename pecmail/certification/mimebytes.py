"""A byte-exact MIME walker: where each part's headers and body lie in the raw bytes.

The certification code must never re-serialise a received message (signed bytes are legal
evidence), so instead of ``email``'s object model this records offsets into the original
buffer. Bounded: nesting depth and part count are capped, so hostile input fails fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.policy import compat32
from functools import cached_property

MAX_DEPTH = 20
MAX_PARTS = 1000

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
# Every byte that is not a base64 character: decoding skips them, as mail readers do.
_NOT_BASE64 = bytes(
    sorted(set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="))
)


class MimeLimitError(ValueError):
    """The structure is nested too deeply or has too many parts."""


@dataclass
class Part:
    """One MIME entity: ``buf[start:body_start]`` are its headers, ``buf[body_start:end]`` its body."""

    buf: bytes
    start: int
    body_start: int
    end: int
    headers: Message
    depth: int
    children: list[Part] = field(default_factory=list)

    @cached_property
    def content_type(self) -> str:
        return self.headers.get_content_type()

    @property
    def header_bytes(self) -> bytes:
        return self.buf[self.start : self.body_start]

    @property
    def body(self) -> bytes:
        return self.buf[self.body_start : self.end]

    @property
    def raw(self) -> bytes:
        return self.buf[self.start : self.end]

    @cached_property
    def filename(self) -> str | None:
        """The file name from Content-Disposition ``filename`` or Content-Type ``name``."""
        from email.utils import collapse_rfc2231_value

        try:
            # ``headers.get_filename() or headers.get_param("name")``, with the quick get_param.
            name = get_param(self.headers, "filename", "content-disposition")
            if name is None:
                name = get_param(self.headers, "name")
            if name is not None:
                name = collapse_rfc2231_value(name).strip()
            name = name or get_param(self.headers, "name")
        except Exception:
            return None
        if isinstance(name, tuple):
            try:
                name = collapse_rfc2231_value(name)
            except Exception:
                return None
        return str(name).strip() if name else None

    def decoded_body(self) -> bytes:
        """The body with its Content-Transfer-Encoding undone (base64 / quoted-printable)."""
        import base64
        import binascii
        import quopri

        cte = (self.headers.get("Content-Transfer-Encoding") or "").strip().lower()
        body = self.body
        if cte == "base64":
            try:
                return base64.b64decode(body.translate(None, _NOT_BASE64))
            except (binascii.Error, ValueError):
                return b""
        if cte == "quoted-printable":
            return quopri.decodestring(body)
        return body

    def walk(self, *, into_messages: bool = False):
        """Yield this part and its descendants (message/rfc822 contents only if asked)."""
        stack = [self]
        while stack:
            part = stack.pop()
            yield part
            if part.content_type == "message/rfc822" and not into_messages:
                continue
            stack.extend(reversed(part.children))


def header_end(buf: bytes, start: int = 0, end: int | None = None) -> int:
    """Return the offset where the body starts (after the blank line) within buf[start:end]."""
    end = len(buf) if end is None else end
    # An entity that starts with a blank line has no headers at all.
    if buf.startswith(b"\r\n", start) and start + 2 <= end:
        return start + 2
    if buf.startswith(b"\n", start) and start + 1 <= end:
        return start + 1
    match = _BLANK_LINE.search(buf, start, end)
    if match is None:
        return end
    return match.end()


_FIELD_START = re.compile(rb"^[^\s:]+:", re.MULTILINE)


def parse_headers(data: bytes) -> Message:
    """Return the header fields of ``data`` as a compat32 Message (values as the feedparser keeps them).

    Equivalent to ``BytesHeaderParser(policy=compat32)`` for the fields it finds, but splits
    the block with one regex instead of the line-by-line feedparser (the hot path of every
    classification).
    """
    message = Message(policy=compat32)
    fields = []
    starts = [m.start() for m in _FIELD_START.finditer(data)]
    for index, start in enumerate(starts):
        stop = starts[index + 1] if index + 1 < len(starts) else len(data)
        name, _, value = data[start:stop].partition(b":")
        text = value.decode("ascii", "surrogateescape").lstrip(" \t").rstrip("\r\n")
        fields.append((name.decode("ascii", "surrogateescape"), text))
    message._headers = fields  # noqa: SLF001 - filling the parsed fields directly is the point
    return message


# A header value of plain ``type/subtype; name=token; name="quoted"`` parameters (no RFC 2231,
# no backslash escapes, no bare names): read with one regex. Anything else goes to email.
_SIMPLE_PARAMS = re.compile(
    r'\A[^;"\\=]*(?:;\s*[A-Za-z0-9._-]+\s*=\s*(?:"[^"\\\r\n]*"|[^\s;"\\=]+)\s*)*;?\s*\Z'
)
_PARAM = re.compile(r';\s*([A-Za-z0-9._-]+)\s*=\s*(?:"([^"\\\r\n]*)"|([^\s;"\\=]+))')


def get_param(headers: Message, param: str, header: str = "content-type") -> object:
    """``headers.get_param(param, header=header)``, without email's generic parser for simple values."""
    value = headers.get(header)
    # Length-capped: the regex backtracks over long blank runs; real values are short.
    if isinstance(value, str) and len(value) <= 1000 and _SIMPLE_PARAMS.match(value):
        wanted = param.lower()
        for match in _PARAM.finditer(value):
            if match.group(1).lower() == wanted:
                return match.group(2) if match.group(2) is not None else match.group(3)
        return None
    return headers.get_param(param, header=header)


def _boundary(headers: Message) -> bytes | None:
    try:
        boundary = get_param(headers, "boundary")
    except Exception:
        return None
    if isinstance(boundary, tuple):
        return None
    if not boundary or len(boundary) > 200:
        return None
    try:
        return str(boundary).strip('"').encode("ascii")
    except UnicodeEncodeError:
        return None


# How many false "-" hits _find_delimiter tolerates before handing over to a plain find.
_DASH_PROBES = 64


def find_delimiter(buf: bytes, delimiter: bytes, start: int, end: int) -> int:
    """``buf.find(delimiter, start, end)`` for a delimiter starting with "-", faster on big bodies.

    CPython's substring search is slow for short needles over base64 (a few ms per MiB for a
    boundary like "b"), while a one-byte find is a memchr; "-" never occurs in base64. So hop
    from "-" to "-"; text full of dashes falls back to the plain find after a few probes.
    """
    if len(delimiter) >= 16:
        # A long needle is found quickly by the plain search (it skips by the needle's length).
        return buf.find(delimiter, start, end)
    index = start
    for _ in range(_DASH_PROBES):
        index = buf.find(b"-", index, end)
        if index == -1 or buf.startswith(delimiter, index) and index + len(delimiter) <= end:
            return index
        index += 1
    return buf.find(delimiter, index, end)


def _split(buf: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """Return the (start, end) spans of the body parts of a multipart body buf[start:end]."""
    delimiter = b"--" + boundary
    spans: list[tuple[int, int]] = []
    part_start: int | None = None
    index = find_delimiter(buf, delimiter, start, end)
    while index != -1:
        at_line_start = index == start or buf[index - 1 : index] == b"\n"
        after = index + len(delimiter)
        closing = buf.startswith(b"--", after) and after + 2 <= end
        eol = buf.find(b"\n", after, end)
        line_end = end if eol == -1 else eol + 1
        tail = buf[after + (2 if closing else 0) : line_end].rstrip(b"\r\n \t")
        if at_line_start and tail == b"":
            # The line break before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
            content_end = index
            if content_end > start and buf[content_end - 1 : content_end] == b"\n":
                content_end -= 1
                if content_end > start and buf[content_end - 1 : content_end] == b"\r":
                    content_end -= 1
            if part_start is not None:
                spans.append((part_start, max(part_start, content_end)))
            if closing:
                return spans
            part_start = line_end
        index = find_delimiter(buf, delimiter, after, end)
    # No closing delimiter: take the last part up to the end (lenient, as mail readers are).
    if part_start is not None and part_start < end:
        spans.append((part_start, end))
    return spans


def parse(buf: bytes, start: int = 0, end: int | None = None) -> Part:
    """Return the part tree of buf[start:end]; raise MimeLimitError past the bounds."""
    end = len(buf) if end is None else end
    count = [0]
    root = _parse_part(buf, start, end, 0, count)
    return root


def _parse_part(buf: bytes, start: int, end: int, depth: int, count: list[int]) -> Part:
    if depth > MAX_DEPTH:
        raise MimeLimitError(f"MIME nesting deeper than {MAX_DEPTH}")
    count[0] += 1
    if count[0] > MAX_PARTS:
        raise MimeLimitError(f"more than {MAX_PARTS} MIME parts")
    body_start = header_end(buf, start, end)
    headers = parse_headers(buf[start:body_start])
    part = Part(buf=buf, start=start, body_start=body_start, end=end, headers=headers, depth=depth)
    ctype = part.content_type
    if ctype.startswith("multipart/"):
        boundary = _boundary(headers)
        if boundary:
            for child_start, child_end in _split(buf, body_start, end, boundary):
                part.children.append(_parse_part(buf, child_start, child_end, depth + 1, count))
    elif ctype == "message/rfc822":
        cte = (headers.get("Content-Transfer-Encoding") or "").strip().lower()
        if cte in ("", "7bit", "8bit", "binary"):
            part.children.append(_parse_part(buf, body_start, end, depth + 1, count))
    return part


def find_by_filenames(root: Part, *filenames: str) -> dict[str, Part]:
    """Return {wanted name: first part so named} (case-insensitive), not looking inside messages."""
    wanted = {name.lower(): name for name in filenames}
    found: dict[str, Part] = {}
    for part in root.walk():
        # Only a part whose headers mention a name can carry one: skip the parameter parsing.
        if part is root or b"name" not in part.header_bytes.lower():
            continue
        name = (part.filename or "").lower()
        if name in wanted and wanted[name] not in found:
            found[wanted[name]] = part
            if len(found) == len(wanted):
                break
    return found


def find_by_filename(root: Part, filename: str) -> Part | None:
    """Return the first part named ``filename`` (case-insensitive), not looking inside messages."""
    return find_by_filenames(root, filename).get(filename)
