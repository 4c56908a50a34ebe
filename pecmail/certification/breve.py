"""The brief copy of the original message inside a "breve" delivery receipt (SPEC §2.4).

Every MIME part with a ``name`` (Content-Type) or ``filename`` (Content-Disposition) parameter
is replaced by a ``text/plain`` part named ``<name>.hash`` whose content is the SHA-1 of the
part, 40 lowercase hex characters; an attached ``message/rfc822`` is replaced whole, named or
not. Choice (the RFC is ambiguous, "SHOULD be calculated on base64 encoded parts"): the hash
is taken over the part body bytes exactly as transmitted inside ``postacert.eml`` — for a
base64 attachment that is the base64 text with its CRLF line ends, from the first byte after
the part's blank line to the last byte before the line break that precedes the next boundary.
A sender keeping the message it sent can recompute each hash from those bytes. Everything
else (headers, boundaries, text parts, preamble, epilogue) is copied byte for byte.
S/MIME-encrypted or opaque-signed parts (``application/(x-)pkcs7-mime``) cannot be opened and
are copied whole, so for such an original the brief copy equals the complete one.
"""

from __future__ import annotations

import hashlib
import re

from pecmail.certification import mimebytes

OPAQUE = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
_FIELD_START = re.compile(rb"^[^\s:]+:", re.MULTILINE)


def header_fields(header_bytes: bytes) -> list[tuple[str, bytes]]:
    """Split a header block into (lower-case name, raw field bytes including folding)."""
    fields: list[tuple[str, bytes]] = []
    starts = [m.start() for m in _FIELD_START.finditer(header_bytes)]
    for index, start in enumerate(starts):
        stop = starts[index + 1] if index + 1 < len(starts) else len(header_bytes)
        raw = header_bytes[start:stop]
        name = raw.split(b":", 1)[0].decode("ascii", "replace").strip().lower()
        fields.append((name, raw))
    return fields


def _quoted_filename(name: str) -> str:
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        from urllib.parse import quote

        return "filename*=utf-8''" + quote(name, safe="")
    return 'filename="' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quoted_name(name: str) -> str:
    return _quoted_filename(name).replace("filename", "name", 1)


def _hash_part(part: mimebytes.Part, newline: bytes) -> bytes:
    name = (
        part.filename or ("messaggio.eml" if part.content_type == "message/rfc822" else "allegato")
    ) + ".hash"
    # The PEC rules prescribe SHA-1 for the brief receipt hashes.
    digest = hashlib.sha1(part.body, usedforsecurity=False).hexdigest()
    kept = b"".join(
        raw
        for key, raw in header_fields(part.header_bytes.rstrip(b"\r\n") + newline)
        if not key.startswith("content-")
    )
    if kept and not kept.endswith(b"\n"):
        kept += newline
    headers = (
        f"Content-Type: text/plain; charset=us-ascii; {_quoted_name(name)}",
        f"Content-Disposition: attachment; {_quoted_filename(name)}",
        "Content-Transfer-Encoding: 7bit",
    )
    return (
        kept + newline.join(h.encode("ascii") for h in headers) + newline + newline + digest.encode("ascii")
    )


def _replaceable(part: mimebytes.Part) -> bool:
    if part.content_type in OPAQUE or part.content_type.startswith("multipart/"):
        return False
    return part.content_type == "message/rfc822" or part.filename is not None


def _render(part: mimebytes.Part, is_root: bool, newline: bytes) -> bytes:
    if not is_root and _replaceable(part):
        return _hash_part(part, newline)
    if part.content_type == "message/rfc822" or not part.children:
        if is_root and part.content_type not in OPAQUE and part.filename is not None:
            return _hash_part(part, newline)
        return part.raw
    out = bytearray()
    position = part.start
    for child in part.children:
        out += part.buf[position : child.start]
        out += _render(child, False, newline)
        position = child.end
    out += part.buf[position : part.end]
    return bytes(out)


def brief_copy(original: bytes) -> bytes:
    """Return ``original`` with every named part replaced by its ``.hash`` text part."""
    root = mimebytes.parse(original)
    newline = b"\r\n" if b"\r\n" in original[: root.body_start or len(original)] else b"\n"
    return _render(root, True, newline)
