"""The certification pipeline for local submissions: acceptance, envelope, delivery, receipts."""

from __future__ import annotations

import hashlib

import pytest
import time_machine
from django.conf import settings as django_settings

from pecmail.certification import smime, testing
from pecmail.certification.models import ProviderLogEntry
from pecmail.mail import pipeline, services, storage, tasks
from pecmail.mail.models import Delivery, Folder, Message
from tests.conftest import make_mailbox

DOMAIN = django_settings.PEC_DOMAIN
BOB = f"bob@{DOMAIN}"
CAROL = f"carol@{DOMAIN}"
GHOST = f"ghost@{DOMAIN}"
OUTSIDE = "mario@pec.altrove.test"


@pytest.fixture
def carol(db):
    return make_mailbox("carol", "Carol Verdi")


@pytest.fixture
def trust(provider):
    return testing.trust_store_for(provider)


@pytest.fixture
def submit(alice, provider, django_capture_on_commit_callbacks):
    """Submit as alice and run every task the commit enqueues (eagerly)."""

    def run(**overrides):
        kwargs = {
            "mailbox": alice,
            "to": [BOB],
            "cc": [],
            "subject": "Fattura 42",
            "body_text": "In allegato la fattura.",
            "body_html": "<p>In allegato la <b>fattura</b>.</p>",
            "attachments": [("fattura.pdf", "application/pdf", b"%PDF-1.4 fattura")],
        }
        kwargs.update(overrides)
        with django_capture_on_commit_callbacks(execute=True):
            sent = services.message_submit(**kwargs)
        sent.refresh_from_db()
        return sent

    return run


def inbox(mailbox):
    return Message.objects.filter(mailbox=mailbox, folder__role=Folder.Role.INBOX).order_by("id")


def raw_of(message):
    return storage.raw_get(message.raw_sha256)


def assert_signed_by_us(raw, trust):
    result = smime.verify(raw, trust=trust)
    assert result.signed is True
    assert result.valid is True, result.problems
    assert result.trusted is True, result.problems


def test_it_accepts_delivers_and_receipts_to_and_cc(alice, bob, carol, submit, trust):
    sent = submit(to=[BOB], cc=[CAROL], priority_high=True)
    assert sent.kind == Message.Kind.SUBMITTED
    assert sent.folder.role == Folder.Role.SENT
    assert sent.submission_state == Message.Submission.ACCEPTED
    assert sent.pec_id != ""

    receipts = list(inbox(alice))
    assert [(r.kind, r.recipient, r.receipt_type) for r in receipts] == [
        (Message.Kind.ACCEPTANCE, "", ""),
        (Message.Kind.DELIVERY, BOB, "completa"),
        (Message.Kind.DELIVERY, CAROL, "sintetica"),
    ]
    for receipt in receipts:
        assert receipt.related_id == sent.pk
        assert receipt.pec_id == sent.pec_id
        assert receipt.signature_valid is True
        assert_signed_by_us(raw_of(receipt), trust)

    envelope = storage.raw_get(sent.envelope_sha256)
    assert_signed_by_us(envelope, trust)
    for mailbox in (bob, carol):
        (delivered,) = inbox(mailbox)
        assert delivered.kind == Message.Kind.CERTIFIED
        assert raw_of(delivered) == envelope
        assert delivered.subject == "Fattura 42"
        assert delivered.from_address == alice.address
        assert delivered.priority_high is True
        assert delivered.attachment_count == 1
        assert delivered.pec_id == sent.pec_id
        assert delivered.signature_valid is True
        assert delivered.certified_data["daticert"]["identificativo"] == sent.pec_id

    deliveries = {d.recipient: d for d in Delivery.objects.filter(message=sent)}
    assert {r: (d.header, d.state, d.certified) for r, d in deliveries.items()} == {
        BOB: ("to", Delivery.State.DELIVERED, True),
        CAROL: ("cc", Delivery.State.DELIVERED, True),
    }
    assert deliveries[BOB].receipt == receipts[1]
    assert deliveries[CAROL].receipt == receipts[2]
    assert deliveries[BOB].delivered_at is not None

    events = ProviderLogEntry.objects.filter(identifier=sent.pec_id).values_list("event", flat=True)
    assert sorted(events) == ["accettazione", "busta-trasporto"]
    related = [e for e in ProviderLogEntry.objects.all() if sent.pec_id in e.related_ids]
    assert sorted((e.event, tuple(e.recipients)) for e in related) == [
        ("avvenuta-consegna", (BOB,)),
        ("avvenuta-consegna", (CAROL,)),
    ]


