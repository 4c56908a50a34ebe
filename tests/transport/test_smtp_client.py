"""The SMTP client: opportunistic STARTTLS and a verdict per recipient."""

from __future__ import annotations

from pecmail.transport.outbound import _try_routes, smtp_deliver
from pecmail.transport.routing import Route

from .conftest import free_port

RAW = b"From: a@pec-a.test\r\nTo: x@mail.test\r\nSubject: t\r\n\r\n.leading dot\r\nbody\r\n"


def test_it_uses_starttls_when_offered_and_keeps_the_bytes(sink):
    handler, port = sink
    outcome = smtp_deliver(
        route=Route("127.0.0.1", port), mail_from="a@pec-a.test", recipients=["x@mail.test"], raw=RAW
    )
    assert list(outcome.accepted) == ["x@mail.test"]
    (message,) = handler.messages
    assert message["tls"] is True
    assert message["data"] == RAW


def test_it_separates_permanent_and_transient_refusals(sink):
    handler, port = sink
    handler.rcpt_replies = {
        "gone@mail.test": "550 5.1.1 no such user",
        "busy@mail.test": "451 4.2.0 try later",
    }
    outcome = smtp_deliver(
        route=Route("127.0.0.1", port),
        mail_from="a@pec-a.test",
        recipients=["x@mail.test", "gone@mail.test", "busy@mail.test"],
        raw=RAW,
    )
    assert list(outcome.accepted) == ["x@mail.test"]
    assert outcome.permanent["gone@mail.test"][0] == 550
    assert outcome.transient["busy@mail.test"][0] == 451


def test_it_turns_a_refused_data_into_a_verdict_for_every_accepted_recipient(sink):
    handler, port = sink
    handler.data_reply = "554 5.7.1 rejected"
    outcome = smtp_deliver(
        route=Route("127.0.0.1", port), mail_from="a@pec-a.test", recipients=["x@mail.test"], raw=RAW
    )
    assert outcome.accepted == {}
    assert outcome.permanent["x@mail.test"][0] == 554


def test_it_treats_an_unreachable_server_as_transient():
    outcome = _try_routes(
        [Route("127.0.0.1", free_port())], mail_from="a@pec-a.test", recipients=["x@mail.test"], raw=RAW
    )
    assert outcome.transient["x@mail.test"][0] == 421
    assert outcome.accepted == {}


def test_it_sends_recipients_deferred_with_452_in_a_further_transaction(
    smtp_server, bob, alice, local_provider
):
    """pecmail's own server keeps recipients with different policies apart; nobody waits for a retry."""
    from pecmail.transport.models import InboundMessage

    bob.accept_ordinary_mail = False
    bob.save()
    host, port = smtp_server
    outcome = smtp_deliver(
        route=Route(host, port), mail_from="a@mail.test", recipients=[alice.address, bob.address], raw=RAW
    )
    # alice (accepts mail from outside PEC) in the first transaction; bob in a second one, where
    # this non-PEC message is refused for him at DATA.
    assert list(outcome.accepted) == [alice.address]
    assert outcome.permanent[bob.address][0] == 554
    assert outcome.transient == {}
    assert [row.rcpt_tos for row in InboundMessage.objects.all()] == [[alice.address]]


def test_it_stops_when_a_server_defers_every_recipient(sink):
    handler, port = sink
    handler.rcpt_replies = {"x@mail.test": "452 4.5.3 Too many recipients"}
    outcome = smtp_deliver(
        route=Route("127.0.0.1", port), mail_from="a@pec-a.test", recipients=["x@mail.test"], raw=RAW
    )
    assert outcome.transient["x@mail.test"][0] == 452
    assert handler.messages == []


def test_it_retries_a_deferred_recipient_once_more_then_leaves_it_for_later(sink):
    handler, port = sink
    handler.rcpt_replies = {"later@mail.test": "452 4.5.3 Too many recipients"}
    outcome = smtp_deliver(
        route=Route("127.0.0.1", port),
        mail_from="a@pec-a.test",
        recipients=["x@mail.test", "later@mail.test"],
        raw=RAW,
    )
    assert list(outcome.accepted) == ["x@mail.test"]
    assert outcome.transient["later@mail.test"][0] == 452
    assert len(handler.messages) == 1
