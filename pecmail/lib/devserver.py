"""Run the whole system for development: web, Celery worker with beat, SMTP in.

Each process is a child of this one; Ctrl-C (or any child exiting) stops them all.
"""

from __future__ import annotations

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


def run() -> int:
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    for name, argv in commands():
        print(f"[devserver] starting {name}: {' '.join(argv[1:])}", flush=True)
        children.append((name, subprocess.Popen(argv, cwd=ROOT, start_new_session=True)))
    web = os.environ.get("PECMAIL_WEB_BIND", "127.0.0.1:8000")
    print(f"\n  pecmail is running: open http://{web}/  (Ctrl-C stops everything)\n", flush=True)
    exit_code = 0
    try:
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
        for _name, child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _name, child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(run())
