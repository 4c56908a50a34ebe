"""The Incoming Point: envelopes from another provider become take-charge, delivery and receipts."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from pecmail.certification import envelopes, testing
from pecmail.certification.classify import classify
from pecmail.certification.index import trust_store
from pecmail.mail.models import Folder, Message
from pecmail.transport import incoming, services
from pecmail.transport.models import InboundDelivery, TakeCharge
from tests.conftest import make_mailbox

from .conftest import register_provider

DOMAIN = django_settings.PEC_DOMAIN


@pytest.fixture
def carol(db):
    return make_mailbox("carol", "Carol Verdi")


def original(*, to: list[str], cc: list[str], body: str = "Buongiorno.") -> bytes:
    headers = [
        "From: Alice Rossi <alice@pec-a.test>",
        f"To: {', '.join(to)}",
        *([f"Cc: {', '.join(cc)}"] if cc else []),
        "Subject: Contratto",
        "Message-ID: <client-1@pec-a.test>",
        "Date: Fri, 27 Nov 2026 10:00:00 +0100",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


def envelope_from(identity, *, to: list[str], cc: list[str] = (), body: str = "Buongiorno.") -> bytes:
    when = timezone.now()
    raw = original(to=list(to), cc=list(cc), body=body)
    tx = envelopes.Transaction.from_message(
        raw, pec_id=envelopes.new_pec_id(identity.domain, when), when=when
    )
    return envelopes.build_transport_envelope(tx, raw, identity=identity).raw


def receive(raw: bytes, rcpt_tos: list[str], capture) -> None:
    """Store as pec smtpd does and run everything the commit publishes."""
    with capture(execute=True):
        services.inbound_store(
            raw=raw, mail_from="alice@pec-a.test", rcpt_tos=rcpt_tos, publish_on_commit=True
        )


def inbox(mailbox):
    return list(Message.objects.filter(mailbox=mailbox, folder__role=Folder.Role.INBOX).order_by("id"))


def test_it_takes_charge_once_delivers_and_receipts_each_recipient(
    bob, carol, remote_provider, routed_sink, django_capture_on_commit_callbacks
):
    raw = envelope_from(remote_provider, to=[bob.address], cc=[carol.address])
    receive(raw, [bob.address, carol.address], django_capture_on_commit_callbacks)
    local_trust = trust_store()
    results = [(classify(m["data"], trust=local_trust), m["rcpt_tos"]) for m in routed_sink.messages]
    kinds = [(r.kind, r.valid, rcpt) for r, rcpt in results]
    assert kinds == [
        ("presa-in-carico", True, ["posta-certificata@pec-a.test"]),
        ("avvenuta-consegna", True, ["alice@pec-a.test"]),
        ("avvenuta-consegna", True, ["alice@pec-a.test"]),
    ]
    assert results[0][0].daticert.ricezione == [bob.address, carol.address]
    assert [r.receipt_type for r, _ in results[1:]] == ["completa", "sintetica"]
    for box in (bob, carol):
        (message,) = inbox(box)
        assert message.kind == Message.Kind.CERTIFIED
        assert message.signature_valid is True


def test_it_does_nothing_twice_when_a_peer_resends_the_same_envelope(
    bob, remote_provider, routed_sink, django_capture_on_commit_callbacks
):
    raw = envelope_from(remote_provider, to=[bob.address])
    receive(raw, [bob.address], django_capture_on_commit_callbacks)
    receive(raw, [bob.address], django_capture_on_commit_callbacks)
    assert len(inbox(bob)) == 1
    assert TakeCharge.objects.count() == 1
    assert InboundDelivery.objects.count() == 1
    assert len(routed_sink.messages) == 2


@pytest.mark.parametrize("forgery", ["one-byte", "untrusted-ca", "unsigned", "foreign-from-domain"])
def test_it_wraps_what_is_not_valid_pec_in_an_anomaly_envelope_without_receipts(
    bob, remote_provider, routed_sink, django_capture_on_commit_callbacks, forgery
):
    if forgery == "one-byte":
        raw = envelope_from(remote_provider, to=[bob.address], body="Pagare 100 euro.")
        raw = raw.replace(b"Pagare 100 euro", b"Pagare 900 euro", 1)
    elif forgery == "untrusted-ca":
        impostor = testing.make_identity("pec-a.test", "Provider A", ca_name="impostor CA")
        raw = envelope_from(impostor, to=[bob.address])
    elif forgery == "foreign-from-domain":
        # Trusted signer, but it does not manage the domain its envelope comes From.
        stranger = testing.make_identity("pec-x.test", "Provider X")
        register_provider(stranger, domain="pec-other.test")
        raw = envelope_from(stranger, to=[bob.address])
    else:
        raw = original(to=[bob.address], cc=[])
    receive(raw, [bob.address], django_capture_on_commit_callbacks)
    (message,) = inbox(bob)
    assert message.kind == Message.Kind.ANOMALY
    assert routed_sink.messages == []
    assert TakeCharge.objects.count() == 0


def test_it_keeps_ordinary_mail_from_a_mailbox_that_refuses_it(
    bob, remote_provider, routed_sink, django_capture_on_commit_callbacks
):
    bob.accept_ordinary_mail = False
    bob.save()
    assert (
        services.inbound_admission(raw=original(to=[bob.address], cc=[]), rcpt_tos=[bob.address]).accept
        is False
    )
    valid = envelope_from(remote_provider, to=[bob.address])
    assert services.inbound_admission(raw=valid, rcpt_tos=[bob.address]).accept is True


def test_it_reports_a_virus_to_the_sender_provider_and_quarantines(
    bob, remote_provider, routed_sink, django_capture_on_commit_callbacks, settings
):
    from django.core.files.storage import default_storage

    from pecmail.transport.scanner import EICAR

    settings.PEC_VIRUS_SCANNER = "eicar"
    raw = envelope_from(remote_provider, to=[bob.address], body=EICAR.decode())
    receive(raw, [bob.address], django_capture_on_commit_callbacks)
    assert inbox(bob) == []
    kinds = [(classify(m["data"], trust=trust_store()).kind, m["rcpt_tos"]) for m in routed_sink.messages]
    assert kinds == [
        ("presa-in-carico", ["posta-certificata@pec-a.test"]),
        ("rilevazione-virus", ["posta-certificata@pec-a.test"]),
    ]
    (row,) = InboundDelivery.objects.all()
    assert row.outcome == InboundDelivery.Outcome.VIRUS
    _dirs, files = default_storage.listdir(f"quarantine/{timezone.now():%Y/%m}")
    assert len([f for f in files if f.endswith(".eml")]) == 1


def test_it_is_idempotent_when_the_processing_task_runs_again(
    bob, remote_provider, routed_sink, django_capture_on_commit_callbacks
):
    raw = envelope_from(remote_provider, to=[bob.address])
    receive(raw, [bob.address], django_capture_on_commit_callbacks)
    inbound = services.InboundMessage.objects.get()
    services.InboundMessage.objects.filter(pk=inbound.pk).update(state="received")
    with django_capture_on_commit_callbacks(execute=True):
        incoming.inbound_process(inbound_id=inbound.pk)
    assert len(inbox(bob)) == 1
    assert len(routed_sink.messages) == 2


def test_a_failure_after_the_take_charge_leaves_nothing_half_done_and_a_rerun_does_it_all_once(
    bob, carol, remote_provider, routed_sink, django_capture_on_commit_callbacks, monkeypatch
):
    """Take-charge, deliveries, receipts, log rows and the processed mark commit together."""
    from pecmail.certification.models import ProviderLogEntry
    from pecmail.transport.models import OutboundMessage

    raw = envelope_from(remote_provider, to=[bob.address], cc=[carol.address])
    inbound, _item = services.inbound_store(
        raw=raw, mail_from="alice@pec-a.test", rcpt_tos=[bob.address, carol.address]
    )
    logged = ProviderLogEntry.objects.count()
    real = incoming.delivery_receipt_build
    calls = []

    def fail_on_the_second(**kwargs):
        calls.append(kwargs["recipient"])
        if len(calls) == 2:
            raise OSError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(incoming, "delivery_receipt_build", fail_on_the_second)
    with pytest.raises(OSError), django_capture_on_commit_callbacks(execute=True):
        incoming.inbound_process(inbound_id=inbound.pk)
    assert services.InboundMessage.objects.get(pk=inbound.pk).state == "received"
    assert not TakeCharge.objects.exists() and not InboundDelivery.objects.exists()
    assert not OutboundMessage.objects.exists() and routed_sink.messages == []
    assert inbox(bob) == [] and inbox(carol) == []
    assert ProviderLogEntry.objects.count() == logged

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        assert incoming.inbound_process(inbound_id=inbound.pk) == "posta-certificata"
    assert services.InboundMessage.objects.get(pk=inbound.pk).state == "processed"
    assert len(inbox(bob)) == 1 and len(inbox(carol)) == 1
    assert TakeCharge.objects.count() == 1 and len(routed_sink.messages) == 3
    events = list(
        ProviderLogEntry.objects.filter(seq__gt=logged)
        .exclude(event="smtp-sent")
        .order_by("seq")
        .values_list("event", flat=True)
    )
    assert events == ["presa-in-carico", "avvenuta-consegna", "avvenuta-consegna"]
    from pecmail.certification.log import log_verify

    assert log_verify().ok


def test_the_log_head_is_locked_once_per_envelope_at_the_end_of_its_transaction(
    bob, carol, remote_provider, routed_sink, django_capture_on_commit_callbacks
):
    """Not held while messages are stored and receipts signed: other writers wait for a commit only."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    raw = envelope_from(remote_provider, to=[bob.address], cc=[carol.address])
    inbound, _item = services.inbound_store(
        raw=raw, mail_from="alice@pec-a.test", rcpt_tos=[bob.address, carol.address]
    )
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False):
        incoming.inbound_process(inbound_id=inbound.pk)
    sql = [q["sql"] for q in queries]
    head = [i for i, q in enumerate(sql) if "certification_providerloghead" in q]
    assert len(head) == 2  # one locking read, one update
    after = [q for q in sql[head[0] :] if not q.startswith(("SAVEPOINT", "RELEASE"))]
    if connection.vendor == "postgresql":  # the rows and the head's move are one statement there
        assert "certification_providerlogentry" in after[1] and "certification_providerloghead" in after[1]
        rest = after[2:]
    else:
        assert "certification_providerlogentry" in after[1]
        assert "certification_providerloghead" in after[2]
        rest = after[3:]
    assert "transport_inboundmessage" in rest[0] and rest[0].startswith("UPDATE")
    assert len(rest) == 1 or rest[1] == "COMMIT"


