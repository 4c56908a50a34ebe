"""The aiosmtpd handler of ``pec smtpd``: SMTP semantics around the durable inbound commit.

Replies: 550 relay denied for domains that are not ours, 550 for unknown mailboxes,
452 after too many recipients, 552 for oversized data (aiosmtpd, from SIZE), 554 for bare
CR/LF in DATA (SMTP smuggling) and for non-PEC mail to mailboxes that refuse it, 451 on any
transient trouble (database, storage), and 250 only once one transaction holds the raw
bytes' row, the log row and the follow-up work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connection

from . import services

log = logging.getLogger(__name__)

# A CR not followed by LF, or an LF not preceded by CR: the ingredients of SMTP smuggling.
BARE_CR_OR_LF = re.compile(rb"\r(?!\n)|(?<!\r)\n")

REPLY_TEMPFAIL = "451 4.3.0 Temporary failure, please try again later"
REPLY_RELAY_DENIED = "550 5.7.1 Relaying denied: not a domain of this provider"
REPLY_UNKNOWN_MAILBOX = "550 5.1.1 Mailbox unknown"
REPLY_TOO_MANY_RCPT = "452 4.5.3 Too many recipients"
REPLY_BARE_LF = "554 5.6.0 Bare CR or LF in message data refused (RFC 5321 section 2.3.8)"
REPLY_NOT_PEC = (
    "554 5.7.1 Indirizzo destinatario sconosciuto o non abilitato alla ricezione di posta non certificata"
)


def _db_call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ORM work on an executor thread, keeping its connection open between SMTP commands.

    A connection that failed is closed, so the next command (after a 451) connects afresh:
    that is how the server recovers once the database is back.
    """
    try:
        return func(*args, **kwargs)
    except Exception:
        connection.close()
        raise


def _admit_and_store(*, raw: bytes, rcpt_tos: list[str], **fields: Any) -> tuple[Any, int] | None:
    """Refuse (None) or store durably; one executor hop for the whole DATA phase."""
    decision = services.inbound_admission(raw=raw, rcpt_tos=rcpt_tos)
    if not decision.accept:
        return None
    return services.inbound_store(raw=raw, rcpt_tos=rcpt_tos, kind=decision.kind, **fields)


class PecHandler:
    """Accepts transport envelopes, receipts and (for anomaly envelopes) ordinary mail."""

    def __init__(
        self, *, max_recipients: int, publish: Callable[[int], Any] | None = None, db_threads: int = 8
    ) -> None:
        self.max_recipients = max_recipients
        self.publish = publish
        # Our own pool: its threads hold the database connections, and close() can reach each one.
        self.executor = ThreadPoolExecutor(max_workers=db_threads, thread_name_prefix="pec-smtpd-db")
        self.db_threads = db_threads

    async def _run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: _db_call(func, *args, **kwargs))

    def close(self) -> None:
        """Close every pool thread's database connection, then the pool."""
        barrier = threading.Barrier(self.db_threads)

        def close_here() -> None:
            # The barrier holds each task until all threads have one: every thread closes its own.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=10)
            connection.close()

        for future in [self.executor.submit(close_here) for _ in range(self.db_threads)]:
            future.result(timeout=30)
        self.executor.shutdown(wait=True)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return REPLY_TOO_MANY_RCPT
        address = address.strip()
        if not services.domain_is_local(address):
            return REPLY_RELAY_DENIED
        try:
            known = await self._run(services.recipient_is_known, address=address)
        except Exception:
            log.exception("smtpd: recipient lookup failed")
            return REPLY_TEMPFAIL
        if not known:
            return REPLY_UNKNOWN_MAILBOX
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or b""
        if BARE_CR_OR_LF.search(raw):
            return REPLY_BARE_LF
        try:
            stored = await self._run(
                _admit_and_store,
                raw=raw,
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                peer=str(session.peer[0]) if session.peer else "",
                helo=session.host_name or "",
                tls=session.ssl is not None,
            )
        except Exception:
            log.exception("smtpd: could not store the message durably")
            return REPLY_TEMPFAIL
        if stored is None:
            return REPLY_NOT_PEC
        inbound, item_id = stored
        if self.publish is not None:
            # Published after the reply on a worker thread; the outbox relay covers a failure here.
            asyncio.get_running_loop().run_in_executor(self.executor, lambda: _db_call(self.publish, item_id))
        return f"250 2.0.0 OK queued as {inbound.pk}"
