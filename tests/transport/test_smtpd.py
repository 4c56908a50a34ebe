"""``pec smtpd`` speaks SMTP with the replies the rules define, and stays up after hostile input."""

from __future__ import annotations

import smtplib
import ssl

import pytest
from django.conf import settings
from django.db import OperationalError

from pecmail.transport import services
from pecmail.transport.models import InboundMessage, OutboxItem

from .conftest import RawClient

MESSAGE = b"From: x@pec.example.test\r\nTo: bob\r\nSubject: hi\r\n\r\nhello\r\n"


def addr(local: str) -> str:
    return f"{local}@{settings.PEC_DOMAIN}"


def start_transaction(client: RawClient, rcpt: str) -> None:
    assert client.command("EHLO peer.test").startswith("250")
    assert client.command("MAIL FROM:<sender@peer.test>").startswith("250")
    assert client.command(f"RCPT TO:<{rcpt}>").startswith("250")
    assert client.command("DATA").startswith("354")


def test_it_advertises_starttls_and_size(smtp_server, bob):
    with smtplib.SMTP(*smtp_server) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls") is True
        assert smtp.esmtp_features["size"] == "10000"


def test_it_accepts_a_message_over_starttls_and_commits_row_log_and_outbox_together(smtp_server, bob):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(*smtp_server) as smtp:
        smtp.starttls(context=context)
        refused = smtp.sendmail("sender@peer.test", [bob.address], MESSAGE)
    assert refused == {}
    inbound = InboundMessage.objects.get()
    assert inbound.tls is True
    assert inbound.rcpt_tos == [bob.address]
    assert bytes(inbound.raw) == MESSAGE  # spooled with the row, in the same transaction
    item = OutboxItem.objects.get()
    assert item.task_name == services.TASK_INBOUND_PROCESS
    assert item.kwargs == {"inbound_id": inbound.pk}
    assert item.published_at is None
    from pecmail.certification.models import ProviderLogEntry

    assert ProviderLogEntry.objects.filter(identifier=f"inbound-{inbound.pk}").count() == 1


def test_it_refuses_unknown_mailboxes_and_foreign_domains(smtp_server, bob):
    client = RawClient(*smtp_server)
    client.command("EHLO peer.test")
    client.command("MAIL FROM:<sender@peer.test>")
    assert client.command(f"RCPT TO:<{addr('nobody')}>").startswith("550 5.1.1")
    assert client.command("RCPT TO:<someone@elsewhere.test>").startswith("550 5.7.1")
    assert client.command(f"RCPT TO:<{bob.address}>").startswith("250")
    client.close()


def test_it_answers_452_after_the_maximum_number_of_recipients(smtp_server, alice, bob, charlie):
    client = RawClient(*smtp_server)
    client.command("EHLO peer.test")
    client.command("MAIL FROM:<sender@peer.test>")
    for box in (alice, bob, charlie):
        assert client.command(f"RCPT TO:<{box.address}>").startswith("250")
    assert client.command(f"RCPT TO:<{alice.address}>").startswith("452")
    assert client.command("NOOP").startswith("250")
    client.close()


def test_it_refuses_oversized_data_with_552_and_keeps_serving(smtp_server, bob):
    client = RawClient(*smtp_server)
    start_transaction(client, bob.address)
    client.send(MESSAGE + (b"x" * 70 + b"\r\n") * 200 + b".\r\n")
    assert client.reply().startswith("552")
    assert InboundMessage.objects.count() == 0
    assert client.command("RSET").startswith("250")
    assert client.command("MAIL FROM:<sender@peer.test>").startswith("250")
    assert client.command(f"RCPT TO:<{bob.address}>").startswith("250")
    assert client.command("DATA").startswith("354")
    client.send(MESSAGE + b".\r\n")
    assert client.reply().startswith("250")
    client.close()


def test_it_refuses_a_declared_size_above_the_limit(smtp_server, bob):
    client = RawClient(*smtp_server)
    client.command("EHLO peer.test")
    assert client.command("MAIL FROM:<sender@peer.test> SIZE=20000").startswith("552")
    client.close()