def test_spooled_bytes_that_do_not_match_their_digest_are_not_processed(bob, remote_provider, routed_sink):
    """A damaged spool is reported, not delivered: the row waits, bytes and all, for the operator."""
    from pecmail.mail import storage

    raw = envelope_from(remote_provider, to=[bob.address])
    inbound, _item = services.inbound_store(raw=raw, mail_from="alice@pec-a.test", rcpt_tos=[bob.address])
    damaged = raw.replace(b"Buongiorno", b"Buonasera")
    services.InboundMessage.objects.filter(pk=inbound.pk).update(raw=damaged)
    with pytest.raises(storage.RawMissing, match="do not match"):
        incoming.inbound_process(inbound_id=inbound.pk)
    row = services.InboundMessage.objects.get(pk=inbound.pk)
    assert row.state == "received" and bytes(row.raw) == damaged
    assert inbox(bob) == [] and routed_sink.messages == []
    with pytest.raises(storage.RawMissing):  # and nothing was stored under any digest
        storage.raw_get(hashlib.sha256(damaged).hexdigest())


def test_it_processes_again_later_when_the_scanner_was_unavailable(
    bob, remote_provider, routed_sink, django_capture_on_commit_callbacks, settings, tmp_path
):
    """A scanner outage is not "clean": the message waits and is processed by the retry sweep."""
    import time_machine

    from pecmail.transport.incoming import inbound_retry_due
    from pecmail.transport.scanner import ScannerUnavailable

    settings.PEC_VIRUS_SCANNER = "clamd"
    settings.PEC_CLAMD_SOCKET = str(tmp_path / "down.sock")
    raw = envelope_from(remote_provider, to=[bob.address])
    with pytest.raises(ScannerUnavailable):
        receive(raw, [bob.address], django_capture_on_commit_callbacks)
    inbound = services.InboundMessage.objects.get()
    assert inbound.state == "received"
    assert inbox(bob) == []
    settings.PEC_VIRUS_SCANNER = "none"
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=6), tick=False):
        assert inbound_retry_due() == 1
    inbound.refresh_from_db()
    assert inbound.state == "processed"
    assert len(inbox(bob)) == 1