def test_it_stores_the_built_original_byte_exact(alice, bob, submit, monkeypatch):
    built = []
    original_build = services.original_build

    def spy(**kwargs):
        raw, msgid = original_build(**kwargs)
        built.append(raw)
        return raw, msgid

    monkeypatch.setattr(services, "original_build", spy)
    sent = submit()
    assert hashlib.sha256(raw_of(sent)).hexdigest() == hashlib.sha256(built[0]).hexdigest()
    assert sent.size == len(built[0])


def test_it_puts_the_original_inside_the_envelope_with_the_pec_id(alice, bob, submit):
    sent = submit(confidential=True)
    (delivered,) = inbox(bob)
    from pecmail.certification.classify import classify

    postacert = classify(raw_of(delivered)).postacert
    assert postacert is not None
    assert f"Message-ID: <{sent.pec_id}>".encode() in postacert
    assert f"X-Riferimento-Message-ID: <{sent.client_msgid}>".encode() in postacert
    assert b"Sensitivity: Company-Confidential" in postacert
    assert delivered.confidential is True


def test_it_sends_a_no_dest_notice_for_an_unknown_local_mailbox(alice, bob, submit, trust):
    sent = submit(to=[BOB, GHOST])
    deliveries = {d.recipient: d for d in Delivery.objects.filter(message=sent)}
    assert deliveries[BOB].state == Delivery.State.DELIVERED
    ghost = deliveries[GHOST]
    assert ghost.state == Delivery.State.ERROR
    assert ghost.error != ""
    assert ghost.receipt.kind == Message.Kind.DELIVERY_ERROR
    assert ghost.receipt.related_id == sent.pk
    assert ghost.receipt.recipient == GHOST
    assert_signed_by_us(raw_of(ghost.receipt), trust)
    notice = ghost.receipt.certified_data["daticert"]
    assert (notice["tipo"], notice["errore"]) == ("errore-consegna", "no-dest")


def test_it_leaves_other_domains_queued_for_transport(alice, submit, monkeypatch):
    announced = []

    def receiver(sender, message_id, remote_recipients, **kwargs):
        announced.append((message_id, remote_recipients))

    # Only this test's receiver: what transport does next is the transport tests' business.
    monkeypatch.setattr(pipeline.envelope_accepted, "receivers", [])
    pipeline.envelope_accepted.connect(receiver, weak=False)
    sent = submit(to=[OUTSIDE])
    (delivery,) = Delivery.objects.filter(message=sent)
    assert (delivery.recipient, delivery.state, delivery.certified) == (OUTSIDE, Delivery.State.QUEUED, False)
    assert delivery.receipt is None
    assert announced == [(sent.pk, [OUTSIDE])]
    assert [m.kind for m in inbox(alice)] == [Message.Kind.ACCEPTANCE]
    assert sent.envelope_sha256 != ""
    # Running local delivery does not touch a remote recipient.
    assert tasks.delivery_local(delivery.pk) == "skipped"
    assert Delivery.objects.get(pk=delivery.pk).state == Delivery.State.QUEUED


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        pytest.param({"to": [], "cc": [BOB]}, "Nessun destinatario", id="no-to"),
        pytest.param({"rcpt": [BOB, CAROL]}, "non presenti nei campi", id="rcpt-not-in-to-cc"),
        pytest.param({"bcc": [CAROL]}, "copia nascosta", id="bcc"),
        pytest.param(
            {"to": ["not-an-address"]}, "Indirizzo non valido: not-an-address", id="invalid-address"
        ),
    ],
)
def test_it_refuses_a_submission_failing_a_formal_check(alice, bob, submit, trust, overrides, reason):
    sent = submit(**overrides)
    assert_refused(alice, bob, sent, trust)
    assert reason in inbox(alice).get().certified_data["daticert"]["errore_esteso"]


