"""The aiosmtpd handler of ``pec smtpd``: SMTP semantics around the durable inbound commit.

Replies: 550 relay denied for domains that are not ours, 550 for unknown mailboxes,
452 after too many recipients (and for a recipient whose policy towards mail from outside PEC
differs from the transaction's first one), 552 for oversized data (aiosmtpd, from SIZE), 554 for bare
CR/LF in DATA (SMTP smuggling) and for non-PEC mail to mailboxes that refuse it, 451 on any
transient trouble (database, storage), and 250 only once one transaction holds the raw
bytes' row, the log row and the follow-up work (group commit: see ``GroupCommitter``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import connection

from pecmail.certification.classify import classify
from pecmail.certification.index import trust_store_current

from . import services
from .models import OutboxItem

log = logging.getLogger(__name__)


def has_bare_cr_or_lf(raw: bytes) -> bool:
    """True if a CR is not followed by LF or an LF not preceded by CR: the ingredients of SMTP smuggling.

    Three counts in C instead of a look-around regex over the whole message (a tenth of the time).
    """
    pairs = raw.count(b"\r\n")
    return raw.count(b"\r") != pairs or raw.count(b"\n") != pairs


REPLY_TEMPFAIL = "451 4.3.0 Temporary failure, please try again later"
REPLY_RELAY_DENIED = "550 5.7.1 Relaying denied: not a domain of this provider"
REPLY_UNKNOWN_MAILBOX = "550 5.1.1 Mailbox unknown"
REPLY_TOO_MANY_RCPT = "452 4.5.3 Too many recipients"
REPLY_OTHER_POLICY = "452 4.5.3 Too many recipients: send to this one in a separate transaction"
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


_STOP = object()
# Up to this size a message is classified on the event loop itself (see PecHandler._admission).
INLINE_CLASSIFY_MAX_BYTES = 256 * 1024
# How long RCPT remembers that a mailbox exists and whether it takes mail from outside PEC.
POLICY_TTL_SECONDS = 5.0


class GroupCommitter:
    """The single writer of ``pec smtpd``: stores accepted transactions in batches.

    Every DATA hands its request over and waits for its own result. The writer thread takes
    whatever is queued at that moment (up to ``max_batch``) and stores it in one database
    transaction: N sessions finishing together cost one commit (one WAL flush) and one lock
    of the provider log's head row instead of N, and a lone message is stored at once —
    nothing waits for a batch to fill. After the commit the batch's outbox rows are
    published; a failed publish is left to the outbox relay.

    Publishing (a Celery message) costs the writer as much as the commit, so it is paced:
    rows wait until ``PUBLISH_INTERVAL`` has passed since the last publish, and whatever
    queued meanwhile goes to ``publish`` together (one message for several batches). A lone
    message after a quiet spell is published at once; under load the work reaches the workers
    at most ``PUBLISH_INTERVAL`` later, and the writer publishes a few dozen times a second
    instead of once per batch.

    ``publish(items)`` returns how many of ``items`` reached the broker without marking them;
    they are marked published in the next batch's transaction (no commit of their own under
    load), or after ``MARK_DELAY`` seconds without a next batch. Until then the relay would
    not touch them anyway (``PEC_OUTBOX_RELAY_GRACE``); after a crash it publishes them again,
    which idempotent consumers ignore.
    """

    MARK_DELAY = 0.5
    PUBLISH_INTERVAL = 0.02

    def __init__(
        self,
        *,
        publish: Callable[[list[OutboxItem]], Any] | None,
        max_batch: int = 64,
        thread: bool = True,
    ) -> None:
        """``thread=False``: no writer thread; the owner calls ``commit``, ``poll`` and ``finish``
        from its own single thread (the smtpd writer process's event loop)."""
        self.publish = publish
        self.max_batch = max_batch
        self._unmarked: list[int] = []
        self._unpublished: list[OutboxItem] = []
        self._published_at = -self.PUBLISH_INTERVAL  # monotonic time of the last publish
        self._marks_due = 0.0  # monotonic time after which unmarked rows get a transaction of their own
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        if thread:
            self._thread = threading.Thread(target=self._run, name="pec-smtpd-commit", daemon=True)
            self._thread.start()

    def submit(self, request: services.InboundRequest) -> Future:
        future: Future = Future()
        self._queue.put((request, future))
        return future

    async def store(self, request: services.InboundRequest) -> tuple[Any, OutboxItem]:
        """``submit`` for a coroutine: (the stored row, its outbox item) once committed."""
        return await asyncio.wrap_future(self.submit(request))

    def close(self) -> None:
        """Store what is queued, then stop the writer and release its database connection."""
        if self._thread is None:
            self.finish()
            return
        self._queue.put(_STOP)
        self._thread.join(timeout=60)

    def commit(self, requests: list[services.InboundRequest]) -> list[Any]:
        """Store ``requests`` now, on this thread (``thread=False``), up to ``max_batch`` per transaction.

        Returns, per request, its (row, outbox item) or the exception that kept it from being
        stored. Publishing is left to ``poll``: the owner answers the sessions first.
        """
        futures: list[Future] = [Future() for _ in requests]
        pairs = list(zip(requests, futures, strict=True))
        for start in range(0, len(pairs), self.max_batch):
            self._commit(pairs[start : start + self.max_batch])
        return [future.exception() or future.result() for future in futures]

    def idle_timeout(self) -> float | None:
        """How long nothing may happen before ``poll`` has work: a paced publish or the marks."""
        if self._unpublished:
            return max(0.0, self._published_at + self.PUBLISH_INTERVAL - time.monotonic())
        if self._unmarked:
            return max(0.0, self._marks_due - time.monotonic())
        return None

    def poll(self) -> None:
        """Publish what waits if its turn has come; mark published rows no batch has marked."""
        now = time.monotonic()
        if self._unpublished and now >= self._published_at + self.PUBLISH_INTERVAL:
            self._publish_flush()
        elif self._unmarked and not self._unpublished and now >= self._marks_due:
            self._marks_flush()

    def finish(self) -> None:
        """Publish and mark what is left, then release the database connection."""
        try:
            self._publish_flush()
            self._marks_flush(retry=False)
        finally:
            connection.close()

    def _run(self) -> None:
        try:
            while True:
                try:
                    first = self._queue.get(timeout=self.idle_timeout())
                except queue.Empty:
                    self.poll()
                    continue
                if first is _STOP:
                    return
                batch, stopping = [first], False
                while len(batch) < self.max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                self._commit(batch)
                self.poll()
                if stopping:
                    return
        finally:
            self.finish()

    def _marks_flush(self, *, retry: bool = True) -> None:
        """Mark the published rows; on a transient failure (a lock) try again after MARK_DELAY."""
        from .outbox import outbox_mark_published

        marks, self._unmarked = self._unmarked, []
        if not marks:
            return
        try:
            _db_call(outbox_mark_published, marks)
        except Exception:
            if retry:
                log.warning("smtpd: could not mark outbox rows published yet; trying again")
                self._unmarked = marks + self._unmarked
                self._marks_due = time.monotonic() + self.MARK_DELAY
            else:
                log.exception("smtpd: could not mark outbox rows published; the relay will send them again")

    def _commit(self, batch: list[tuple[services.InboundRequest, Future]]) -> None:
        # A session that gave up (client gone) before its turn is not stored: it never saw a 250.
        batch = [(request, future) for request, future in batch if future.set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            stored = _db_call(
                services.inbound_store_many,
                [request for request, _future in batch],
                mark_published=self._unmarked,
            )
            self._unmarked = []
        except Exception as exc:
            if len(batch) > 1:
                # One bad request (a value the database rejects) must not fail the others.
                for one in batch:
                    self._commit_alone(one)
                return
            log.exception("smtpd: could not store the message durably")
            batch[0][1].set_exception(exc)
            return
        for (_request, future), result in zip(batch, stored, strict=True):
            future.set_result(result)
        self._unpublished.extend({item.pk: item for _inbound, item in stored}.values())

    def _commit_alone(self, one: tuple[services.InboundRequest, Future]) -> None:
        request, future = one
        try:
            (result,) = _db_call(services.inbound_store_many, [request])
        except Exception as exc:
            log.exception("smtpd: could not store the message durably")
            future.set_exception(exc)
            return
        future.set_result(result)
        self._unpublished.append(result[1])

    def _publish_flush(self) -> None:
        items, self._unpublished = self._unpublished, []
        self._published_at = time.monotonic()
        if self.publish is None or not items:
            return
        try:
            published = _db_call(self.publish, items)
        except Exception:
            log.exception("smtpd: publishing after the commit failed; the outbox relay will retry")
            return
        if isinstance(published, int) and published:
            self._unmarked.extend(item.pk for item in items[:published])
            self._marks_due = time.monotonic() + self.MARK_DELAY


class PecHandler:
    """Accepts transport envelopes, receipts and (for anomaly envelopes) ordinary mail.

    A transaction's recipients share one policy towards mail from outside PEC: a recipient
    whose policy differs from the first accepted one gets 452 (RFC 5321 §4.5.3.1.10), and the
    client sends to it in a further transaction. So DATA's answer — 250, or 554 for non-PEC
    mail nobody in the transaction accepts — is right for every recipient, and nothing is
    silently dropped.
    """

    def __init__(
        self,
        *,
        max_recipients: int,
        publish: Callable[[list[OutboxItem]], Any] | None = None,
        db_threads: int = 8,
        max_batch: int = 64,
        committer: Any = None,
    ) -> None:
        """``committer``: what stores accepted transactions (``async store``, ``close``); by
        default a ``GroupCommitter`` of this process publishing with ``publish``."""
        self.max_recipients = max_recipients
        # Our own pool: its threads hold the database connections, and close() can reach each one.
        self.executor = ThreadPoolExecutor(max_workers=db_threads, thread_name_prefix="pec-smtpd-db")
        self.db_threads = db_threads
        self.committer = committer or GroupCommitter(publish=publish, max_batch=max_batch)
        self._policies: dict[str, tuple[float, bool]] = {}

    async def _run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: _db_call(func, *args, **kwargs))

    def close(self) -> None:
        """Finish the writer, then close every pool thread's database connection and the pool."""
        self.committer.close()
        barrier = threading.Barrier(self.db_threads)

        def close_here() -> None:
            # The barrier holds each task until all threads have one: every thread closes its own.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=10)
            connection.close()

        for future in [self.executor.submit(close_here) for _ in range(self.db_threads)]:
            future.result(timeout=30)
        self.executor.shutdown(wait=True)

    async def _admission(self, *, raw: bytes, rcpt_tos: list[str], refusing: set[str]) -> services.Admission:
        """Classify (S/MIME verification included) and decide whether DATA may be accepted.

        A small message is classified right here on the event loop: under the GIL a hop to
        the pool and back costs more CPU than the classification saves the loop. A large one,
        or one arriving while the trust store must be rebuilt from the database, goes to the pool.
        """
        if len(raw) <= INLINE_CLASSIFY_MAX_BYTES:
            trust = trust_store_current()
            if trust is not None:
                return services.admission_decide(
                    classify(raw, trust=trust), rcpt_tos=rcpt_tos, refusing=refusing
                )
        return await self._run(services.inbound_admission, raw=raw, rcpt_tos=rcpt_tos, refusing=refusing)

    async def _recipient_policy(self, address: str) -> bool | None:
        """``services.recipient_policy``, remembered for a few seconds for addresses that exist.

        Peers send one envelope per transaction, so the same mailboxes come back again and
        again; a cached answer spares a hop to the pool and a query. A change of a mailbox's
        policy takes effect here within ``POLICY_TTL_SECONDS``.
        """
        key = address.lower()
        now = time.monotonic()
        cached = self._policies.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        policy = await self._run(services.recipient_policy, address=address)
        if policy is not None:
            if len(self._policies) > 10_000:
                self._policies.clear()
            self._policies[key] = (now + POLICY_TTL_SECONDS, policy)
        return policy

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return REPLY_TOO_MANY_RCPT
        address = address.strip()
        if not services.domain_is_local(address):
            return REPLY_RELAY_DENIED
        try:
            accepts_ordinary = await self._recipient_policy(address)
        except Exception:
            log.exception("smtpd: recipient lookup failed")
            return REPLY_TEMPFAIL
        if accepts_ordinary is None:
            return REPLY_UNKNOWN_MAILBOX
        policies: dict[str, bool] = envelope.__dict__.setdefault("pec_policies", {})
        if policies and accepts_ordinary != next(iter(policies.values())):
            return REPLY_OTHER_POLICY
        policies[address.lower()] = accepts_ordinary
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or b""
        if has_bare_cr_or_lf(raw):
            return REPLY_BARE_LF
        rcpt_tos = list(envelope.rcpt_tos)
        policies: dict[str, bool] = envelope.__dict__.get("pec_policies", {})
        refusing = {address for address, accepts in policies.items() if not accepts}
        kind = ""
        if refusing:
            try:
                decision = await self._admission(raw=raw, rcpt_tos=rcpt_tos, refusing=refusing)
            except Exception:
                log.exception("smtpd: could not classify the message")
                return REPLY_TEMPFAIL
            if not decision.accept:
                return REPLY_NOT_PEC
            kind = decision.kind
        request = services.InboundRequest(
            raw=raw,
            mail_from=envelope.mail_from or "",
            rcpt_tos=rcpt_tos,
            peer=str(session.peer[0]) if session.peer else "",
            helo=session.host_name or "",
            tls=session.ssl is not None,
            kind=kind,
        )
        try:
            inbound, _item = await self.committer.store(request)
        except Exception:
            return REPLY_TEMPFAIL
        return f"250 2.0.0 OK queued as {inbound.pk}"
