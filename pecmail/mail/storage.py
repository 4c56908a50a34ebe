"""Raw message bytes, byte-exact, in Django default storage, addressed by SHA-256.

Signed bytes are evidence: they are written once under ``raw/<aa>/<sha256>.eml`` and
never rewritten, re-encoded or deleted by the Messages tab.
"""

from __future__ import annotations

import hashlib
import re

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

_SHA256 = re.compile(r"\A[0-9a-f]{64}\Z")


class RawMissing(LookupError):
    """No stored bytes under that digest (or they no longer match it)."""


def raw_path(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise ValueError("not a SHA-256 hex digest")
    return f"raw/{sha256[:2]}/{sha256}.eml"


def raw_put(data: bytes) -> str:
    """Store ``data`` and return its SHA-256 hex digest; storing the same bytes twice is a no-op."""
    sha256 = hashlib.sha256(data).hexdigest()
    path = raw_path(sha256)
    if not default_storage.exists(path):
        saved = default_storage.save(path, ContentFile(data))
        if saved != path:
            # Another writer won the race and storage picked a new name: keep the first copy.
            default_storage.delete(saved)
    return sha256


def raw_get(sha256: str) -> bytes:
    """Return the stored bytes for ``sha256``; RawMissing if absent or not matching the digest."""
    path = raw_path(sha256)
    try:
        with default_storage.open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise RawMissing(sha256) from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RawMissing(f"{sha256}: stored bytes do not match their digest")
    return data
