from __future__ import annotations

import hashlib
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
