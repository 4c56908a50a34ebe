"""The sending side: dispatch to other providers, receipts coming back, refusals and deadlines."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from pecmail.certification import envelopes, testing
from pecmail.certification.classify import classify
from pecmail.mail import services as mail_services
from pecmail.mail import storage
from pecmail.mail.models import Delivery, Folder, Message
from pecmail.transport import deadlines, services
from pecmail.transport.models import DeliveryDeadline, OutboundMessage, OutboxItem
from pecmail.transport.outbound import outbound_enqueue as outbound_enqueue_real

from .conftest import free_port, register_provider

BOB = "bob@pec-b.test"
CAROL = "carol@pec-b.test"
DAVE = "dave@mail.test"


@pytest.fixture
def provider_b(local_provider):
    identity = testing.make_identity("pec-b.test", "Provider B")
    register_provider(identity)
    return identity


@pytest.fixture
def submit(alice, local_provider, django_capture_on_commit_callbacks):
    def run(**overrides):
        kwargs = {
            "mailbox": alice,
            "to": [BOB, DAVE],
            "cc": [CAROL],
            "subject": "Contratto",
            "body_text": "In allegato.",
            "body_html": None,
            "attachments": [],
        }
        kwargs.update(overrides)
        with django_capture_on_commit_callbacks(execute=True):
            sent = mail_services.message_submit(**kwargs)
        sent.refresh_from_db()
        return sent

    return run


def inbox(mailbox):
    return list(Message.objects.filter(mailbox=mailbox, folder__role=Folder.Role.INBOX).order_by("id"))


def deliveries(sent):
    return {d.recipient: d for d in Delivery.objects.filter(message=sent)}


def feed(raw: bytes, rcpt_tos: list[str], capture) -> None:
    with capture(execute=True):
        services.inbound_store(
            raw=raw, mail_from="posta-certificata@pec-b.test", rcpt_tos=rcpt_tos, publish_on_commit=True
        )


def test_it_sends_the_envelope_per_domain_with_deadlines_only_for_certified_recipients(
    alice, provider_b, routed_sink, submit
):
    sent = submit()
    by_rcpt = {tuple(m["rcpt_tos"]): m for m in routed_sink.messages}
    assert set(by_rcpt) == {(BOB, CAROL), (DAVE,)}
    for message in routed_sink.messages:
        assert message["data"] == _envelope(sent)
        assert message["tls"] is True
    rows = deliveries(sent)
    assert rows[DAVE].certified is False
    assert rows[DAVE].state == Delivery.State.DELIVERED
    assert {d.delivery.recipient for d in DeliveryDeadline.objects.all()} == {BOB, CAROL}
    assert OutboundMessage.objects.filter(state=OutboundMessage.State.SENT).count() == 2


def _envelope(sent):
    return storage.raw_get(sent.envelope_sha256)


def _tx(sent, when):
    result = classify(_envelope(sent))
    return envelopes.Transaction.from_daticert(
        result.daticert, to=list(sent.to_addresses), cc=list(sent.cc_addresses), when=when
    )


def test_it_records_take_charge_on_deliveries_and_files_receipts_for_the_user(
    alice, provider_b, routed_sink, submit, django_capture_on_commit_callbacks
):
    sent = submit(to=[BOB], cc=[CAROL])
    when = timezone.now()
    tx = _tx(sent, when)
    take_charge = envelopes.build_take_charge(
        tx, [BOB, CAROL], identity=provider_b, to="posta-certificata@pec.localhost"
    )
    feed(take_charge.raw, ["posta-certificata@pec.localhost"], django_capture_on_commit_callbacks)
    rows = deliveries(sent)
    assert rows[BOB].taken_in_charge_at is not None
    assert rows[CAROL].taken_in_charge_at is not None
    assert [m.kind for m in inbox(alice)] == [Message.Kind.ACCEPTANCE]

    receipt = envelopes.build_delivery_receipt(
        tx, BOB, "completa", classify(_envelope(sent)).postacert, identity=provider_b
    )
    feed(receipt.raw, [alice.address], django_capture_on_commit_callbacks)
    feed(receipt.raw, [alice.address], django_capture_on_commit_callbacks)
    rows = deliveries(sent)
    assert rows[BOB].state == Delivery.State.DELIVERED
    assert rows[BOB].receipt.kind == Message.Kind.DELIVERY
    assert rows[BOB].receipt.related_id == sent.pk
    assert [m.kind for m in inbox(alice)] == [Message.Kind.ACCEPTANCE, Message.Kind.DELIVERY]
    assert rows[CAROL].state == Delivery.State.QUEUED


def test_it_turns_a_permanent_refusal_into_a_no_dest_notice(alice, provider_b, routed_sink, submit):
    routed_sink.rcpt_replies = {"ghost@pec-b.test": "550 5.1.1 Mailbox unknown"}
    sent = submit(to=["ghost@pec-b.test"], cc=[])
    (row,) = Delivery.objects.filter(message=sent)
    assert row.state == Delivery.State.ERROR
    notice = row.receipt
    assert notice.kind == Message.Kind.DELIVERY_ERROR
    result = classify(storage.raw_get(notice.raw_sha256))
    assert result.daticert.errore == "no-dest"


def test_it_tells_the_user_about_a_virus_found_by_the_other_provider(
    alice, provider_b, routed_sink, submit, django_capture_on_commit_callbacks
):
    sent = submit(to=[BOB], cc=[])
    detection = envelopes.build_virus_detection(
        _tx(sent, timezone.now()),
        BOB,
        "Eicar-Test-Signature",
        identity=provider_b,
        to="posta-certificata@pec.localhost",
    )
    feed(detection.raw, ["posta-certificata@pec.localhost"], django_capture_on_commit_callbacks)
    (row,) = Delivery.objects.filter(message=sent)
    assert row.state == Delivery.State.ERROR
    assert row.receipt.kind == Message.Kind.DELIVERY_ERROR
    raw = storage.raw_get(row.receipt.raw_sha256)
    assert b"X-VerificaSicurezza: errore" in raw


def test_it_emits_each_deadline_notice_once_when_the_peer_is_unreachable(alice, provider_b, submit, settings):
    settings.PEC_ROUTES = {"pec-b.test": f"127.0.0.1:{free_port()}"}
    start = timezone.now()
    sent = submit(to=[BOB], cc=[CAROL])
    assert OutboundMessage.objects.get().state == OutboundMessage.State.QUEUED
    with time_machine.travel(start + dt.timedelta(hours=11, minutes=59), tick=False):
        assert deadlines.deadlines_sweep() == 0
    with time_machine.travel(start + dt.timedelta(hours=12, minutes=1), tick=False):
        assert deadlines.deadlines_sweep() == 2
        assert deadlines.deadlines_sweep() == 0
    # SPEC §2.5: the final notice comes by 24 h but not before 22 h.
    with time_machine.travel(start + dt.timedelta(hours=21, minutes=59), tick=False):
        assert deadlines.deadlines_sweep() == 0
    with time_machine.travel(start + dt.timedelta(hours=23, minutes=59), tick=False):
        assert deadlines.deadlines_sweep() == 2
        assert deadlines.deadlines_sweep() == 0
    notices = [
        (m.kind, m.notice_stage, m.recipient) for m in inbox(alice) if m.kind != Message.Kind.ACCEPTANCE
    ]
    assert sorted(notices) == sorted(
        [
            (Message.Kind.TIMEOUT, "12h", BOB),
            (Message.Kind.TIMEOUT, "12h", CAROL),
            (Message.Kind.TIMEOUT, "24h", BOB),
            (Message.Kind.TIMEOUT, "24h", CAROL),
        ]
    )
    assert {d.state for d in deliveries(sent).values()} == {Delivery.State.TIMEOUT}
    # Each recipient's Delivery points at its final (24 h) notice.
    assert {d.receipt.notice_stage for d in deliveries(sent).values()} == {"24h"}


def test_it_sends_only_the_final_notice_after_a_take_charge(
    alice, provider_b, submit, settings, django_capture_on_commit_callbacks
):
    settings.PEC_ROUTES = {"pec-b.test": f"127.0.0.1:{free_port()}"}
    start = timezone.now()
    sent = submit(to=[BOB], cc=[])
    Delivery.objects.filter(message=sent).update(taken_in_charge_at=start)
    with time_machine.travel(start + dt.timedelta(hours=25), tick=False):
        assert deadlines.deadlines_sweep() == 1
    assert [(m.kind, m.notice_stage) for m in inbox(alice)] == [
        (Message.Kind.ACCEPTANCE, ""),
        (Message.Kind.TIMEOUT, "24h"),
    ]


def test_it_sends_a_row_whose_handoff_a_crash_lost_with_the_retry_sweep(
    alice, provider_b, routed_sink, submit, monkeypatch
):
    """The after-commit handoff is lost (as in a crash); the committed row is the outbox entry."""
    from pecmail.transport import outbound

    monkeypatch.setattr(outbound, "outbound_handoff", lambda ids: None)
    submit(to=[BOB], cc=[])
    monkeypatch.undo()
    assert routed_sink.messages == []
    row = OutboundMessage.objects.get()
    assert row.state == OutboundMessage.State.QUEUED
    assert not OutboxItem.objects.filter(task_name="transport.outbound_send").exists()
    assert outbound.outbound_retry_due() == 0  # not overdue yet: the handoff may still come
    with time_machine.travel(timezone.now() + outbound.sweep_grace() + dt.timedelta(seconds=1), tick=False):
        assert outbound.outbound_retry_due() == 1
    assert len(routed_sink.messages) == 1
    row.refresh_from_db()
    assert row.state == OutboundMessage.State.SENT


class _WorkerRequest:
    is_eager = False


class _WorkerTask:
    request = _WorkerRequest()


@pytest.fixture
def in_worker(monkeypatch):
    """Run the handoff as inside a worker task, recording what it publishes instead of sending it."""
    import celery

    from pecmail.transport import outbound, tasks

    published = []
    monkeypatch.setattr(outbound, "_reached", {})
    monkeypatch.setattr(tasks.outbound_send, "apply_async", lambda **kw: published.append(kw))
    monkeypatch.setattr(celery, "current_task", _WorkerTask())
    return published


def test_a_worker_sends_inline_to_a_peer_it_reached_lately_and_publishes_for_others(
    alice, provider_b, routed_sink, submit, in_worker
):
    """Cold peer: the task sends (a hanging connect must not hold the acceptance); warm: inline."""
    from pecmail.transport import outbound

    submit(to=[BOB], cc=[], subject="Primo")
    (first,) = OutboundMessage.objects.all()
    assert in_worker == [{"kwargs": {"outbound_id": first.pk}, "countdown": None}]
    assert routed_sink.messages == []
    outbound.outbound_send(outbound_id=first.pk)  # what the task does: now the peer is reached
    in_worker.clear()
    submit(to=[BOB], cc=[], subject="Secondo")
    assert in_worker == []
    assert len(routed_sink.messages) == 2
    assert set(OutboundMessage.objects.values_list("state", flat=True)) == {OutboundMessage.State.SENT}
    assert outbound.outbound_retry_due() == 0


def test_a_row_a_worker_sends_inline_is_inserted_claimed_and_a_crash_before_the_send_only_delays_it(
    alice, provider_b, routed_sink, submit, in_worker, monkeypatch
):
    """No claim UPDATE and no read-back for an inline send; if the process dies between the
    commit and the send, the claim expires and the retry sweep sends the row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from pecmail.transport import outbound

    submit(to=[BOB], cc=[], subject="Primo")
    outbound.outbound_send(outbound_id=OutboundMessage.objects.get().pk)  # the peer is reached now
    in_worker.clear()
    with CaptureQueriesContext(connection) as queries:
        submit(to=[BOB], cc=[], subject="Secondo")
    row = OutboundMessage.objects.latest("id")
    assert (row.state, row.attempts) == (OutboundMessage.State.SENT, 1)
    outbound_sql = [q["sql"] for q in queries if "transport_outboundmessage" in q["sql"]]
    # No look for an earlier send of an envelope just signed, no claim: the insert and the result.
    assert [sql.split()[0] for sql in outbound_sql] == ["INSERT", "UPDATE"], outbound_sql
    assert '"claimed_at"' not in outbound_sql[-1]  # the one UPDATE records the result

    with monkeypatch.context() as crash:
        crash.setattr(outbound, "outbound_handoff", lambda rows: None)
        submit(to=[BOB], cc=[], subject="Terzo")  # the "crash": committed and claimed, never sent
    third = OutboundMessage.objects.latest("id")
    assert (third.state, third.attempts) == (OutboundMessage.State.SENDING, 1)
    assert len(routed_sink.messages) == 2 and in_worker == []
    assert outbound.outbound_retry_due() == 0  # the claim still holds
    later = timezone.now() + outbound.claim_lease() + dt.timedelta(seconds=1)
    with time_machine.travel(later, tick=False):
        assert outbound.outbound_retry_due() == 1
        assert in_worker == [{"kwargs": {"outbound_id": third.pk}}]
        assert outbound.outbound_send(outbound_id=third.pk) == OutboundMessage.State.SENT  # the task
    third.refresh_from_db()
    assert (third.state, third.attempts) == (OutboundMessage.State.SENT, 2)
    assert len(routed_sink.messages) == 3