def assert_refused(alice, bob, sent, trust):
    assert sent.submission_state == Message.Submission.REFUSED
    assert sent.envelope_sha256 == ""
    (notice,) = inbox(alice)
    assert notice.kind == Message.Kind.NON_ACCEPTANCE
    assert notice.related_id == sent.pk
    assert_signed_by_us(raw_of(notice), trust)
    assert notice.certified_data["daticert"]["tipo"] == "non-accettazione"
    assert notice.certified_data["daticert"]["errore_esteso"] != ""
    assert Delivery.objects.filter(message=sent).exists() is False
    assert inbox(bob).exists() is False


def test_it_refuses_oversize_submissions(alice, bob, submit, trust, settings):
    settings.PEC_MAX_TOTAL_SIZE = 2000
    sent = submit(attachments=[("big.bin", "application/octet-stream", b"x" * 1500)], cc=[f"dan@{DOMAIN}"])
    assert_refused(alice, bob, sent, trust)
    assert "Dimensione" in inbox(alice).get().certified_data["daticert"]["errore_esteso"]


def test_it_refuses_too_many_recipients(alice, bob, submit, trust, settings):
    settings.PEC_MAX_RECIPIENTS = 1
    sent = submit(cc=[CAROL])
    assert_refused(alice, bob, sent, trust)
    assert "Troppi destinatari" in inbox(alice).get().certified_data["daticert"]["errore_esteso"]


def test_it_refuses_a_sender_other_than_the_mailbox(alice, bob, provider, trust):
    raw = (
        f"From: {BOB}\r\nTo: {BOB}\r\nSubject: forged\r\nMessage-ID: <x@y>\r\n"
        "Date: Fri, 27 Nov 2026 21:00:00 +0100\r\n\r\nbody\r\n"
    ).encode()
    sent = services.message_store(
        mailbox=alice,
        raw=raw,
        kind=Message.Kind.SUBMITTED,
        folder=Folder.objects.get(mailbox=alice, role=Folder.Role.SENT),
        to_addresses=[BOB],
        submission_state=Message.Submission.PENDING,
    )
    assert pipeline.message_accept(message_id=sent.pk) == "refused"
    sent.refresh_from_db()
    assert_refused(alice, bob, sent, trust)
    assert "Il mittente" in inbox(alice).get().certified_data["daticert"]["errore_esteso"]


def test_it_changes_nothing_when_every_task_runs_twice(alice, bob, carol, submit):
    sent = submit(to=[BOB, GHOST], cc=[CAROL])

    def snapshot():
        return (
            sorted(Message.objects.values_list("mailbox_id", "kind", "recipient", "raw_sha256")),
            sorted(Delivery.objects.values_list("recipient", "state", "receipt_id")),
        )

    before = snapshot()
    assert tasks.message_accept(sent.pk) == "skipped"
    assert tasks.message_deliver_local(sent.pk) == []
    for delivery in Delivery.objects.filter(message=sent):
        assert tasks.delivery_local(delivery.pk) == "skipped"
    assert snapshot() == before


def test_it_runs_accept_twice_before_delivery_without_duplicates(alice, bob, provider):
    # No on-commit execution here: the test drives the tasks by hand, twice each.
    sent = services.message_submit(
        mailbox=alice, to=[BOB], cc=[], subject="s", body_text="b", body_html=None, attachments=[]
    )
    assert tasks.message_accept(sent.pk) == "accepted"
    assert tasks.message_accept(sent.pk) == "skipped"
    assert tasks.message_deliver_local(sent.pk) == ["delivered"]
    assert tasks.message_deliver_local(sent.pk) == []
    assert inbox(bob).count() == 1
    assert [m.kind for m in inbox(alice)] == [Message.Kind.ACCEPTANCE, Message.Kind.DELIVERY]


def test_it_delivers_an_envelope_once_per_mailbox(alice, bob, submit):
    sent = submit()
    envelope = storage.raw_get(sent.envelope_sha256)
    (first,) = pipeline.envelope_deliver_local(raw=envelope, recipients=[BOB])
    (second,) = pipeline.envelope_deliver_local(raw=envelope, recipients=[BOB.upper()])
    assert first.outcome == second.outcome == "delivered"
    assert first.message == second.message == inbox(bob).get()
    (missing,) = pipeline.envelope_deliver_local(raw=envelope, recipients=[GHOST])
    assert (missing.outcome, missing.message) == ("no-dest", None)


