from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from pecmail.mail.models import Delivery, Folder, Message


def make(mailbox, **fields):
    values = {
        "mailbox": mailbox,
        "folder": Folder.objects.get(mailbox=mailbox, role=Folder.Role.INBOX),
        "raw_sha256": "0" * 64,
        "date": timezone.now(),
    }
    values.update(fields)
    return Message.objects.create(**values)


def test_it_allows_one_receipt_per_message_recipient_and_kind(alice):
    sent = make(alice, kind=Message.Kind.SUBMITTED)
    make(alice, kind=Message.Kind.ACCEPTANCE, related=sent)
    make(alice, kind=Message.Kind.DELIVERY, related=sent, recipient="bob@pec.localhost")
    make(alice, kind=Message.Kind.DELIVERY, related=sent, recipient="carol@pec.localhost")
    for kind, recipient in [(Message.Kind.ACCEPTANCE, ""), (Message.Kind.DELIVERY, "bob@pec.localhost")]:
        with pytest.raises(IntegrityError), transaction.atomic():
            make(alice, kind=kind, related=sent, recipient=recipient)
    # Unlinked messages are not receipts of anything: no limit.
    make(alice, kind=Message.Kind.ACCEPTANCE)
    make(alice, kind=Message.Kind.ACCEPTANCE)


def test_it_allows_one_copy_of_a_certified_message_per_mailbox(alice, bob):
    make(alice, kind=Message.Kind.CERTIFIED, pec_id="opec1.x@pec.localhost")
    make(bob, kind=Message.Kind.CERTIFIED, pec_id="opec1.x@pec.localhost")
    make(alice, kind=Message.Kind.DELIVERY, pec_id="opec1.x@pec.localhost")
    make(alice, kind=Message.Kind.CERTIFIED, pec_id="")
    make(alice, kind=Message.Kind.CERTIFIED, pec_id="")
    with pytest.raises(IntegrityError), transaction.atomic():
        make(alice, kind=Message.Kind.CERTIFIED, pec_id="opec1.x@pec.localhost")


def test_it_allows_one_delivery_row_per_recipient(alice):
    sent = make(alice, kind=Message.Kind.SUBMITTED)
    Delivery.objects.create(message=sent, recipient="bob@pec.localhost")
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(message=sent, recipient="bob@pec.localhost")


def test_it_keeps_receipts_when_the_sent_message_is_deleted(alice):
    sent = make(alice, kind=Message.Kind.SUBMITTED)
    receipt = make(alice, kind=Message.Kind.ACCEPTANCE, related=sent)
    Delivery.objects.create(message=sent, recipient="bob@pec.localhost", receipt=receipt)
    sent.delete()
    receipt.refresh_from_db()
    assert receipt.related is None
    assert Delivery.objects.exists() is False


def test_it_knows_which_kinds_are_receipts(alice):
    assert make(alice, kind=Message.Kind.DELIVERY).is_receipt is True
    assert make(alice, kind=Message.Kind.CERTIFIED).is_receipt is False
    assert make(alice, kind=Message.Kind.SUBMITTED).is_receipt is False