def test_a_worker_hands_a_transient_failure_to_the_task_with_its_backoff_and_cools_the_peer(
    alice, provider_b, routed_sink, submit, settings, in_worker
):
    from pecmail.transport import outbound

    submit(to=[BOB], cc=[], subject="Primo")
    outbound.outbound_send(outbound_id=OutboundMessage.objects.get().pk)
    in_worker.clear()
    settings.PEC_ROUTES = {"pec-b.test": f"127.0.0.1:{free_port()}"}  # the peer is gone: 4xx
    submit(to=[BOB], cc=[], subject="Secondo")
    row = OutboundMessage.objects.latest("id")
    assert row.state == OutboundMessage.State.QUEUED and row.attempts == 1
    assert in_worker == [
        {"kwargs": {"outbound_id": row.pk}, "countdown": int(outbound.backoff(1).total_seconds())}
    ]
    in_worker.clear()
    submit(to=[BOB], cc=[], subject="Terzo")  # no second inline attempt at a peer that just failed
    third = OutboundMessage.objects.latest("id")
    assert third.attempts == 0
    assert in_worker == [{"kwargs": {"outbound_id": third.pk}, "countdown": None}]


def test_the_envelope_and_its_deadlines_are_queued_in_the_transaction_that_accepts_it(
    alice, provider_b, routed_sink, submit, monkeypatch, django_capture_on_commit_callbacks
):
    """A dispatch that fails rolls the acceptance back (nothing accepted without its send and
    deadlines); the pipeline retry then accepts and dispatches once."""
    from pecmail.mail import tasks as mail_tasks
    from pecmail.mail.pipeline import message_accept
    from pecmail.transport import dispatch

    def broken(**kwargs):
        raise OSError("storage unavailable")

    monkeypatch.setattr(dispatch, "outbound_enqueue", broken)
    monkeypatch.setattr(mail_tasks.message_accept, "delay_on_commit", lambda *a, **kw: None)
    sent = submit(to=[BOB], cc=[])
    with pytest.raises(OSError):
        message_accept(message_id=sent.pk)
    sent.refresh_from_db()
    assert (sent.submission_state, sent.pec_id) == (Message.Submission.PENDING, "")
    assert inbox(alice) == [] and not Delivery.objects.filter(message=sent).exists()
    assert not OutboundMessage.objects.exists() and not DeliveryDeadline.objects.exists()

    monkeypatch.setattr(dispatch, "outbound_enqueue", outbound_enqueue_real)
    with django_capture_on_commit_callbacks(execute=True):
        assert message_accept(message_id=sent.pk) == "accepted"
    (row,) = OutboundMessage.objects.all()
    (deadline,) = DeliveryDeadline.objects.all()
    assert deadline.delivery.message_id == sent.pk and row.sent_message_id == sent.pk
    assert [m["rcpt_tos"] for m in routed_sink.messages] == [[BOB]]
    assert [m.kind for m in inbox(alice)] == [Message.Kind.ACCEPTANCE]


