"""A real ``celery -A pecmail worker`` consumes our broker: the filesystem one, and Redis when set."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def start_worker(env: dict[str, str], queue: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "celery", "-A", "pecmail", "worker", "--pool=solo", "--loglevel=WARNING"]
    argv += ["--without-mingle", "--without-gossip", "--without-heartbeat", "-Q", queue]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop_worker(worker: subprocess.Popen[bytes]) -> str:
    worker.terminate()
    try:
        output, _ = worker.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        output, _ = worker.communicate()
    return output.decode(errors="replace")


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env["PECMAIL_DATA_DIR"] = str(tmp_path / "var")
    env.pop("DATABASE_URL", None)  # the ping task needs no database; keep the worker off the test one
    return env


def ping_through(app: Celery, queue: str, worker: subprocess.Popen[bytes]) -> str:
    """Send the task and wait for its result; a worker that dies fails the test with its log."""
    try:
        result = app.send_task("pecmail.accounts.ping", args=["hello from the test"], queue=queue)
        for _ in range(90):
            if worker.poll() is not None:
                pytest.fail(f"the worker exited with {worker.returncode}", pytrace=False)
            try:
                return result.get(timeout=1)
            except CeleryTimeoutError:
                continue
        pytest.fail("no result from the worker within 90 s", pytrace=False)
    finally:
        print(stop_worker(worker))


def test_it_runs_a_task_on_a_real_worker_over_the_filesystem_broker(tmp_path):
    env = base_env(tmp_path)
    env.pop("REDIS_URL", None)
    env["CELERY_RESULT_BACKEND"] = f"file://{tmp_path / 'results'}"
    (tmp_path / "results").mkdir()
    queue = f"test-{uuid.uuid4().hex}"
    worker = start_worker(env, queue)
    broker_dir = tmp_path / "var" / "broker" / "queue"
    broker_dir.mkdir(parents=True, exist_ok=True)  # the worker creates it too; either may be first
    app = Celery("pecmail-test-producer")
    app.conf.update(
        broker_url="filesystem://",
        broker_transport_options={
            "data_folder_in": str(broker_dir),
            "data_folder_out": str(broker_dir),
            "control_folder": str(broker_dir.parent / "control"),
            "store_processed": False,
        },
        result_backend=env["CELERY_RESULT_BACKEND"],
    )
    assert ping_through(app, queue, worker) == "hello from the test"


@pytest.mark.skipif(not settings.REDIS_URL, reason="REDIS_URL is not set")
def test_it_runs_a_task_on_a_real_worker_over_redis(tmp_path):
    env = base_env(tmp_path)
    env["REDIS_URL"] = settings.REDIS_URL
    env["CELERY_RESULT_BACKEND"] = settings.REDIS_URL
    queue = f"test-{uuid.uuid4().hex}"
    worker = start_worker(env, queue)
    app = Celery("pecmail-test-producer")
    app.conf.update(broker_url=settings.REDIS_URL, result_backend=settings.REDIS_URL)
    assert ping_through(app, queue, worker) == "hello from the test"