@pytest.mark.parametrize(
    "smuggle",
    [
        b"\n.\n",
        b"\r\n.\n",
        b"\n.\r\n",
        b"\r.\r",
        b"\r\n.\r",
        b"\r.\r\n",
    ],
)
def test_it_refuses_smuggled_end_of_data_sequences(smtp_server, bob, smuggle):
    """The smuggled transaction is neither delivered nor answered; the whole DATA gets 554."""
    client = RawClient(*smtp_server)
    start_transaction(client, bob.address)
    smuggled = (
        b"MAIL FROM:<ceo@bank.test>\r\nRCPT TO:<" + bob.address.encode() + b">\r\nDATA\r\n"
        b"Subject: smuggled\r\n\r\nsmuggled\r\n"
    )
    client.send(MESSAGE + b"body" + smuggle + smuggled + b".\r\n")
    assert client.reply().startswith("554 5.6.0")
    assert client.command("NOOP").startswith("250")
    assert InboundMessage.objects.count() == 0
    client.close()


def test_it_accepts_malformed_mime_for_later_classification(smtp_server, bob):
    """Malformed MIME is not an SMTP error: it is stored and later becomes an anomaly envelope."""
    client = RawClient(*smtp_server)
    start_transaction(client, bob.address)
    client.send(b'Content-Type: multipart/mixed; boundary="\r\n\r\n--nope\r\n\x00\xff garbage\r\n.\r\n')
    assert client.reply().startswith("250")
    assert InboundMessage.objects.count() == 1
    client.close()


def test_it_answers_451_when_the_durable_commit_fails_and_keeps_nothing(smtp_server, bob, monkeypatch):
    def broken(*args, **kwargs):
        raise OperationalError("database is down")

    # Between the inbound rows and their log rows, whichever way the backend appends them.
    monkeypatch.setattr("pecmail.certification.log._chain", broken)
    client = RawClient(*smtp_server)
    start_transaction(client, bob.address)
    client.send(MESSAGE + b".\r\n")
    assert client.reply().startswith("451 4.3.0")
    assert InboundMessage.objects.count() == 0
    assert OutboxItem.objects.count() == 0
    monkeypatch.undo()
    assert client.command("MAIL FROM:<sender@peer.test>").startswith("250")
    assert client.command(f"RCPT TO:<{bob.address}>").startswith("250")
    assert client.command("DATA").startswith("354")
    client.send(MESSAGE + b".\r\n")
    assert client.reply().startswith("250")
    client.close()