def test_it_sends_a_draft_with_its_attachment_and_deletes_it(
    alice, bob, provider, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    draft = services.draft_save(
        mailbox=alice,
        to=f"Bob <{BOB}>",
        subject="Dalla bozza",
        body_html="<p>Ciao</p>",
        receipt_type="breve",
        attachments=[SimpleUploadedFile("nota.txt", b"nota", content_type="text/plain")],
    )
    with django_capture_on_commit_callbacks(execute=True):
        sent = services.draft_send(draft=draft)
    sent.refresh_from_db()
    assert sent.receipt_type == "breve"
    assert sent.has_html is True
    assert sent.attachment_count == 1
    assert sent.submission_state == Message.Submission.ACCEPTED
    assert alice.drafts.exists() is False
    receipt = inbox(alice).get(kind=Message.Kind.DELIVERY)
    assert receipt.receipt_type == "breve"
    assert receipt.certified_data["daticert"]["consegna"] == BOB


def test_it_sweeps_submissions_and_deliveries_whose_task_was_lost(
    alice, bob, provider, django_capture_on_commit_callbacks
):
    # Submitted without running the on-commit publish: as if the process died right after commit.
    with time_machine.travel("2026-11-27 10:00:00+00:00", tick=False):
        sent = services.message_submit(
            mailbox=alice, to=[BOB], cc=[], subject="perso", body_text="b", body_html=None, attachments=[]
        )
    with time_machine.travel("2026-11-27 10:01:00+00:00", tick=False):
        assert pipeline.pipeline_sweep() == {"accepted": 0, "delivered": 0}
    with time_machine.travel("2026-11-27 10:03:00+00:00", tick=False):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert pipeline.pipeline_sweep() == {"accepted": 1, "delivered": 0}
        # Run only the re-enqueued acceptance, not the delivery it publishes in turn.
        assert tasks.message_accept(sent.pk) == "accepted"
        assert len(callbacks) == 1
        with django_capture_on_commit_callbacks(execute=True):
            assert pipeline.pipeline_sweep() == {"accepted": 0, "delivered": 1}
        assert inbox(bob).count() == 1
        assert Delivery.objects.get(message=sent).state == Delivery.State.DELIVERED
        assert pipeline.pipeline_sweep() == {"accepted": 0, "delivered": 0}


def test_it_sends_a_mailbox_full_notice_when_the_quota_would_be_exceeded(alice, bob, carol, submit, trust):
    bob.quota_bytes = 1000
    bob.save()
    sent = submit(to=[BOB], cc=[CAROL])
    deliveries = {d.recipient: d for d in Delivery.objects.filter(message=sent)}
    assert deliveries[CAROL].state == Delivery.State.DELIVERED
    full = deliveries[BOB]
    assert full.state == Delivery.State.ERROR
    assert "casella piena" in full.error
    assert full.receipt.kind == Message.Kind.DELIVERY_ERROR
    assert_signed_by_us(raw_of(full.receipt), trust)
    notice = full.receipt.certified_data["daticert"]
    assert (notice["errore"], notice["consegna"]) == ("altro", BOB)
    assert inbox(bob).exists() is False


def test_it_certifies_non_ascii_subjects_and_names(alice, bob, submit, trust):
    alice.display_name = "Niccolò Àlfieri"
    alice.save()
    sent = submit(subject="Perché la fattura € ✓", body_text="Città", body_html=None)
    (delivered,) = inbox(bob)
    assert delivered.subject == "Perché la fattura € ✓"
    assert delivered.from_name == "Niccolò Àlfieri"
    receipt = inbox(alice).get(kind=Message.Kind.DELIVERY)
    assert receipt.certified_data["daticert"]["oggetto"] == "Perché la fattura € ✓"
    assert_signed_by_us(raw_of(receipt), trust)
    assert sent.subject == "Perché la fattura € ✓"
