"""The 12 h and 24 h timeout notices: one kind (preavviso-errore-consegna), two stages."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction
from django.utils import translation

from pecmail.mail import services
from pecmail.mail.models import Message
from tests.mail import test_pipeline

# The Messages pipeline tests' submit-as-alice fixture.
submit = test_pipeline.submit

RECIPIENT = "mario@pec.altrove.test"

migration = importlib.import_module("pecmail.mail.migrations.0004_message_notice_stage")


def notice(alice, sent, *, kind, stage="", certified_type="preavviso-errore-consegna", recipient=RECIPIENT):
    return services.message_store(
        mailbox=alice,
        raw=f"Subject: AVVISO {kind} {stage}\r\n\r\nx\r\n".encode(),
        kind=kind,
        related=sent,
        recipient=recipient,
        notice_stage=stage,
        certified_data={"type": certified_type},
    )


def test_it_keeps_one_notice_per_stage(alice, bob, submit):
    sent = submit()
    notice(alice, sent, kind=Message.Kind.TIMEOUT, stage="12h")
    notice(alice, sent, kind=Message.Kind.TIMEOUT, stage="24h")
    with pytest.raises(IntegrityError), transaction.atomic():
        notice(alice, sent, kind=Message.Kind.TIMEOUT, stage="24h")
    assert Message.objects.filter(related=sent, kind=Message.Kind.TIMEOUT).count() == 2


def test_it_labels_the_24h_notice_as_a_non_delivery_notice(alice, bob, submit):
    sent = submit()
    warning = notice(alice, sent, kind=Message.Kind.TIMEOUT, stage="12h")
    final = notice(alice, sent, kind=Message.Kind.TIMEOUT, stage="24h")
    with translation.override("it"):
        assert warning.get_kind_display() == "Preavviso di mancata consegna"
        assert final.get_kind_display() == "Avviso di mancata consegna per superamento tempo massimo"
    assert sent.get_kind_display() == "Sent message"


def test_it_refiles_24h_notices_stored_under_the_old_kind(alice, bob, submit):
    sent = submit()
    warning = notice(alice, sent, kind=Message.Kind.TIMEOUT)
    final = notice(alice, sent, kind=Message.Kind.DELIVERY_ERROR)
    refusal = notice(
        alice,
        sent,
        kind=Message.Kind.DELIVERY_ERROR,
        certified_type="errore-consegna",
        recipient="other@pec.altrove.test",
    )

    migration.refile_24h_notices(apps, None)

    for message in (warning, final, refusal):
        message.refresh_from_db()
    assert (warning.kind, warning.notice_stage) == (Message.Kind.TIMEOUT, "12h")
    assert (final.kind, final.notice_stage) == (Message.Kind.TIMEOUT, "24h")
    assert (refusal.kind, refusal.notice_stage) == (Message.Kind.DELIVERY_ERROR, "")
