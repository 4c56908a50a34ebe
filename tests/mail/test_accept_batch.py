"""A burst of submissions is accepted in one transaction by the first task that runs."""

from __future__ import annotations

import logging
import threading

import pytest
from celery._state import task_join_will_block
from django.conf import settings as django_settings
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from pecmail.certification.log import log_verify
from pecmail.certification.models import ProviderLogEntry, ProviderLogHead
from pecmail.mail import pipeline, services, tasks
from pecmail.mail.models import Delivery, Folder, Message
from pecmail.transport import scanner
from tests.conftest import make_mailbox

BOB = f"bob@{django_settings.PEC_DOMAIN}"


def submitted(alice, count, **overrides):
    """``count`` submissions left pending: their tasks are not run (a queue behind a busy worker)."""
    kwargs = {"to": [BOB], "cc": [], "body_text": "Testo.", "body_html": None, "attachments": []}
    kwargs.update(overrides)
    return [services.message_submit(mailbox=alice, subject=f"Raffica {n}", **kwargs) for n in range(count)]


def states(messages):
    return [Message.objects.get(pk=m.pk).submission_state for m in messages]


def acceptances_of(message):
    return Message.objects.filter(related=message, kind=Message.Kind.ACCEPTANCE).count()


def head_locks(queries):
    table = ProviderLogHead._meta.db_table
    return [q["sql"] for q in queries if table in q["sql"] and q["sql"].lstrip().upper().startswith("SELECT")]


def test_the_first_task_accepts_the_submissions_waiting_behind_it(alice, bob, provider):
    (first,) = submitted(alice, 1)
    assert tasks.message_accept(first.pk) == "accepted"  # the log has its head row from here on
    burst = submitted(alice, 5)
    with CaptureQueriesContext(connection) as queries:
        assert tasks.message_accept(burst[2].pk) == "accepted"
    assert states(burst) == [Message.Submission.ACCEPTED] * 5
    # One lock of the log head for all ten rows (acceptance + transport envelope each).
    assert len(head_locks(queries.captured_queries)) == 1
    for sent in burst:
        sent.refresh_from_db()
        assert acceptances_of(sent) == 1
        assert sent.pec_id and sent.envelope_sha256
        assert Delivery.objects.filter(message=sent, recipient=BOB).count() == 1
    events = list(ProviderLogEntry.objects.order_by("seq").values_list("event", "identifier"))
    for sent in burst:
        assert ("accettazione", sent.pec_id) in events and ("busta-trasporto", sent.pec_id) in events
    assert log_verify().ok
    # Each pec_id is its own: one timestamp per submission, not per batch.
    assert len({m.pec_id for m in Message.objects.filter(pk__in=[s.pk for s in burst])}) == 5
    # Their own tasks come later and find nothing left to do, then delivery runs as usual.
    for sent in burst:
        assert tasks.message_accept(sent.pk) == "skipped"
        assert tasks.message_deliver_local(sent.pk) == ["delivered"]
    assert Message.objects.filter(mailbox=bob, folder__role=Folder.Role.INBOX).count() == 5
    assert acceptances_of(burst[0]) == 1


def test_a_lone_submission_is_accepted_without_a_batch(alice, bob, provider, monkeypatch):
    (sent,) = submitted(alice, 1)
    monkeypatch.setattr(pipeline, "_accept_batch", lambda scanned: pytest.fail("no batch for one"))
    assert tasks.message_accept(sent.pk) == "accepted"


def test_a_batch_takes_at_most_accept_batch_max(alice, bob, provider, monkeypatch):
    monkeypatch.setattr(pipeline, "ACCEPT_BATCH_MAX", 3)
    monkeypatch.setattr(pipeline, "_WAITING", type(pipeline._WAITING)(pipeline._WAITING.build))
    burst = submitted(alice, 5)
    assert tasks.message_accept(burst[4].pk) == "accepted"
    # Its own and the two oldest waiting.
    assert states(burst) == ["accepted", "accepted", "pending", "pending", "accepted"]
    assert tasks.message_accept(burst[2].pk) == "accepted"
    assert states(burst) == [Message.Submission.ACCEPTED] * 5


def test_a_submission_failing_inside_a_batch_holds_back_none_of_the_others(alice, bob, provider, monkeypatch):
    burst = submitted(alice, 4)
    broken = burst[1].pk
    accept = pipeline._accept_claimed

    def failing(message_id, **kwargs):
        if message_id == broken:
            raise RuntimeError("a bug in one submission")
        return accept(message_id, **kwargs)

    monkeypatch.setattr(pipeline, "_accept_claimed", failing)
    assert tasks.message_accept(burst[0].pk) == "accepted"
    # The batch was rolled back, then each was accepted on its own: the broken one stays
    # pending for its own task's retries and the sweep, with nothing half-written.
    assert states(burst) == ["accepted", "pending", "accepted", "accepted"]
    assert acceptances_of(burst[1]) == 0
    assert not Delivery.objects.filter(message_id=broken).exists()
    assert log_verify().ok
    for sent in (burst[0], burst[2], burst[3]):
        assert acceptances_of(sent) == 1
    monkeypatch.setattr(pipeline, "_accept_claimed", accept)
    assert tasks.message_accept(broken) == "accepted"
    assert acceptances_of(burst[1]) == 1


