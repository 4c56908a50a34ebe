"""`make run`'s supervisor: web, worker with beat and SMTP start together, and Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from pecmail.lib import devserver

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_with(token: str) -> list[int]:
    """PIDs whose environment carries our unique token (the supervisor and all it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if token.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_it_starts_web_worker_with_beat_and_smtp():
    names = {name: argv for name, argv in devserver.commands()}
    assert set(names) == {"web", "worker", "smtp"}
    assert "runserver" in names["web"]
    assert names["worker"][names["worker"].index("-A") + 1] == "pecmail" and "--beat" in names["worker"]
    assert names["smtp"][-3:-1] == ["smtpd", "--bind"]


@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_it_stops_every_process_on_ctrl_c(tmp_path):
    token = f"pecmail-devserver-test-{uuid.uuid4().hex}"
    web = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        PECMAIL_DATA_DIR=str(tmp_path / "var"),
        PECMAIL_WEB_BIND=web,
        PEC_SMTP_BIND=f"127.0.0.1:{free_port()}",
        PECMAIL_TEST_TOKEN=token,
    )
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "pecmail.lib.devserver"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert supervisor.poll() is None, supervisor.communicate()[0].decode(errors="replace")
            try:
                with urllib.request.urlopen(f"http://{web}/accounts/login/", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the web server did not answer within 90 s"
                time.sleep(0.5)  # polling a subprocess for readiness, not timing behaviour
        started = processes_with(token)
        assert len(started) >= 4  # the supervisor, web, worker (and its pool), smtp
        supervisor.send_signal(signal.SIGINT)
        supervisor.wait(timeout=60)
        deadline = time.monotonic() + 30
        while processes_with(token) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_with(token) == []
    finally:
        for pid in processes_with(token):
            os.kill(pid, signal.SIGKILL)
