"""``pecmail.lib.rows.rows_insert`` stores exactly what ``bulk_create`` stores (both backends)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pecmail.lib.rows import rows_insert
from pecmail.transport.models import InboundMessage

pytestmark = pytest.mark.django_db

FIELDS = [f.attname for f in InboundMessage._meta.concrete_fields if not f.primary_key]


def instances(tag: str) -> list[InboundMessage]:
    at = dt.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=dt.UTC)
    return [
        InboundMessage(
            raw_sha256="ab" * 32,
            size=2**40 + n,
            mail_from=f"{tag}-{n}@pec-è.test",
            rcpt_tos=["bob@pec.test", "carla@pec.test"][: n + 1],
            peer="::1",
            helo="mx.pec.test",
            tls=bool(n),
            kind="posta-certificata",
            received_at=at + dt.timedelta(hours=n),
            outcome={"nested": {"à": [1, None, True]}, "n": n},
        )
        for n in range(3)
    ]


def stored(pks: list[int]) -> list[dict]:
    rows = InboundMessage.objects.filter(pk__in=pks).order_by("pk").values(*FIELDS)
    return [{**row, "mail_from": row["mail_from"].split("-", 1)[1]} for row in rows]


def test_the_rows_equal_bulk_create_s_and_the_instances_get_their_keys():
    by_orm = InboundMessage.objects.bulk_create(instances("orm"))
    with CaptureQueriesContext(connection) as queries:
        ours = rows_insert(instances("ours"))
    assert len(queries) == 1 and queries[0]["sql"].startswith("INSERT INTO")
    assert all(obj.pk and not obj._state.adding and obj._state.db == "default" for obj in ours)
    assert len({obj.pk for obj in ours}) == 3
    assert stored([obj.pk for obj in ours]) == stored([obj.pk for obj in by_orm])
    # The keys come back in the order of the instances.
    assert [InboundMessage.objects.get(pk=obj.pk).size for obj in ours] == [2**40, 2**40 + 1, 2**40 + 2]


def test_field_defaults_apply_and_nothing_is_inserted_for_no_rows():
    assert rows_insert([]) == []
    (row,) = rows_insert([InboundMessage(raw_sha256="cd" * 32)])
    fresh = InboundMessage.objects.get(pk=row.pk)
    assert fresh.rcpt_tos == [] and fresh.outcome == {} and fresh.state == InboundMessage.State.RECEIVED
    assert fresh.received_at is not None and fresh.processed_at is None


def test_more_rows_than_one_statement_takes_go_in_several():
    objs = [InboundMessage(raw_sha256="ef" * 32, size=n) for n in range(5000)]
    size = connection.ops.bulk_batch_size(
        [f for f in InboundMessage._meta.concrete_fields if not f.primary_key], objs
    )
    with CaptureQueriesContext(connection) as queries:
        rows_insert(objs)
    assert len(queries) == -(-5000 // size)
    assert [InboundMessage.objects.get(pk=obj.pk).size for obj in objs[::997]] == list(range(0, 5000, 997))


def test_row_insert_new_inserts_once_and_reports_a_duplicate_without_a_savepoint(db):
    """The claim pattern: a second insert of the same unique key is a False, not an error, and
    the transaction goes on (on PostgreSQL an IntegrityError would have aborted it)."""
    from django.db import transaction

    from pecmail.lib.rows import row_insert_new
    from pecmail.transport.models import InboundDelivery

    (inbound,) = rows_insert(instances("claim")[:1])

    def claim(recipient: str) -> InboundDelivery:
        return InboundDelivery(
            pec_id="pec-1@pec-a.test", recipient=recipient, inbound=inbound, outcome="pending"
        )

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        first = claim("bob@pec.localhost")
        assert row_insert_new(first, unique=("pec_id", "recipient")) is True
        again = claim("bob@pec.localhost")
        assert row_insert_new(again, unique=("pec_id", "recipient")) is False
        assert again.pk is None
        other = claim("carol@pec.localhost")
        assert row_insert_new(other, unique=("pec_id", "recipient")) is True
    assert [q["sql"].split()[0] for q in queries] == ["INSERT", "INSERT", "INSERT"]
    stored = InboundDelivery.objects.order_by("id")
    assert [(row.pk, row.recipient) for row in stored] == [
        (first.pk, "bob@pec.localhost"),
        (other.pk, "carol@pec.localhost"),
    ]
    assert first.pk is not None and not first._state.adding


@pytest.mark.skipif(connection.vendor != "postgresql", reason="data-modifying WITH queries (PostgreSQL)")
def test_statements_joined_with_with_run_as_one_and_store_what_rows_insert_stores():
    from pecmail.lib.rows import rows_insert_sql, rows_saved, statement_with
    from pecmail.transport.models import OutboxItem

    by_orm = InboundMessage.objects.bulk_create(instances("orm"))
    ours = instances("ours")
    insert, params = rows_insert_sql(ours, returning=True)
    item = OutboxItem(task_name="t", kwargs={"n": 1})
    quiet, quiet_params = rows_insert_sql([item], returning=False)
    assert "RETURNING" not in quiet
    sql, params = statement_with(
        [("inbound", insert, params), ("outbox", quiet, quiet_params)],
        ("SELECT ARRAY(SELECT id FROM inbound ORDER BY id), %s", ["done"]),
    )
    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids, done = cursor.fetchone()
    assert len(queries) == 1 and done == "done"
    rows_saved(ours, ids, using="default")
    assert all(obj.pk and not obj._state.adding for obj in ours)
    assert stored([obj.pk for obj in ours]) == stored([obj.pk for obj in by_orm])
    # The part nothing reads ran all the same; a statement with no parts is the final one alone.
    assert OutboxItem.objects.get().kwargs == {"n": 1}
    assert statement_with([], ("SELECT %s", [1])) == ("SELECT %s", [1])


def test_a_key_set_on_the_instance_is_inserted_as_given(alice):
    """The search document's primary key is its message's: no auto-increment to return."""
    from pecmail.mail.services import message_store
    from pecmail.search.models import MessageSearchDocument
    from pecmail.search.services import document_build

    message = message_store(
        mailbox=alice, raw=b"From: carla@example.test\r\nSubject: Preventivo\r\n\r\nTesto.\r\n"
    )
    MessageSearchDocument.objects.filter(message_id=message.pk).delete()
    document = document_build(message=message)
    (row,) = rows_insert([document])
    assert row.pk == message.pk and not row._state.adding
    stored_fields = MessageSearchDocument.objects.filter(pk=message.pk).values().get()
    assert stored_fields == {
        f.attname: getattr(document, f.attname) for f in MessageSearchDocument._meta.concrete_fields
    }
