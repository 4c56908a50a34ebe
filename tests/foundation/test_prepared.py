"""``pecmail.lib.prepared.PreparedRead`` returns what the ORM returns (both backends)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.db.models import Count, F
from django.test.utils import CaptureQueriesContext

from pecmail.lib.prepared import PreparedRead, PreparedUpdate
from pecmail.mail.models import Folder, Mailbox, Message
from pecmail.mail.services import message_store
from pecmail.mail.usage import mailbox_usage

pytestmark = pytest.mark.django_db

RAW = (
    b"From: Carla <carla@example.test>\r\nTo: alice@pec.localhost\r\nSubject: {n}\r\n"
    b"Date: Mon, 30 Mar 2026 09:00:00 +0200\r\nMessage-ID: <{n}@example.test>\r\n\r\nTesto {n}.\r\n"
)


def store(mailbox: Mailbox, n: int) -> Message:
    return message_store(
        mailbox=mailbox, raw=RAW.replace(b"{n}", str(n).encode()), kind=Message.Kind.ORDINARY
    )


def fields(message: Message) -> dict:
    return {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields}


BY_MAILBOX = PreparedRead(
    lambda mailbox_id, subjects: (
        Message.objects.select_related("mailbox", "folder")
        .filter(mailbox_id=mailbox_id, subject__in=subjects)
        .order_by("-pk")
    )
)


def test_model_rows_equal_the_orm_s_with_their_related_objects_in_one_query(alice, bob):
    mine = [store(alice, n) for n in range(3)]
    store(bob, 1)
    with CaptureQueriesContext(connection) as queries:
        got = BY_MAILBOX(alice.pk, ["0", "2"])
        # select_related objects come with the row: reading them runs no query.
        assert {m.mailbox.address for m in got} == {alice.address}
        assert {m.folder.role for m in got} == {Folder.Role.INBOX}
    assert len(queries) == 1
    orm = list(
        Message.objects.select_related("mailbox", "folder")
        .filter(mailbox_id=alice.pk, subject__in=["0", "2"])
        .order_by("-pk")
    )
    assert [fields(m) for m in got] == [fields(m) for m in orm] == [fields(mine[2]), fields(mine[0])]
    # JSON and date columns come through the ORM's converters.
    assert got[0].to_addresses == ["alice@pec.localhost"] and got[0].date == orm[0].date
    assert all(not m._state.adding and m._state.db == "default" for m in got)


def test_each_call_runs_the_same_statement_with_its_own_values(alice, bob):
    store(alice, 1)
    store(bob, 1)
    built: list = []

    def build(mailbox_id, subjects):  # noqa: ANN001, ANN202
        built.append(subjects)
        return Message.objects.filter(mailbox_id=mailbox_id, subject__in=subjects)

    read = PreparedRead(build)
    with CaptureQueriesContext(connection) as queries:
        first = read(alice.pk, ["1"])
        second = read(bob.pk, ["1"])
        none = read(bob.pk, ["2"])
    assert [m.mailbox_id for m in first] == [alice.pk]
    assert [m.mailbox_id for m in second] == [bob.pk]
    assert none == []
    assert len(queries) == 3 and len(built) == 1
    # A list of another length is another statement; an empty one matches nothing without a query.
    assert {m.subject for m in read(alice.pk, ["1", "2", "3"])} == {"1"}
    assert len(built) == 2
    with CaptureQueriesContext(connection) as queries:
        assert read(alice.pk, []) == []
    assert len(queries) == 0


def test_values_list_rows_flat_in_the_asked_order_and_annotated(alice):
    for n in range(3):
        store(alice, n)
    flat = PreparedRead(lambda pk: Mailbox.objects.filter(pk=pk).values_list("address", flat=True))
    assert flat(alice.pk) == [alice.address]
    assert flat.first(alice.pk + 1000) is None
    swapped = PreparedRead(lambda pk: Mailbox.objects.filter(pk=pk).values_list("quota_bytes", "address"))
    assert swapped(alice.pk) == list(
        Mailbox.objects.filter(pk=alice.pk).values_list("quota_bytes", "address")
    )
    counted = PreparedRead(
        lambda address: (
            Mailbox.objects.filter(address=address).annotate(n=Count("messages")).values_list("address", "n")
        )
    )
    assert counted(alice.address) == [(alice.address, 3)]
    # mailbox_usage reads through one: a subquery annotation of the changes not folded yet.
    assert mailbox_usage(mailbox=alice) == sum(
        Message.objects.filter(mailbox=alice).values_list("size", flat=True)
    )


def test_a_lookup_that_rewrites_its_value_or_an_unsupported_argument_is_refused(alice):
    # contains wraps and escapes its value (LIKE '%…%'): the statement could not take another.
    rewritten = PreparedRead(lambda text: Mailbox.objects.filter(address__contains=text))
    with pytest.raises(TypeError, match="unchanged"):
        rewritten("alice")
    with pytest.raises(TypeError, match="str or int"):
        BY_MAILBOX(True, ["1"])
    with pytest.raises(TypeError, match="mixes"):
        BY_MAILBOX(alice.pk, ["1", 2])


@pytest.mark.django_db(transaction=True)
def test_a_thread_runs_the_read_on_its_own_connection(alice):
    store(alice, 7)
    BY_MAILBOX(alice.pk, ["7"])  # compiled in this thread first
    seen: list = []

    def read() -> None:
        try:
            seen.append([m.subject for m in BY_MAILBOX(alice.pk, ["7"])])
        finally:
            connection.close()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    # Compiled again for the thread's own connection, and right there too.
    assert seen == [["7"]]
    assert [m.subject for m in BY_MAILBOX(alice.pk, ["7"])] == ["7"]


MARK = PreparedUpdate(
    lambda mailbox_id, subjects: Message.objects.filter(mailbox_id=mailbox_id, subject__in=subjects),
    "seen",
    "certified_data",
    "date",
    "folder",
    "signature_valid",
)


def test_an_update_writes_what_queryset_update_writes_and_counts_the_rows(alice, bob):
    mine = [store(alice, n) for n in range(3)]
    theirs = store(bob, 0)
    trash = Folder.objects.get(mailbox=alice, role=Folder.Role.TRASH)
    when = dt.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=dt.UTC)
    values = {"seen": True, "certified_data": {"à": [1, None]}, "date": when, "folder": trash}
    with CaptureQueriesContext(connection) as queries:
        assert MARK(alice.pk, ["0", "1"], **values, signature_valid=True) == 2
    assert len(queries) == 1 and queries[0]["sql"].startswith("UPDATE")
    Message.objects.filter(pk=mine[2].pk).update(**values, signature_valid=True)
    rows = Message.objects.filter(mailbox=alice).values(
        "seen", "certified_data", "date", "folder", "signature_valid"
    )
    assert list(rows) == [{**values, "folder": trash.pk, "signature_valid": True}] * 3
    theirs.refresh_from_db()
    assert not theirs.seen and theirs.folder.role == Folder.Role.INBOX
    # Other values through the same statement, a NULL among them; nothing matched counts 0.
    assert MARK(alice.pk, ["2"], **{**values, "seen": False}, signature_valid=None) == 1
    assert Message.objects.values_list("seen", "signature_valid").get(pk=mine[2].pk) == (False, None)
    assert MARK(alice.pk, ["9"], **values, signature_valid=None) == 0
    assert MARK(alice.pk, [], **values, signature_valid=None) == 0
    # An expression goes through QuerySet.update itself.
    assert MARK(bob.pk, ["0"], **{**values, "seen": F("flagged")}, signature_valid=None) == 1
    with pytest.raises(TypeError, match="values are"):
        MARK(alice.pk, ["0"], seen=True)


def test_a_field_with_its_own_placeholder_binary_bytes_or_null():
    from pecmail.transport.models import InboundMessage

    row = InboundMessage.objects.create(raw_sha256="ab" * 32, raw=b"\x00bytes\xff")
    keep = PreparedUpdate(lambda pk: InboundMessage.objects.filter(pk=pk), "raw", "outcome")
    assert keep(row.pk, raw=b"\x01other", outcome={"n": 1}) == 1
    assert bytes(InboundMessage.objects.get(pk=row.pk).raw) == b"\x01other"
    assert keep(row.pk, raw=None, outcome={}) == 1
    assert InboundMessage.objects.values_list("raw", "outcome").get(pk=row.pk) == (None, {})


def test_the_shapes_kept_are_bounded_and_a_dropped_one_compiles_again(alice):
    from pecmail.lib import prepared

    store(alice, 5)
    read = PreparedRead(
        lambda subjects: Message.objects.filter(subject__in=subjects).values_list("subject", flat=True)
    )
    for length in range(1, prepared.PLANS_MAX + 10):
        assert read(["5", *[f"x{n}" for n in range(length - 1)]]) == ["5"]
        assert len(read._local.plans) <= prepared.PLANS_MAX
    assert read(["5"]) == ["5"]