def test_an_outbound_batch_hands_its_rows_over_once_after_the_commit_minus_a_rolled_back_savepoint(
    provider_b, routed_sink, django_capture_on_commit_callbacks
):
    from django.db import transaction

    from pecmail.transport.outbound import outbound_batch, outbound_enqueue

    def queue(body: bytes) -> None:
        outbound_enqueue(
            raw=body, mail_from="alice@pec.localhost", recipients=[BOB], kind="posta-certificata"
        )

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        transaction.atomic(),
        outbound_batch(),
    ):
        queue(b"Subject: uno\r\n\r\nUno.\r\n")
        try:
            with transaction.atomic():
                queue(b"Subject: due\r\n\r\nDue.\r\n")
                raise ValueError("rolled back")
        except ValueError:
            pass
        queue(b"Subject: tre\r\n\r\nTre.\r\n")
        assert routed_sink.messages == []
    handoffs = [c for c in callbacks if getattr(c, "__name__", "") == "<lambda>"]
    assert len(handoffs) == 1
    assert [m["data"].split(b"\r\n")[0] for m in routed_sink.messages] == [b"Subject: uno", b"Subject: tre"]
    assert OutboundMessage.objects.count() == 2


def test_when_recording_a_handoff_together_fails_each_send_is_recorded_on_its_own(
    provider_b, routed_sink, django_capture_on_commit_callbacks, in_worker, monkeypatch
):
    """Sent is sent: one bad record must not leave the other rows to be sent again."""
    import time

    from django.db import transaction

    from pecmail.certification.models import ProviderLogEntry
    from pecmail.transport import outbound

    outbound._reached["pec-b.test"] = time.monotonic()
    real_record, calls = outbound._record, []

    def record_failing_once(row, outcome, *, now):
        calls.append(row.pk)
        if len(calls) == 2:
            raise OSError("a moment of trouble")
        return real_record(row, outcome, now=now)

    monkeypatch.setattr(outbound, "_record", record_failing_once)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic(), outbound.outbound_batch():
        for body in (b"Subject: uno\r\n\r\nUno.\r\n", b"Subject: due\r\n\r\nDue.\r\n"):
            outbound.outbound_enqueue(
                raw=body, mail_from="alice@pec.localhost", recipients=[BOB], kind="posta-certificata"
            )
    assert len(routed_sink.messages) == 2 and in_worker == []
    assert len(calls) == 4  # together (the second failed), then one by one
    assert set(OutboundMessage.objects.values_list("state", "attempts")) == {(OutboundMessage.State.SENT, 1)}
    assert ProviderLogEntry.objects.filter(event="smtp-sent").count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_outbound_batch_needs_a_transaction():
    from pecmail.transport.outbound import outbound_batch

    with pytest.raises(RuntimeError, match="inside transaction.atomic"), outbound_batch():
        pass


