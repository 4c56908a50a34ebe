"""An inbound task takes the messages stored after its own, still waiting, into its transaction."""

from __future__ import annotations

import logging
import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from pecmail.certification.log import log_verify
from pecmail.mail import storage
from pecmail.transport import incoming, services, tasks
from pecmail.transport.models import InboundMessage, TakeCharge

from .test_incoming import envelope_from, inbox


def stored_one_by_one(remote_provider, mailboxes) -> list[InboundMessage]:
    """One envelope per mailbox, each committed on its own as pec smtpd does when they come one
    at a time: a task each, none of them run yet (a queue behind busy workers)."""
    rows = []
    for n, mailbox in enumerate(mailboxes):
        request = services.InboundRequest(
            raw=envelope_from(remote_provider, to=[mailbox.address], body=f"Messaggio {n}."),
            mail_from="alice@pec-a.test",
            rcpt_tos=[mailbox.address],
        )
        ((row, item),) = services.inbound_store_many([request])
        assert item.task_name == services.TASK_INBOUND_PROCESS
        rows.append(row)
    return rows


def states(rows) -> list[str]:
    by_pk = dict(InboundMessage.objects.values_list("pk", "state"))
    return [by_pk[row.pk] for row in rows]


def head_locks(queries) -> int:
    return len(
        [q for q in queries if "certification_providerloghead" in q["sql"] and q["sql"].startswith("SELECT")]
    )


def test_the_first_task_processes_the_messages_waiting_behind_it(
    bob, charlie, remote_provider, routed_sink, django_capture_on_commit_callbacks
):
    rows = stored_one_by_one(remote_provider, [bob, charlie, bob])
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=False) as callbacks,
    ):
        assert tasks.inbound_process(inbound_id=rows[1].pk) == "posta-certificata"
    assert states(rows) == ["processed"] * 3
    # One transaction for the three: one lock of the log head (one by one it would be three).
    assert head_locks(queries) == 1
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    # Each still got its own take-charge and delivery receipt.
    assert TakeCharge.objects.count() == 3
    assert len(routed_sink.messages) == 6
    assert len(inbox(bob)) == 2 and len(inbox(charlie)) == 1
    # Their own tasks come later and find nothing left to do.
    for row in (rows[0], rows[2]):
        assert tasks.inbound_process(inbound_id=row.pk) == "skipped"
    assert len(inbox(bob)) == 2 and TakeCharge.objects.count() == 3
    assert log_verify().ok


def test_a_lone_message_is_processed_without_a_batch(bob, remote_provider, routed_sink, monkeypatch):
    (row,) = stored_one_by_one(remote_provider, [bob])
    monkeypatch.setattr(incoming, "_process_chunk", lambda chunk: pytest.fail("no batch for one"))
    assert tasks.inbound_process(inbound_id=row.pk) == "posta-certificata"


def test_a_task_takes_at_most_a_batch(bob, remote_provider, routed_sink, monkeypatch):
    monkeypatch.setattr(incoming, "BATCH_MAX", 2)
    rows = stored_one_by_one(remote_provider, [bob, bob, bob])
    assert tasks.inbound_process(inbound_id=rows[0].pk) == "posta-certificata"
    # Its own and the oldest waiting one; the third waits for its own task.
    assert states(rows) == ["processed", "processed", "received"]
    assert tasks.inbound_process(inbound_id=rows[2].pk) == "posta-certificata"


def test_a_message_that_fails_is_left_out_of_the_batches_after_it(
    bob, charlie, remote_provider, routed_sink, monkeypatch, caplog
):
    """A message that fails every time (its bytes cannot be stored) costs one failed batch,
    holds back none of the others, and is not taken along again; it waits for its own run."""
    first, second = stored_one_by_one(remote_provider, [bob, charlie])
    spooled = bytes(InboundMessage.objects.get(pk=first.pk).raw)
    real_put = storage.raw_put

    def failing_put(data: bytes) -> str:
        if data == spooled:
            raise OSError(28, "No space left on device")
        return real_put(data)

    monkeypatch.setattr(storage, "raw_put", failing_put)
    with caplog.at_level(logging.WARNING, logger="pecmail.transport.incoming"):
        assert tasks.inbound_process(inbound_id=second.pk) == "posta-certificata"
    assert states([first, second]) == ["received", "processed"]
    assert "a batch of 2 inbound messages failed" in caplog.text
    assert bytes(InboundMessage.objects.get(pk=first.pk).raw) == spooled  # nothing lost

    later = stored_one_by_one(remote_provider, [charlie, bob])
    processed: list[int] = []
    real_process = incoming.inbound_process

    def recording(*, inbound_id: int) -> str:
        processed.append(inbound_id)
        return real_process(inbound_id=inbound_id)

    monkeypatch.setattr(incoming, "inbound_process", recording)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pecmail.transport.incoming"):
        assert tasks.inbound_process(inbound_id=later[0].pk) == "posta-certificata"
    assert processed == [later[0].pk, later[1].pk]
    assert "failed" not in caplog.text
    assert states([first, *later]) == ["received", "processed", "processed"]

    # Once the disk has room again, its own run (the retry sweep's) processes it.
    monkeypatch.setattr(storage, "raw_put", real_put)
    assert tasks.inbound_process(inbound_id=first.pk) == "posta-certificata"
    assert [m.kind for m in inbox(bob)] == ["posta-certificata"] * 2
    assert log_verify().ok


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs real concurrent connections (PostgreSQL)"
)
@pytest.mark.django_db(transaction=True)
def test_a_message_another_worker_holds_is_skipped_not_waited_for(bob, charlie, remote_provider, routed_sink):
    rows = stored_one_by_one(remote_provider, [bob, charlie, bob])
    held, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other_worker() -> None:  # its batch holds the oldest row
        try:
            with transaction.atomic():
                list(InboundMessage.objects.select_for_update().filter(pk=rows[0].pk))
                held.set()
                release.wait(30)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(10)
        assert tasks.inbound_process(inbound_id=rows[1].pk) == "posta-certificata"
        assert states(rows) == ["received", "processed", "processed"]
    finally:
        release.set()
        thread.join(timeout=30)
    assert errors == []
    assert tasks.inbound_process(inbound_id=rows[0].pk) == "posta-certificata"
    assert len(inbox(bob)) == 2 and len(inbox(charlie)) == 1
    assert TakeCharge.objects.count() == 3
