"""Run the whole system for development: web, Celery worker with beat, SMTP in.

Each process is a child of this one; Ctrl-C (or any child exiting) stops them all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def commands() -> list[tuple[str, list[str]]]:
    web_bind = os.environ.get("PECMAIL_WEB_BIND", "127.0.0.1:8000")
    smtp_bind = os.environ.get("PEC_SMTP_BIND", "127.0.0.1:2525")
    procs = [
        ("web", [PY, "manage.py", "runserver", web_bind, "--noreload"]),
        (
            "worker",
            [PY, "-m", "celery", "-A", "pecmail", "worker", "--beat", "--loglevel=INFO", "--concurrency=2"],
        ),
    ]
    if (ROOT / "pecmail" / "transport" / "smtpd.py").exists():
        procs.append(("smtp", [PY, "manage.py", "pec", "smtpd", "--bind", smtp_bind]))
    return procs


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run() -> int:
    # Explicit handlers: a shell that starts us in the background makes SIGINT ignored, and
    # a service manager stops us with SIGTERM; either way every child must be stopped too.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    exit_code = 0
    try:
        for name, argv in commands():
            print(f"[devserver] starting {name}: {' '.join(argv[1:])}", flush=True)
            # Own sessions: the terminal's Ctrl-C reaches only us, and we stop the children in order.
            children.append((name, subprocess.Popen(argv, cwd=ROOT, start_new_session=True)))  # noqa: S603
        web = os.environ.get("PECMAIL_WEB_BIND", "127.0.0.1:8000")
        print(f"\n  pecmail is running: open http://{web}/  (Ctrl-C stops everything)\n", flush=True)
        while True:
            for name, child in children:
                code = child.poll()
                if code is not None:
                    print(f"[devserver] {name} exited with {code}; stopping the rest", flush=True)
                    exit_code = code or 1
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not interrupt the shutdown below.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        for _name, child in children:
            if child.poll() is None:
                # The leader only: Celery's main process then stops its own pool cleanly.
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _name, child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # whatever the leader left behind
    return exit_code


if __name__ == "__main__":
    raise SystemExit(run())