def test_it_dispatches_a_submission_whose_signal_was_lost(
    alice, provider_b, routed_sink, submit, monkeypatch, django_capture_on_commit_callbacks
):
    from pecmail.mail import pipeline
    from pecmail.transport.dispatch import dispatch_sweep

    monkeypatch.setattr(pipeline.envelope_accepted, "receivers", [])
    sent = submit(to=[BOB], cc=[])
    monkeypatch.undo()
    assert routed_sink.messages == []
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=3), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            assert dispatch_sweep() == 1
        assert dispatch_sweep() == 0
    (message,) = routed_sink.messages
    assert message["data"] == _envelope(sent)


def test_it_retries_an_unreachable_peer_then_gives_up_after_a_day(alice, provider_b, submit, settings):
    from pecmail.transport.outbound import outbound_retry_due

    settings.PEC_ROUTES = {"pec-b.test": f"127.0.0.1:{free_port()}"}
    start = timezone.now()
    submit(to=[BOB], cc=[])
    row = OutboundMessage.objects.get()
    assert (row.state, row.attempts) == (OutboundMessage.State.QUEUED, 1)
    with time_machine.travel(start + dt.timedelta(minutes=5), tick=False):
        assert outbound_retry_due() == 1
    row.refresh_from_db()
    assert (row.state, row.attempts) == (OutboundMessage.State.QUEUED, 2)
    with time_machine.travel(start + dt.timedelta(hours=24, minutes=5), tick=False):
        assert outbound_retry_due() == 1
    row.refresh_from_db()
    assert (row.state, row.attempts) == (OutboundMessage.State.FAILED, 3)