def test_it_takes_charge_of_each_part_of_an_envelope_split_over_two_transactions(
    bob, carol, remote_provider, routed_sink, django_capture_on_commit_callbacks
):
    raw = envelope_from(remote_provider, to=[bob.address, carol.address])
    receive(raw, [bob.address], django_capture_on_commit_callbacks)
    receive(raw, [carol.address, bob.address], django_capture_on_commit_callbacks)
    take_charges = [
        r.daticert.ricezione
        for r in (classify(m["data"], trust=trust_store()) for m in routed_sink.messages)
        if r.kind == "presa-in-carico"
    ]
    assert take_charges == [[bob.address], [carol.address]]
    assert len(inbox(bob)) == 1
    assert len(inbox(carol)) == 1


def test_it_wraps_malformed_mime_in_an_anomaly_envelope(
    bob, local_provider, django_capture_on_commit_callbacks
):
    raw = b'Content-Type: multipart/mixed; boundary="\r\n\r\n--nope\r\n\x00\xff garbage\r\n'
    receive(raw, [bob.address], django_capture_on_commit_callbacks)
    (message,) = inbox(bob)
    assert message.kind == Message.Kind.ANOMALY


def store_batch(remote_provider, mailboxes):
    """One envelope per mailbox, stored in one group commit as pec smtpd does: (requests,
    [(row, outbox item)], the one outbox item that processes them all)."""
    requests = [
        services.InboundRequest(
            raw=envelope_from(remote_provider, to=[mailbox.address], body=f"Messaggio {n}."),
            mail_from="alice@pec-a.test",
            rcpt_tos=[mailbox.address],
        )
        for n, mailbox in enumerate(mailboxes)
    ]
    stored = services.inbound_store_many(requests)
    (item,) = {outbox_item.pk: outbox_item for _row, outbox_item in stored}.values()
    return requests, stored, item


