"""Shared fixtures: three personas (alice and bob have mailboxes, charlie is a stranger)."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import Argon2PasswordHasher

from pecmail.mail import services as mail_services
from pecmail.mail.models import Mailbox

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """A test database of this run's own on PostgreSQL: several runs may share one server."""
    for db_settings in django_settings.DATABASES.values():
        if db_settings["ENGINE"] == "django.db.backends.sqlite3":
            continue  # SQLite test databases live in memory, one per process already
        test = db_settings.setdefault("TEST", {})
        test["NAME"] = f"{test.get('NAME') or 'test_' + db_settings['NAME']}_p{os.getpid()}"


class _SerialWSGIServer:
    """Mixin for the live server: one request at a time when the test database is in memory.

    In-memory SQLite gives every live-server request thread the test's one shared connection;
    two requests at once (a page and the compose form's draft autosave, say) then interleave
    their savepoints and one fails with "no such savepoint" (a flaky CI run of the browser
    suite). The lock covers the whole response, body and close() included, so that no
    request's queries overlap another's. PostgreSQL gives each thread its own connection and
    keeps the threaded server as it is.
    """

    _lock = threading.Lock()

    def set_app(self, application):
        lock = self._lock

        def serial(environ, start_response):
            with lock:
                response = application(environ, start_response)
                try:
                    body = list(response)
                finally:
                    close = getattr(response, "close", None)
                    if close is not None:
                        close()
            return body

        super().set_app(serial)


def _serialise_live_server_on_memory_sqlite() -> None:
    from django.test.testcases import LiveServerThread

    database = django_settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3":
        return
    if issubclass(LiveServerThread.server_class, _SerialWSGIServer):
        return  # this conftest was imported twice
    LiveServerThread.server_class = type(
        "SerialThreadedWSGIServer", (_SerialWSGIServer, LiveServerThread.server_class), {}
    )


def pytest_configure(config: pytest.Config) -> None:
    _serialise_live_server_on_memory_sqlite()


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    """Tasks run inline unless a test starts a real worker."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from pecmail.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2 with test-sized costs: production's 100 MiB per hash makes every login test slow."""

    time_cost = 1
    memory_cost = 1024
    parallelism = 1


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["tests.conftest.FastArgon2PasswordHasher", *django_settings.PASSWORD_HASHERS]


@pytest.fixture(autouse=True)
def _no_failed_inbound_leak():
    """The inbound rows whose processing failed are remembered per process (``incoming._failed``),
    by primary key: the next test's database reuses the keys."""
    from pecmail.transport import incoming

    incoming._failed.clear()
    yield
    incoming._failed.clear()


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    """Each test writes raw messages and keys under its own temporary directory."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _no_rate_limit_leak(settings):
    """allauth's rate limits live in the cache: every test gets an empty cache of its own.

    A fresh key prefix (Redis) or a fresh in-memory store (otherwise) rather than a clear():
    other test runs may share the same Redis database or cache directory at the same time.
    """
    if django_settings.REDIS_URL:
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": django_settings.REDIS_URL,
                "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
            }
        }
    else:
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": f"test-{uuid.uuid4().hex}",
            }
        }
    yield


def make_mailbox(local: str, name: str) -> Mailbox:
    return mail_services.mailbox_create(
        address=f"{local}@{django_settings.PEC_DOMAIN}", password=PASSWORD, display_name=name
    )


@pytest.fixture
def alice(db) -> Mailbox:
    return make_mailbox("alice", "Alice Rossi")


@pytest.fixture
def bob(db) -> Mailbox:
    return make_mailbox("bob", "Bob Bianchi")


@pytest.fixture
def charlie(db) -> Mailbox:
    return make_mailbox("charlie", "Charlie Neri")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice.owner)
    return client


@pytest.fixture
def charlie_client(client, charlie):
    client.force_login(charlie.owner)
    return client