def test_a_virus_in_a_batch_is_refused_and_the_others_accepted(alice, bob, provider, settings):
    settings.PEC_VIRUS_SCANNER = "eicar"
    clean = submitted(alice, 2)
    (infected,) = submitted(alice, 1, attachments=[("eicar.com", "application/octet-stream", scanner.EICAR)])
    assert tasks.message_accept(clean[0].pk) == "accepted"
    assert states([*clean, infected]) == ["accepted", "accepted", "refused"]
    notice = Message.objects.get(related=infected, kind=Message.Kind.NON_ACCEPTANCE)
    assert notice.subject.startswith("AVVISO DI NON ACCETTAZIONE PER VIRUS:")
    assert not Delivery.objects.filter(message=infected).exists()


def test_one_the_scanner_cannot_answer_for_is_left_to_its_own_task(
    alice, bob, provider, settings, monkeypatch
):
    settings.PEC_VIRUS_SCANNER = "eicar"
    burst = submitted(alice, 3)
    scan = scanner.scan
    later = burst[2].pk
    raws = {m.pk: Message.objects.get(pk=m.pk).raw_sha256 for m in burst}

    def flaky(data):
        if data == pipeline.storage.raw_get(raws[later]):
            raise scanner.ScannerUnavailable("clamd restarting")
        return scan(data)

    monkeypatch.setattr(scanner, "scan", flaky)
    assert tasks.message_accept(burst[0].pk) == "accepted"
    assert states(burst) == ["accepted", "accepted", "pending"]
    monkeypatch.setattr(scanner, "scan", scan)
    assert tasks.message_accept(later) == "accepted"


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs real concurrent connections (PostgreSQL)"
)
@pytest.mark.django_db(transaction=True)
def test_two_workers_accepting_bursts_at_once_accept_each_submission_once(provider, caplog, monkeypatch):
    """Overlapping batches skip each other's rows (no waiting, no deadlock, no double)."""
    alice = make_mailbox("alice", "Alice Rossi")
    make_mailbox("bob", "Bob Bianchi")
    # Committed for real here: keep the tasks queued, as behind a busy worker. The deliveries
    # the acceptances publish are not run either: an eager task run from several threads at
    # once leaves Celery's process-wide "join would block" flag set for the tests that follow.
    monkeypatch.setattr(tasks.message_accept, "delay_on_commit", lambda *args, **kwargs: None)
    monkeypatch.setattr(tasks.message_deliver_local, "delay_on_commit", lambda *args, **kwargs: None)
    burst = submitted(alice, 24)
    assert states(burst) == [Message.Submission.PENDING] * 24
    errors: list[BaseException] = []
    outcomes: list[str] = []
    barrier = threading.Barrier(3)

    def worker(ids):
        try:
            barrier.wait()
            for pk in ids:
                outcomes.append(tasks.message_accept(pk))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    ids = [m.pk for m in burst]
    threads = [
        threading.Thread(target=worker, args=(ids[0::3],)),
        threading.Thread(target=worker, args=(ids[1::3],)),
        threading.Thread(target=worker, args=(list(reversed(ids[2::3])),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    # No batch ran into another's rows (a unique constraint would have rolled it back).
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert set(outcomes) <= {"accepted", "skipped"}
    assert states(burst) == [Message.Submission.ACCEPTED] * 24
    for sent in burst:
        assert acceptances_of(sent) == 1
        assert Delivery.objects.filter(message=sent).count() == 1
    assert ProviderLogEntry.objects.filter(event="accettazione").count() == 24
    assert log_verify().ok
    assert task_join_will_block() is False


def test_the_envelopes_of_a_batch_go_out_in_one_handoff(
    alice, provider, monkeypatch, django_capture_on_commit_callbacks
):
    from pecmail.transport import outbound
    from pecmail.transport.models import OutboundMessage

    handoffs: list[list[int]] = []
    monkeypatch.setattr(outbound, "outbound_handoff", lambda rows: handoffs.append([r.pk for r in rows]))
    burst = submitted(alice, 3, to=["dave@mail.altrove.test"])
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.message_accept(burst[0].pk) == "accepted"
    rows = list(OutboundMessage.objects.order_by("pk").values_list("pk", flat=True))
    assert len(rows) == 3
    assert handoffs == [rows]
