"""Virus scanning at submission (SPEC §2.6): the original is scanned before it is accepted."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.storage import default_storage

from pecmail.certification.models import ProviderLogEntry
from pecmail.mail import pipeline, services, tasks
from pecmail.mail.models import Delivery, Message
from pecmail.transport import scanner
from tests.mail import test_pipeline
from tests.mail.test_pipeline import BOB, assert_signed_by_us, inbox, raw_of

# The Messages pipeline tests' fixtures: submit as alice, and a trust store holding us.
submit = test_pipeline.submit
trust = test_pipeline.trust

EICAR_ATTACHMENT = ("eicar.com", "application/octet-stream", scanner.EICAR)


@pytest.fixture(autouse=True)
def _eicar_scanner(settings):
    settings.PEC_VIRUS_SCANNER = "eicar"


def test_it_refuses_an_infected_submission_with_a_signed_virus_notice(alice, bob, submit, trust):
    sent = submit(attachments=[EICAR_ATTACHMENT])

    assert sent.submission_state == Message.Submission.REFUSED
    assert sent.envelope_sha256 == ""
    assert sent.pec_id != ""
    (notice,) = inbox(alice)
    assert notice.kind == Message.Kind.NON_ACCEPTANCE
    assert notice.related_id == sent.pk
    raw = raw_of(notice)
    assert_signed_by_us(raw, trust)
    assert b"X-VerificaSicurezza: errore" in raw
    assert notice.subject.startswith("AVVISO DI NON ACCETTAZIONE PER VIRUS:")
    daticert = notice.certified_data["daticert"]
    assert (daticert["tipo"], daticert["errore"]) == ("non-accettazione", "virus")
    assert daticert["errore_esteso"] == "Eicar-Test-Signature"
    # Nothing travels: no envelope, no Delivery, nothing in Bob's Inbox.
    assert Delivery.objects.filter(message=sent).exists() is False
    assert inbox(bob).exists() is False
    (entry,) = ProviderLogEntry.objects.filter(event="non-accettazione-virus")
    assert entry.identifier == sent.pec_id
    assert ProviderLogEntry.objects.filter(event__in=["accettazione", "busta-trasporto"]).exists() is False


def test_it_quarantines_the_infected_original(alice, bob, submit):
    sent = submit(attachments=[EICAR_ATTACHMENT])

    original = raw_of(sent)
    sha256 = hashlib.sha256(original).hexdigest()
    month = f"quarantine/{sent.created_at:%Y/%m}"
    with default_storage.open(f"{month}/{sha256}.eml") as kept:
        assert kept.read() == original
    with default_storage.open(f"{month}/{sha256}.txt") as note:
        text = note.read().decode()
    assert "virus: Eicar-Test-Signature" in text
    assert f"pec_id: {sent.pec_id}" in text


def test_it_accepts_and_delivers_a_clean_submission_while_scanning(alice, bob, submit):
    sent = submit()

    assert sent.submission_state == Message.Submission.ACCEPTED
    assert [m.kind for m in inbox(alice)] == [Message.Kind.ACCEPTANCE, Message.Kind.DELIVERY]
    assert Delivery.objects.get(message=sent).state == Delivery.State.DELIVERED
    assert inbox(bob).count() == 1
    assert default_storage.exists("quarantine") is False


def test_it_leaves_the_submission_pending_when_the_scanner_is_unavailable(
    alice, bob, provider, settings, tmp_path
):
    settings.PEC_VIRUS_SCANNER = "clamd"
    settings.PEC_CLAMD_SOCKET = str(tmp_path / "no-clamd.sock")
    sent = services.message_submit(
        mailbox=alice, to=[BOB], cc=[], subject="Fattura", body_text="b", body_html=None, attachments=[]
    )

    with pytest.raises(scanner.ScannerUnavailable):
        pipeline.message_accept(message_id=sent.pk)
    sent.refresh_from_db()
    assert sent.submission_state == Message.Submission.PENDING
    assert sent.pec_id == ""
    assert inbox(alice).exists() is False
    assert Delivery.objects.filter(message=sent).exists() is False
    assert ProviderLogEntry.objects.exists() is False

    # The task retries on ScannerUnavailable; once the scanner answers, the retry accepts.
    assert scanner.ScannerUnavailable in tasks.message_accept.autoretry_for
    settings.PEC_VIRUS_SCANNER = "eicar"
    assert pipeline.message_accept(message_id=sent.pk) == "accepted"
    sent.refresh_from_db()
    assert sent.submission_state == Message.Submission.ACCEPTED


def test_it_retries_the_acceptance_task_while_the_scanner_is_unavailable(
    alice, provider, settings, monkeypatch
):
    sent = services.message_submit(
        mailbox=alice, to=[BOB], cc=[], subject="Fattura", body_text="b", body_html=None, attachments=[]
    )
    answers = [scanner.ScannerUnavailable("clamd: down"), scanner.ScannerUnavailable("clamd: down"), None]

    def flaky_scan(data: bytes) -> str | None:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(scanner, "scan", flaky_scan)
    # Eager Celery runs the retries in place, but only follows them when it does not propagate
    # exceptions (each retry is itself an eager apply() reading this setting).
    monkeypatch.setitem(tasks.app.conf, "task_eager_propagates", False)
    assert tasks.message_accept.apply(args=[sent.pk]).get() == "accepted"
    assert answers == []
    sent.refresh_from_db()
    assert sent.submission_state == Message.Submission.ACCEPTED
