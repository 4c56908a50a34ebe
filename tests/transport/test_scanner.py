"""The virus scanner backends: the built-in EICAR test scanner and a real clamd (INSTREAM)."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from pecmail.transport import scanner
from pecmail.transport.scanner import EICAR, ScannerUnavailable

CLAMD = shutil.which("clamd") or ("/usr/sbin/clamd" if Path("/usr/sbin/clamd").exists() else None)


def with_attachment(payload: bytes) -> bytes:
    encoded = base64.encodebytes(payload)
    return (
        b'From: a@pec-a.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nciao\r\n"
        b'--b\r\nContent-Type: application/octet-stream; name="x.com"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + encoded.replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )


def test_it_finds_nothing_with_the_default_scanner(settings):
    settings.PEC_VIRUS_SCANNER = "none"
    assert scanner.scan(EICAR) is None


def test_it_finds_eicar_in_plain_text_and_in_a_base64_attachment(settings):
    settings.PEC_VIRUS_SCANNER = "eicar"
    assert scanner.scan(b"Subject: x\r\n\r\n" + EICAR + b"\r\n") == "Eicar-Test-Signature"
    assert scanner.scan(with_attachment(EICAR)) == "Eicar-Test-Signature"
    assert scanner.scan(with_attachment(b"harmless")) is None


def test_it_refuses_an_unknown_scanner_name(settings):
    settings.PEC_VIRUS_SCANNER = "nonsense"
    with pytest.raises(ScannerUnavailable):
        scanner.scan(b"x")


def test_it_says_clamd_is_unavailable_rather_than_clean(settings, tmp_path):
    settings.PEC_VIRUS_SCANNER = "clamd"
    settings.PEC_CLAMD_SOCKET = str(tmp_path / "absent.sock")
    with pytest.raises(ScannerUnavailable):
        scanner.scan(EICAR)


@pytest.fixture
def clamd(settings):
    """A real clamd on a unix socket, with a signature database holding only EICAR."""
    if CLAMD is None:
        if os.environ.get("PECMAIL_REQUIRE_CLAMD") == "1":
            pytest.fail("clamd is required here (PECMAIL_REQUIRE_CLAMD=1) but not installed")
        pytest.skip("clamd is not installed (apt-get install clamav-daemon)")
    directory = Path(tempfile.mkdtemp(prefix="clamd-"))
    (directory / "db").mkdir()
    (directory / "db" / "eicar.ndb").write_text(f"Eicar-Test-Signature:0:*:{EICAR.hex()}\n")
    sock = directory / "clamd.sock"
    (directory / "clamd.conf").write_text(
        f"Foreground yes\nDatabaseDirectory {directory / 'db'}\nLocalSocket {sock}\n"
        f"LogFile {directory / 'clamd.log'}\nPidFile {directory / 'clamd.pid'}\n"
    )
    process = subprocess.Popen(
        [CLAMD, "-c", str(directory / "clamd.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (
                (directory / "clamd.log").read_text()
                if (directory / "clamd.log").exists()
                else "clamd exited"
            )
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(str(sock))
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("clamd did not start")
        settings.PEC_VIRUS_SCANNER = "clamd"
        settings.PEC_CLAMD_SOCKET = str(sock)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


def test_it_asks_a_real_clamd(clamd):
    assert scanner.scan(with_attachment(EICAR)) == "Eicar-Test-Signature.UNOFFICIAL"
    assert scanner.scan(with_attachment(b"harmless")) is None
    assert scanner.scan(b"x" * 200_000) is None
