"""PostgreSQL connections prepare the statements every message repeats (``DATABASE_PREPARE_THRESHOLD``)."""

from __future__ import annotations

import pytest
from django.db import connection

from pecmail.mail.models import Mailbox

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only (DATABASE_URL)")
def test_a_statement_run_five_times_is_prepared_by_the_server():
    def query() -> None:
        # A statement no other test runs, so this connection has not prepared it before.
        list(Mailbox.objects.filter(address="bob@prepare-check.test", quota_bytes__gte=7).only("id"))

    def prepared() -> bool:
        connection.ensure_connection()
        rows = connection.connection.execute("SELECT statement FROM pg_prepared_statements", prepare=False)
        return any('"mail_mailbox"."quota_bytes" >=' in statement for (statement,) in rows.fetchall())

    assert connection.settings_dict["OPTIONS"].get("prepare_threshold") == 5
    for _ in range(4):
        query()
    assert not prepared()
    for _ in range(2):
        query()
    # The ORM's SELECT now lives on the server as a prepared statement (parsed and planned once).
    assert prepared()