def test_a_batch_task_processes_every_message_and_a_failure_holds_back_none(
    bob, carol, remote_provider, routed_sink, django_capture_on_commit_callbacks, monkeypatch
):
    """``pec smtpd`` publishes one task per group commit; one unreadable message spoils nothing."""
    from pecmail.mail import storage
    from pecmail.transport import tasks
    from pecmail.transport.models import InboundMessage

    requests, stored, item = store_batch(remote_provider, [bob, carol, bob])
    assert item.task_name == services.TASK_INBOUND_PROCESS_MANY
    # Storage fails for the middle message (a full disk): it must wait for the retry sweep.
    broken = stored[1][0]
    real_put = storage.raw_put

    def failing_put(data: bytes) -> str:
        if data == requests[1].raw:
            raise OSError(28, "No space left on device")
        return real_put(data)

    monkeypatch.setattr(storage, "raw_put", failing_put)
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = tasks.inbound_process_many(**item.kwargs)
    assert outcomes.get("failed") == 1
    rows = {row.pk: row for row in InboundMessage.objects.all()}
    for done in (stored[0][0], stored[2][0]):
        # Processed: the bytes moved from the spool into storage.
        assert rows[done.pk].state == InboundMessage.State.PROCESSED and rows[done.pk].raw is None
        assert storage.raw_get(done.raw_sha256) == requests[stored.index((done, item))].raw
    assert rows[broken.pk].state == InboundMessage.State.RECEIVED
    assert bytes(rows[broken.pk].raw) == requests[1].raw  # still spooled, nothing lost
    assert [m.kind for m in inbox(bob)] == [Message.Kind.CERTIFIED, Message.Kind.CERTIFIED]
    assert inbox(carol) == []

    monkeypatch.setattr(storage, "raw_put", real_put)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.inbound_process(inbound_id=broken.pk) == "posta-certificata"
    assert [m.kind for m in inbox(carol)] == [Message.Kind.CERTIFIED]
    assert storage.raw_get(broken.raw_sha256) == requests[1].raw


class _WorkerRequest:
    is_eager = False


class _WorkerTask:
    request = _WorkerRequest()


