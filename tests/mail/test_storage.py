from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.files.storage import default_storage

from pecmail.mail import storage


def test_it_stores_bytes_exactly_under_their_sha256():
    data = b"Subject: x\r\n\r\n\x00\xff bare\nLF and CRLF\r\n"
    sha = storage.raw_put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert storage.raw_get(sha) == data
    assert default_storage.exists(f"raw/{sha[:2]}/{sha}.eml") is True


def test_it_is_idempotent_and_never_overwrites():
    data = b"same bytes"
    first = storage.raw_put(data)
    path = storage.raw_path(first)
    mtime = default_storage.get_modified_time(path)
    assert storage.raw_put(data) == first
    assert default_storage.get_modified_time(path) == mtime
    assert default_storage.listdir(f"raw/{first[:2]}")[1] == [f"{first}.eml"]


def test_two_writers_of_the_same_bytes_leave_one_complete_file_and_no_temporary(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    data = b"x" * 100_000
    sha = hashlib.sha256(data).hexdigest()
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda _i: storage.raw_put(data), range(32))) == {sha}
    assert storage.raw_get(sha) == data
    assert sorted(p.name for p in (tmp_path / "raw" / sha[:2]).iterdir()) == [f"{sha}.eml"]


def test_a_leftover_temporary_file_from_a_crash_is_not_taken_for_the_message(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    data = b"complete message"
    sha = hashlib.sha256(data).hexdigest()
    directory = tmp_path / "raw" / sha[:2]
    directory.mkdir(parents=True)
    (directory / f"{sha}.eml.dead.tmp").write_bytes(b"compl")
    with pytest.raises(storage.RawMissing):
        storage.raw_get(sha)
    assert storage.raw_put(data) == sha
    assert storage.raw_get(sha) == data


def test_the_sweep_removes_only_temporary_files_a_crash_left_behind(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    sha = storage.raw_put(b"a stored message")
    directory = tmp_path / "raw" / sha[:2]
    stale = directory / f"{sha}.eml.dead.tmp"
    fresh = directory / f"{sha}.eml.writing.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    now = time.time()
    os.utime(stale, (now - storage.TEMPORARY_MAX_AGE - 60,) * 2)
    # Even an old stored message is never touched.
    os.utime(directory / f"{sha}.eml", (now - 10 * storage.TEMPORARY_MAX_AGE,) * 2)
    assert storage.raw_temporary_sweep(now=now) == 1
    assert sorted(p.name for p in directory.iterdir()) == sorted([f"{sha}.eml", fresh.name])
    assert storage.raw_temporary_sweep(now=now) == 0
    assert storage.raw_get(sha) == b"a stored message"


def test_beat_runs_the_sweep(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    from pecmail.celery import app
    from pecmail.mail.tasks import raw_temporary_sweep

    sha = storage.raw_put(b"x")
    stale = tmp_path / "raw" / sha[:2] / f"{sha}.eml.dead.tmp"
    stale.write_bytes(b"")
    os.utime(stale, (time.time() - storage.TEMPORARY_MAX_AGE - 1,) * 2)
    entry = app.conf.beat_schedule["mail.raw_temporary_sweep"]
    assert entry["task"] == raw_temporary_sweep.name
    assert raw_temporary_sweep() == 1
    assert not stale.exists()


def test_the_sweep_has_nothing_to_do_before_the_first_message(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "empty"
    assert storage.raw_temporary_sweep() == 0


def test_it_raises_rawmissing_for_unknown_or_tampered_bytes():
    with pytest.raises(storage.RawMissing):
        storage.raw_get("0" * 64)
    sha = storage.raw_put(b"original")
    with default_storage.open(storage.raw_path(sha), "wb") as handle:
        handle.write(b"tampered")
    with pytest.raises(storage.RawMissing):
        storage.raw_get(sha)


def test_it_refuses_paths_that_are_not_digests():
    with pytest.raises(ValueError):
        storage.raw_get("../../etc/passwd")


def test_a_stored_file_is_flushed_before_its_name_and_its_name_before_it_returns(
    settings, tmp_path, monkeypatch
):
    """A power cut after the caller commits must not lose the bytes (the spool may be gone)."""
    settings.MEDIA_ROOT = tmp_path
    events: list[tuple[str, str]] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def link(source, target):
        events.append(("link", str(target)))
        return real_link(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    sha = storage.raw_put(b"first message under a new prefix")
    directory = tmp_path / "raw" / sha[:2]
    final = directory / f"{sha}.eml"
    kinds = [
        (kind, path.rsplit(".", 1)[-1] if kind == "fsync" and path.endswith(".tmp") else path)
        for kind, path in events
    ]
    assert kinds == [
        ("fsync", str(tmp_path / "raw")),  # the new prefix directory's entry
        ("fsync", str(tmp_path)),
        ("fsync", "tmp"),  # the bytes, under the temporary name
        ("link", str(final)),
        ("fsync", str(directory)),  # the final name
    ]
    assert storage.raw_get(sha) == b"first message under a new prefix"
