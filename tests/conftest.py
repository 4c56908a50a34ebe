"""Shared fixtures: three personas (alice and bob have mailboxes, charlie is a stranger)."""

from __future__ import annotations

import os
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