def test_it_files_a_receipt_whose_sent_message_is_gone_once(
    alice, provider_b, routed_sink, submit, django_capture_on_commit_callbacks
):
    sent = submit(to=[BOB], cc=[])
    receipt = envelopes.build_delivery_receipt(
        _tx(sent, timezone.now()), BOB, "sintetica", None, identity=provider_b
    )
    Message.objects.filter(pk=sent.pk).delete()
    feed(receipt.raw, [alice.address], django_capture_on_commit_callbacks)
    feed(receipt.raw, [alice.address], django_capture_on_commit_callbacks)
    kinds = [m.kind for m in inbox(alice)]
    assert kinds.count(Message.Kind.DELIVERY) == 1


def test_accepting_a_submission_queues_its_envelope_without_reading_back_what_it_created(
    alice, provider_b, routed_sink, submit, monkeypatch, django_capture_on_commit_callbacks
):
    """The accepting transaction hands its Delivery rows to dispatch: no read of them, and no
    look for an earlier send of an envelope it has just signed."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from pecmail.mail import tasks as mail_tasks
    from pecmail.mail.pipeline import message_accept

    monkeypatch.setattr(mail_tasks.message_accept, "delay_on_commit", lambda *a, **kw: None)
    sent = submit(to=[BOB], cc=["dave@mail.test"])
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False):
        assert message_accept(message_id=sent.pk) == "accepted"
    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT")]
    assert not [sql for sql in reads if 'FROM "mail_delivery"' in sql]
    assert not [sql for sql in reads if 'FROM "transport_outboundmessage"' in sql]
    rows = {row.domain: row for row in OutboundMessage.objects.all()}
    assert set(rows) == {"pec-b.test", "mail.test"}
    (deadline,) = DeliveryDeadline.objects.all()
    assert deadline.delivery.recipient == BOB  # the esterno recipient gets no deadline
    # A second dispatch (the sweep after a lost signal) finds everything queued already.
    from pecmail.transport.dispatch import envelope_dispatch

    assert envelope_dispatch(message_id=sent.pk) == 0


def pending_to_bob(alice, count: int) -> list[Message]:
    """Submissions whose acceptance tasks have not run yet (a queue behind a busy worker)."""
    from pecmail.mail import tasks as mail_tasks

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mail_tasks.message_accept, "delay_on_commit", lambda *args, **kwargs: None)
        return [
            mail_services.message_submit(
                mailbox=alice,
                to=[BOB],
                cc=[],
                subject=f"Offerta {n}",
                body_text="In allegato.",
                body_html=None,
                attachments=[],
            )
            for n in range(count)
        ]


def test_a_handoff_sends_its_messages_side_by_side_and_records_each(
    alice, provider_b, routed_sink, in_worker, monkeypatch, django_capture_on_commit_callbacks
):
    """A batch of acceptances hands its envelopes over at once on several sessions, so the
    peer's server (each 250 waits for its durable commit) commits them together."""
    import asyncio
    import time

    from pecmail.mail import tasks as mail_tasks
    from pecmail.transport import outbound

    burst = pending_to_bob(alice, 4)
    answering = {"now": 0, "most": 0}
    data = routed_sink.handle_DATA

    async def slow_data(server, session, envelope):  # a peer waiting for its commit
        answering["now"] += 1
        answering["most"] = max(answering["most"], answering["now"])
        await asyncio.sleep(0.3)
        answering["now"] -= 1
        return await data(server, session, envelope)

    monkeypatch.setattr(routed_sink, "handle_DATA", slow_data)
    outbound._reached["pec-b.test"] = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        assert mail_tasks.message_accept(burst[0].pk) == "accepted"
    assert in_worker == []  # all four sent inline, none left to the task
    assert len(routed_sink.messages) == 4
    assert answering["most"] > 1
    rows = OutboundMessage.objects.all()
    assert len(rows) == 4 and {row.state for row in rows} == {OutboundMessage.State.SENT}
    assert {row.attempts for row in rows} == {1}
    for sent in burst:
        assert deliveries(sent)[BOB].state == Delivery.State.QUEUED  # sent, awaiting B's receipts


def test_a_handoff_goes_one_message_after_the_other_with_one_session(
    alice, provider_b, routed_sink, in_worker, monkeypatch, django_capture_on_commit_callbacks, settings
):
    import time

    from pecmail.mail import tasks as mail_tasks
    from pecmail.transport import outbound

    settings.PEC_SMTP_HANDOFF_SESSIONS = 1
    monkeypatch.setattr(outbound, "_handoff_executor", lambda: pytest.fail("no threads for one session"))
    burst = pending_to_bob(alice, 3)
    outbound._reached["pec-b.test"] = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        assert mail_tasks.message_accept(burst[0].pk) == "accepted"
    assert len(routed_sink.messages) == 3
    assert set(OutboundMessage.objects.values_list("state", flat=True)) == {OutboundMessage.State.SENT}
