"""Raw message bytes, byte-exact, in Django default storage, addressed by SHA-256.

Signed bytes are evidence: they are written once under ``raw/<aa>/<sha256>.eml`` and
never rewritten, re-encoded or deleted by the Messages tab.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage

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
    file_put(raw_path(sha256), data)
    return sha256


def file_put(name: str, data: bytes) -> None:
    """Write ``data`` under ``name`` in default storage unless a file has that name already.

    On the local file system the file is on disk when this returns (see ``_file_put``); other
    storages write atomically on their own terms.
    """
    if isinstance(default_storage, FileSystemStorage):
        _file_put(default_storage, name, data)
    elif not default_storage.exists(name):
        saved = default_storage.save(name, ContentFile(data))
        if saved != name:
            # Another writer won the race and storage picked a new name: keep the first copy.
            default_storage.delete(saved)


def _directory_make(fs: FileSystemStorage, directory: str) -> None:
    if fs.directory_permissions_mode is None:
        os.makedirs(directory, exist_ok=True)
    else:
        # As FileSystemStorage does it: makedirs' mode is filtered by the umask.
        old_umask = os.umask(0o777 & ~fs.directory_permissions_mode)
        try:
            os.makedirs(directory, fs.directory_permissions_mode, exist_ok=True)
        finally:
            os.umask(old_umask)
    # The new directories' entries must survive a power cut too (once per prefix, ever): flush
    # each parent up to the storage's root.
    parent = os.path.dirname(directory)
    while len(parent) >= len(fs.location):
        _directory_sync(parent)
        parent = os.path.dirname(parent)


def _directory_sync(directory: str) -> None:
    """Flush a directory's entries to disk (a new name in it survives a power cut)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # a platform that cannot open directories (Windows): nothing to flush
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_put(fs: FileSystemStorage, name: str, data: bytes) -> None:
    """``raw_put`` on the local file system: a temporary file, then a hard link to the final name.

    Every stored message goes through here (SMTP ingest, submissions, receipts), and Django's
    ``Storage.save`` (name validation, a lock, chunked copying) costs seven times as much. The
    link never replaces a file: the first copy stays, and a crash mid-write leaves only a
    temporary file behind, never a truncated message under its digest.

    Durable before it returns: the bytes are flushed before the link, and the directory after
    it. The caller then commits rows that refer to the file (and may empty the spool that held
    the bytes until then), so a power cut after that commit must not lose the file. Without
    the flushes the kernel writes both out only seconds later.
    """
    final = fs.path(name)
    if os.path.exists(final):
        return
    temporary = f"{final}.{uuid.uuid4().hex}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(temporary, flags, 0o666)
    except FileNotFoundError:  # the first message under this prefix
        _directory_make(fs, os.path.dirname(final))
        fd = os.open(temporary, flags, 0o666)
    try:
        if fs.file_permissions_mode is not None:
            os.fchmod(fd, fs.file_permissions_mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, final)
    except FileExistsError:
        pass  # another writer stored the same bytes first
    except OSError:
        # A file system without hard links: an atomic rename (same bytes if it replaces any).
        os.replace(temporary, final)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)
    _directory_sync(os.path.dirname(final))


# A temporary file this old is no write in progress: its writer died (a crash, SIGKILL).
TEMPORARY_MAX_AGE = 3600.0


def raw_temporary_sweep(*, now: float | None = None) -> int:
    """Delete the temporary files ``raw_put`` left behind a crash; return how many.

    Only on the local file system (other storages write atomically) and only files older than
    ``TEMPORARY_MAX_AGE`` seconds, so a write in progress is never touched. The stored
    messages themselves are never deleted here.
    """
    if not isinstance(default_storage, FileSystemStorage):
        return 0
    cutoff = (now if now is not None else time.time()) - TEMPORARY_MAX_AGE
    removed = 0
    try:
        prefixes = list(os.scandir(default_storage.path("raw")))
    except FileNotFoundError:
        return 0
    for prefix in prefixes:
        if not prefix.is_dir(follow_symlinks=False):
            continue
        with os.scandir(prefix.path) as entries:
            for entry in entries:
                if not entry.name.endswith(".tmp") or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    pass  # its writer finished (or another sweep ran) meanwhile
    return removed


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
