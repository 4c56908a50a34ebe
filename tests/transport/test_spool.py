"""How the database keeps the spooled bytes of received messages (``InboundMessage.raw``)."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL storage setting")
def test_postgresql_keeps_them_out_of_line_uncompressed():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'transport_inboundmessage'::regclass"
            " AND attname = 'raw'"
        )
        assert cursor.fetchone()[0] == "e"  # EXTERNAL