def test_it_answers_451_when_the_mailbox_lookup_fails(smtp_server, bob, monkeypatch):
    """Database trouble at RCPT time is transient, never an unknown mailbox."""

    def broken(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(services, "recipient_policy", broken)
    client = RawClient(*smtp_server)
    client.command("EHLO peer.test")
    client.command("MAIL FROM:<sender@peer.test>")
    assert client.command(f"RCPT TO:<{bob.address}>").startswith("451")
    monkeypatch.undo()
    assert client.command(f"RCPT TO:<{bob.address}>").startswith("250")
    client.close()


def test_it_refuses_ordinary_mail_at_data_for_a_mailbox_that_does_not_accept_it(
    smtp_server, bob, alice, local_provider
):
    bob.accept_ordinary_mail = False
    bob.save()
    client = RawClient(*smtp_server)
    start_transaction(client, bob.address)
    client.send(MESSAGE + b".\r\n")
    assert client.reply().startswith("554 5.7.1")
    assert InboundMessage.objects.count() == 0
    client.close()


def test_it_splits_recipients_with_different_policies_into_separate_transactions(
    smtp_server, bob, alice, local_provider
):
    """A recipient that refuses mail from outside PEC never shares a DATA answer with one that accepts it.

    Otherwise one 250 would cover bob too, and the refusal could only be dropped silently.
    """
    bob.accept_ordinary_mail = False
    bob.save()
    client = RawClient(*smtp_server)
    client.command("EHLO peer.test")
    assert client.command("MAIL FROM:<sender@peer.test>").startswith("250")
    assert client.command(f"RCPT TO:<{bob.address}>").startswith("250")
    assert client.command(f"RCPT TO:<{alice.address}>").startswith("452 4.5.3")
    assert client.command("DATA").startswith("354")
    client.send(MESSAGE + b".\r\n")
    assert client.reply().startswith("554 5.7.1")
    # The client sends to alice in a transaction of her own: accepted (she will get an anomaly).
    assert client.command("MAIL FROM:<sender@peer.test>").startswith("250")
    assert client.command(f"RCPT TO:<{alice.address}>").startswith("250")
    assert client.command(f"RCPT TO:<{bob.address}>").startswith("452 4.5.3")
    assert client.command("DATA").startswith("354")
    client.send(MESSAGE + b".\r\n")
    assert client.reply().startswith("250")
    client.close()
    (inbound,) = InboundMessage.objects.all()
    assert inbound.rcpt_tos == [alice.address]


def test_it_takes_anything_for_the_service_address_and_leaves_sorting_to_the_incoming_point(
    smtp_server, bob, local_provider
):
    bob.accept_ordinary_mail = False
    bob.save()
    client = RawClient(*smtp_server)
    client.command("EHLO peer.test")
    assert client.command("MAIL FROM:<sender@peer.test>").startswith("250")
    assert client.command(f"RCPT TO:<{services.service_address()}>").startswith("250")
    # bob refuses mail from outside PEC: not in the same transaction as an address that takes it.
    assert client.command(f"RCPT TO:<{bob.address}>").startswith("452 4.5.3")
    assert client.command("DATA").startswith("354")
    client.send(MESSAGE + b".\r\n")
    assert client.reply().startswith("250")
    client.close()
    (inbound,) = InboundMessage.objects.all()
    assert inbound.rcpt_tos == [services.service_address()]


def test_the_fast_path_parser_agrees_with_aiosmtpd_on_every_path_shape():
    """``PecSMTP._getaddr`` answers as aiosmtpd's own parser does, plain paths or not."""
    from aiosmtpd.smtp import SMTP

    from pecmail.transport.handler import PecHandler
    from pecmail.transport.smtpd import _PLAIN_PATH, PecSMTP

    handler = PecHandler(max_recipients=3, publish=None)
    try:
        ours, theirs = PecSMTP(handler), SMTP(handler)
        ours.local_part_limit = theirs.local_part_limit = 64
        paths = [
            "<alice@pec-a.test>",
            "<alice@pec-a.test> SIZE=100 BODY=8BITMIME",
            "  <a.b+c_d@x-y.z.test>  ",
            "<alice@pec-a.test>\tSMTPUTF8",
            "<alice@pec-a.test> (a comment) SIZE=1",
            "<alice@pec-a.test>SIZE=1",
            "<>",
            "<> SIZE=10",
            "alice@pec-a.test",
            '<"quoted local"@pec-a.test>',
            "<a..b@pec-a.test>",
            "<.a@pec-a.test>",
            "<a.@pec-a.test>",
            "<a@[127.0.0.1]>",
            "<@relay.test:alice@pec-a.test>",
            "<alice@pec-a.test",
            "<alice>",
            "<alice@>",
            "<alice@pec-a..test>",
            "<" + "x" * 65 + "@pec-a.test>",
            "<" + "x" * 64 + "@pec-a.test>",
            "<àlice@pec-a.test>",
            "",
        ]
        fast = [path for path in paths if _PLAIN_PATH.match(path)]
        assert set(paths[:4]) <= set(fast)  # the common shapes do take the fast path
        for path in paths:
            assert ours._getaddr(path) == theirs._getaddr(path), path
    finally:
        handler.close()


def test_it_accepts_mail_for_postmaster_as_every_smtp_server_must(smtp_server, bob, settings):
    """RFC 5321 §4.5.1: postmaster@ each of our domains, in any case, is never refused."""
    client = RawClient(*smtp_server)
    client.command("EHLO peer.test")
    client.command("MAIL FROM:<mailer-daemon@peer.test>")
    assert client.command(f"RCPT TO:<PostMaster@{settings.PEC_DOMAIN}>").startswith("250")
    assert client.command("RCPT TO:<postmaster@elsewhere.test>").startswith("550 5.7.1")  # still no relay
    client.close()
