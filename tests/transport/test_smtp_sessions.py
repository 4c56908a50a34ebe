"""SMTP out keeps a session open for the next message to the same server, and never loses one to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from pecmail.transport import outbound
from pecmail.transport.outbound import smtp_deliver
from pecmail.transport.routing import Route

from .conftest import SinkHandler, free_port

RAW = b"From: a@pec-a.test\r\nTo: x@mail.test\r\nSubject: t\r\n\r\nbody\r\n"


class PeerSink(SinkHandler):
    """Also records the client's address and port of each message: one per TCP connection."""

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if self.messages and "peer" not in self.messages[-1]:
            self.messages[-1]["peer"] = session.peer
        return reply


def _start(handler: SinkHandler, port: int) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


@pytest.fixture
def peer_sink() -> Iterator[tuple[PeerSink, int]]:
    handler, port = PeerSink(), free_port()
    controller = _start(handler, port)
    outbound.sessions_close()
    try:
        yield handler, port
    finally:
        outbound.sessions_close()
        controller.stop()


def _send(port: int, recipient: str = "x@mail.test") -> outbound.SmtpOutcome:
    return smtp_deliver(
        route=Route("127.0.0.1", port), mail_from="a@pec-a.test", recipients=[recipient], raw=RAW
    )


def test_it_sends_consecutive_messages_over_one_session(peer_sink):
    handler, port = peer_sink
    for _ in range(3):
        assert list(_send(port).accepted) == ["x@mail.test"]
    assert len(handler.messages) == 3
    assert len({m["peer"] for m in handler.messages}) == 1


def test_a_refused_recipient_leaves_the_session_usable(peer_sink):
    handler, port = peer_sink
    handler.rcpt_replies = {"gone@mail.test": "550 5.1.1 no such user"}
    assert _send(port, "gone@mail.test").permanent["gone@mail.test"][0] == 550
    assert list(_send(port).accepted) == ["x@mail.test"]
    handler.data_reply = "554 5.7.1 rejected"
    assert _send(port).permanent["x@mail.test"][0] == 554
    handler.data_reply = None
    assert list(_send(port).accepted) == ["x@mail.test"]
    assert len({m["peer"] for m in handler.messages}) == 1


def test_a_kept_session_the_server_dropped_is_replaced_without_losing_the_message():
    handler, port = PeerSink(), free_port()
    controller = _start(handler, port)
    outbound.sessions_close()
    try:
        assert list(_send(port).accepted) == ["x@mail.test"]
        controller.stop()  # the server goes away with our session still kept
        controller = _start(handler, port)
        assert list(_send(port).accepted) == ["x@mail.test"]
        assert len(handler.messages) == 2
        assert handler.messages[0]["peer"] != handler.messages[1]["peer"]
    finally:
        outbound.sessions_close()
        controller.stop()


def test_with_reuse_off_every_message_has_its_own_session(peer_sink, settings):
    settings.PEC_SMTP_SESSION_MAX = 0
    handler, port = peer_sink
    _send(port)
    _send(port)
    assert len({m["peer"] for m in handler.messages}) == 2


def test_an_idle_session_is_not_reused(peer_sink, settings):
    settings.PEC_SMTP_SESSION_IDLE = 0
    handler, port = peer_sink
    _send(port)
    _send(port)
    assert len({m["peer"] for m in handler.messages}) == 2