def test_a_batch_is_processed_in_one_transaction_with_one_lock_of_the_log_head(
    bob, carol, remote_provider, routed_sink, django_capture_on_commit_callbacks, monkeypatch
):
    """In a worker that reached the peer lately, the receipts of the whole batch then go out in
    one handoff, their answers recorded in one more transaction."""
    import time

    import celery
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from pecmail.transport import outbound

    monkeypatch.setattr(celery, "current_task", _WorkerTask())
    monkeypatch.setattr(outbound, "_reached", {"pec-a.test": time.monotonic()})

    from pecmail.certification.log import log_verify
    from pecmail.transport import tasks
    from pecmail.transport.models import OutboundMessage

    _requests, _stored, item = store_batch(remote_provider, [bob, carol, bob])
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=False) as callbacks,
    ):
        assert tasks.inbound_process_many(**item.kwargs) == {"posta-certificata": 3}
    head = [q["sql"] for q in queries if "certification_providerloghead" in q["sql"]]
    assert len(head) == 2  # one locking read and one update for the whole batch
    assert routed_sink.messages == []  # the receipts go out after the commit
    with CaptureQueriesContext(connection) as queries:
        for callback in callbacks:
            callback()
    assert len(routed_sink.messages) == 6  # a take-charge and a delivery receipt each
    # ... in one handoff: six answers recorded in one transaction, one lock of the log head.
    assert len([q for q in queries if "certification_providerloghead" in q["sql"]]) == 2
    assert len([q for q in queries if q["sql"].startswith('UPDATE "transport_outboundmessage"')]) == 6
    assert set(OutboundMessage.objects.values_list("state", flat=True)) == {OutboundMessage.State.SENT}
    assert len(inbox(bob)) == 2 and len(inbox(carol)) == 1
    assert set(services.InboundMessage.objects.values_list("state", flat=True)) == {"processed"}
    assert log_verify().ok


def test_the_smtpd_writer_merges_the_rows_of_several_commits_into_one_task(
    bob, carol, remote_provider, routed_sink, django_capture_on_commit_callbacks
):
    """What queued between two paced publishes reaches the workers as one Celery message."""
    from celery.signals import task_prerun

    from pecmail.transport.smtpd import _publish_unmarked

    items = []
    for n, mailbox in enumerate([bob, carol, bob]):
        request = services.InboundRequest(
            raw=envelope_from(remote_provider, to=[mailbox.address], body=f"Messaggio {n}."),
            mail_from="alice@pec-a.test",
            rcpt_tos=[mailbox.address],
        )
        ((_row, item),) = services.inbound_store_many([request])
        items.append(item)
    assert [item.task_name for item in items] == [services.TASK_INBOUND_PROCESS] * 3
    runs: list[tuple[str, dict]] = []

    def record(sender=None, kwargs=None, **_extra):
        if sender.name.startswith("transport.inbound_process"):  # not the receipts it sends on
            runs.append((sender.name, kwargs))

    task_prerun.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert _publish_unmarked(items) == 3
    finally:
        task_prerun.disconnect(record)
    assert runs == [
        (services.TASK_INBOUND_PROCESS_MANY, {"inbound_ids": [item.kwargs["inbound_id"] for item in items]})
    ]
    assert [m.kind for m in inbox(bob)] == [Message.Kind.CERTIFIED, Message.Kind.CERTIFIED]
    assert [m.kind for m in inbox(carol)] == [Message.Kind.CERTIFIED]


def test_mail_for_postmaster_reaches_the_postmaster_mailboxes_in_an_anomaly_envelope(
    bob, carol, remote_provider, routed_sink, django_capture_on_commit_callbacks, settings
):
    settings.PEC_POSTMASTER = [bob.address, carol.address.upper()]
    postmaster = f"postmaster@{django_settings.PEC_DOMAIN}"
    receive(original(to=[postmaster], cc=[]), [postmaster], django_capture_on_commit_callbacks)
    for mailbox in (bob, carol):
        (message,) = inbox(mailbox)
        assert message.kind == Message.Kind.ANOMALY
    assert routed_sink.messages == []


def test_mail_for_postmaster_without_a_postmaster_mailbox_is_kept_for_the_operator(
    bob, remote_provider, routed_sink, django_capture_on_commit_callbacks, settings, caplog
):
    settings.PEC_POSTMASTER = []
    postmaster = f"postmaster@{django_settings.PEC_DOMAIN}"
    receive(original(to=[postmaster], cc=[]), [postmaster], django_capture_on_commit_callbacks)
    (inbound,) = services.InboundMessage.objects.all()
    assert inbound.state == services.InboundMessage.State.PROCESSED
    assert inbound.outcome["recipients"] == {postmaster: "no-postmaster"}
    assert "PEC_POSTMASTER names no mailbox" in caplog.text
    assert Message.objects.count() == 0
    from pecmail.mail import storage

    assert storage.raw_get(inbound.raw_sha256)  # the bytes are kept
