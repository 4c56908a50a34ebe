"""SMTP out: queue signed bytes per remote domain, hand them over, settle each recipient.

``outbound_enqueue`` runs inside the caller's transaction: the ``OutboundMessage`` row is
itself the outbox entry (it commits with the work and is due at once), and after the
commit ``outbound_handoff`` sends it — right there when the caller is a Celery task, else
through the ``transport.outbound_send`` task. A handoff lost to a crash or a flushed broker
only delays the row: ``outbound_retry_due`` (beat) sends every queued row that is overdue.
``outbound_send`` claims one row with a conditional UPDATE, so two workers never send the
same row at once; a worker that died mid-send leaves a claim that expires.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import smtplib
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from pecmail.lib import oncommit
from pecmail.lib.prepared import PreparedUpdate
from pecmail.lib.rows import row_insert_new
from pecmail.mail import storage

from .models import OutboundMessage
from .routing import Route, RoutingError, routes_for
from .services import address_domain, local_domains

log = logging.getLogger(__name__)


def claim_lease() -> dt.timedelta:
    """A claim older than this belongs to a worker that died mid-send."""
    return dt.timedelta(seconds=float(getattr(settings, "PEC_SMTP_CLAIM_LEASE", 600)))


def sweep_grace() -> dt.timedelta:
    """How late a retry or a dispatch must be before the sweeps redo it."""
    return dt.timedelta(seconds=float(getattr(settings, "PEC_TRANSPORT_SWEEP_GRACE", 120)))


def max_attempts() -> int:
    return int(getattr(settings, "PEC_SMTP_MAX_ATTEMPTS", 100))


def give_up_after() -> dt.timedelta:
    """Transient failures are retried this long: past 24 h the deadline notices have told the user."""
    return dt.timedelta(seconds=int(getattr(settings, "PEC_SMTP_GIVE_UP_AFTER", 24 * 3600)))


def backoff(attempts: int) -> dt.timedelta:
    """1, 2, 4 … minutes, at most 30: spread over the 24 hours the PEC rules allow."""
    return dt.timedelta(minutes=min(2 ** max(attempts - 1, 0), 30))


class OutboundRetry(Exception):
    """Some recipients got a transient answer; try again after ``countdown`` seconds."""

    def __init__(self, countdown: int) -> None:
        super().__init__(f"retry in {countdown}s")
        self.countdown = countdown


@dataclass
class SmtpOutcome:
    accepted: dict[str, str] = field(default_factory=dict)
    permanent: dict[str, tuple[int, str]] = field(default_factory=dict)
    transient: dict[str, tuple[int, str]] = field(default_factory=dict)


def outbound_enqueue(
    *,
    raw: bytes,
    mail_from: str,
    recipients: list[str],
    kind: str,
    pec_id: str = "",
    sent_message_id: int | None = None,
) -> list[OutboundMessage]:
    """Queue ``raw`` for every remote recipient (grouped per domain); local ones are ignored.

    Idempotent: the same bytes to the same domain are queued once.
    """
    ours = local_domains()
    by_domain: dict[str, list[str]] = defaultdict(list)
    for recipient in recipients:
        domain = address_domain(recipient)
        if domain and domain not in ours and recipient not in by_domain[domain]:
            by_domain[domain].append(recipient)
    if not by_domain:
        return []
    sha256 = storage.raw_put(raw)
    rows = []
    created: list[OutboundMessage] = []
    in_worker = _in_worker_task()
    now = timezone.now()
    # No savepoint inside the caller's transaction: INSERT … ON CONFLICT DO NOTHING, and read the
    # existing row only on a conflict (a re-run): new bytes are the rule, so that spares a SELECT.
    with transaction.atomic(savepoint=False):
        for domain, rcpts in by_domain.items():
            # A row this task will send itself right after the commit is inserted already
            # claimed: no second UPDATE to claim it and no SELECT to read it back. Should the
            # process die before sending, the claim expires and the retry sweep sends it.
            inline = in_worker and _domain_reached(domain)
            row = OutboundMessage(
                raw_sha256=sha256,
                domain=domain,
                mail_from=mail_from,
                recipients=rcpts,
                kind=kind,
                pec_id=pec_id,
                sent_message_id=sent_message_id,
                state=OutboundMessage.State.SENDING if inline else OutboundMessage.State.QUEUED,
                claimed_at=now if inline else None,
                attempts=1 if inline else 0,
                created_at=now,
                next_attempt_at=now,
            )
            if row_insert_new(row, unique=("raw_sha256", "domain")):
                created.append(row)
            else:
                row = OutboundMessage.objects.get(raw_sha256=sha256, domain=domain)
            rows.append(row)
        if created and not _batch.add(created):
            transaction.on_commit(lambda: outbound_handoff(created))
    return rows


# Rows held for one handoff by ``outbound_batch``.
_batch: oncommit.HeldBack[OutboundMessage] = oncommit.HeldBack("outbound_batch")


@contextmanager
def outbound_batch() -> Iterator[None]:
    """Hand every row queued inside the block to one ``outbound_handoff`` after the commit.

    For a transaction that queues several messages (the take-charge and delivery receipts of a
    batch of envelopes): they go out side by side over the kept sessions and their answers
    are recorded in one transaction. Use it inside the transaction
    (``with transaction.atomic(), outbound_batch():``); a row queued in a savepoint that is
    rolled back is dropped with it. A nested block joins the outermost one.
    """
    with _batch.block() as held:
        yield
    ready = held.alive() if held is not None else []
    if ready:
        transaction.on_commit(lambda: outbound_handoff(ready))


def _in_worker_task() -> bool:
    """True inside a task a Celery worker runs (not an eager call in a web request or test)."""
    from celery import current_task

    # current_task is a proxy: outside a task it stands for None and has no request.
    request = getattr(current_task, "request", None)
    return request is not None and not getattr(request, "is_eager", True)


def _publish_send(outbound_id: int, countdown: int | None = None) -> None:
    from pecmail.celery import app

    from . import tasks

    try:
        tasks.outbound_send.apply_async(kwargs={"outbound_id": outbound_id}, countdown=countdown)
    except Exception:
        if app.conf.task_always_eager:
            raise
        log.exception("outbound: could not publish row %s; the retry sweep will send it", outbound_id)


# Domains this process handed a message to lately (monotonic time): a kept session or at least
# a known route, so an inline send there costs one SMTP transaction, not a DNS lookup and a
# connect that may hang for PEC_SMTP_TIMEOUT while the task that queued it waits.
_reached: dict[str, float] = {}


def _domain_reached(domain: str) -> bool:
    at = _reached.get(domain)
    return at is not None and time.monotonic() - at < session_idle_limit()


def outbound_handoff(rows: list[OutboundMessage]) -> None:
    """Send rows just committed: the ones ``outbound_enqueue`` claimed for this process right
    here, the others through the ``outbound_send`` task.

    A row is claimed at insert when a worker task queues it for a domain this process reached
    lately: it goes out right after the commit that queued it (no broker round trip, no second
    task, and the peer gets it at once). A row for any other domain goes to the task, so that a
    slow or unreachable peer never holds up the task that queued it (a delivery, an
    acceptance). The claimed rows are sent side by side (``_attempt_all``) and their answers
    recorded in one transaction (one commit and one lock of the log head for all of them). Rows that need
    a retry go to the task with their backoff as countdown; a row whose send or record fails
    unexpectedly keeps its claim and is resent by ``outbound_retry_due`` once it expires.
    """
    from pecmail.certification.log import log_deferred

    claimed: list[OutboundMessage] = []
    for row in rows:
        if row.state != OutboundMessage.State.SENDING:
            _publish_send(row.pk)
        else:
            claimed.append(row)
    attempts = _attempt_all(claimed)
    if not attempts:
        return
    now = timezone.now()
    recorded: list[tuple[OutboundMessage, str, dt.timedelta]] = []
    try:
        with transaction.atomic(), log_deferred():
            for row, outcome in attempts:
                recorded.append((row, *_record(row, outcome, now=now)))
    except Exception:
        log.exception(
            "outbound: recording %d sends together failed; recording them one by one", len(attempts)
        )
        recorded = []
        for row, outcome in attempts:
            try:
                with transaction.atomic():
                    recorded.append((row, *_record(row, outcome, now=now)))
            except Exception:
                log.exception("outbound: recording row %s failed; the retry sweep will resend it", row.pk)
    for row, state, delay in recorded:
        if state == OutboundMessage.State.QUEUED:
            _publish_send(row.pk, countdown=int(delay.total_seconds()))


def handoff_sessions() -> int:
    """How many SMTP sessions one handoff uses at once (1: one message after the other)."""
    return max(1, int(getattr(settings, "PEC_SMTP_HANDOFF_SESSIONS", 4)))


# Per process: the threads that send a handoff's rows side by side, each with its own kept
# sessions (the session pool is per thread). Made on first use in the process that sends, so
# a prefork child never inherits its parent's.
_handoff_pool: tuple[int, ThreadPoolExecutor] | None = None
_handoff_pool_lock = threading.Lock()


def _handoff_executor() -> ThreadPoolExecutor:
    global _handoff_pool
    with _handoff_pool_lock:
        if _handoff_pool is None or _handoff_pool[0] != os.getpid():
            _handoff_pool = (
                os.getpid(),
                ThreadPoolExecutor(max_workers=handoff_sessions(), thread_name_prefix="pec-smtp-out"),
            )
        return _handoff_pool[1]


def _attempt_all(rows: list[OutboundMessage]) -> list[tuple[OutboundMessage, SmtpOutcome]]:
    """``_attempt`` every claimed row of a handoff: each row with its outcome, in their order.

    Rows go out side by side over up to ``handoff_sessions()`` sessions. Each transaction
    waits for the peer's durable commit before its 250; one after the other, a batch of
    envelopes or receipts would hold the task that queued it for the sum of those waits, and
    reach the peer one commit at a time. Side by side, the peer's server commits them
    together and the task waits about as long as for the slowest. The order of arrival
    carries no meaning: every message stands alone, and a delivery receipt that overtakes its
    take-charge moves the ``Delivery`` rows the same. A row whose send raised is left out: it
    keeps its claim, and the retry sweep sends it again once the claim expires.
    """

    def attempt(row: OutboundMessage) -> SmtpOutcome | None:
        try:
            return _attempt(row)
        except Exception:
            log.exception("outbound: sending row %s failed; the retry sweep will resend it", row.pk)
            return None

    if len(rows) > 1 and handoff_sessions() > 1:
        outcomes = list(_handoff_executor().map(attempt, rows))
    else:
        outcomes = [attempt(row) for row in rows]
    return [(row, outcome) for row, outcome in zip(rows, outcomes, strict=True) if outcome is not None]


def _reply_text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _tls_context() -> ssl.SSLContext:
    """The client context for opportunistic STARTTLS, built once per process.

    ``ssl.create_default_context()`` loads the system CA bundle (tens of milliseconds) on
    every call, and opportunistic TLS verifies nothing: peers' certificates are often
    private, and the S/MIME signature is what authenticates a PEC message.
    """
    global _TLS_CONTEXT
    if _TLS_CONTEXT is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        _TLS_CONTEXT = context
    return _TLS_CONTEXT


_TLS_CONTEXT: ssl.SSLContext | None = None


@dataclass
class _Session:
    """An open SMTP session kept for the next transaction to the same server."""

    smtp: smtplib.SMTP
    used_at: float
    transactions: int = 0


# Per process and thread (a prefork child's task thread and its handoff threads): open sessions
# by (pid, host, port, helo). ``_pools`` holds every live thread's, for ``sessions_close``.
_sessions = threading.local()
_pools: dict[int, dict[tuple, _Session]] = {}
_pools_lock = threading.Lock()


def session_idle_limit() -> float:
    """Seconds an idle session is kept: well below the 5-minute server timeout of RFC 5321 §4.5.3.2."""
    return float(getattr(settings, "PEC_SMTP_SESSION_IDLE", 30))


def session_max_transactions() -> int:
    """Transactions per session before it is closed and a fresh one opened (0: one per session)."""
    return int(getattr(settings, "PEC_SMTP_SESSION_MAX", 100))


def _session_pool() -> dict[tuple, _Session]:
    pool = getattr(_sessions, "pool", None)
    if pool is None:
        pool = _sessions.pool = {}
        with _pools_lock:
            alive = {thread.ident for thread in threading.enumerate()}
            gone = [_pools.pop(ident) for ident in list(_pools) if ident not in alive]
            _pools[threading.get_ident()] = pool
        for sessions in gone:  # a thread that ended left its sessions open
            for session in sessions.values():
                _session_close(session)
    return pool


def _session_key(route: Route, helo: str) -> tuple:
    # The pid keeps a forked child from ever using its parent's socket.
    return (os.getpid(), route.host, route.port, helo)


def _session_close(session: _Session) -> None:
    try:
        session.smtp.quit()
    except (OSError, smtplib.SMTPException):
        session.smtp.close()


def sessions_close() -> None:
    """Close every session this process keeps, in every thread (tests, shutdown: nothing may be
    sending meanwhile; a worker's children just exit)."""
    with _pools_lock:
        pools = list(_pools.values())
    for pool in pools:
        while pool:
            try:
                _key, session = pool.popitem()
            except KeyError:  # emptied meanwhile
                break
            _session_close(session)


def _session_take(key: tuple) -> _Session | None:
    """A kept session to reuse, or None; an idle or worn-out one is closed instead."""
    session = _session_pool().pop(key, None)
    if session is None:
        return None
    if time.monotonic() - session.used_at > session_idle_limit() or (
        session.transactions >= session_max_transactions()
    ):
        _session_close(session)
        return None
    return session


def _session_open(route: Route, helo: str) -> _Session:
    timeout = float(getattr(settings, "PEC_SMTP_TIMEOUT", 60))
    smtp = smtplib.SMTP(route.host, route.port, local_hostname=helo, timeout=timeout)
    try:
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            # Opportunistic TLS (RFC 3207): encrypt whenever offered.
            smtp.starttls(context=_tls_context())
            smtp.ehlo()
    except BaseException:
        smtp.close()
        raise
    return _Session(smtp=smtp, used_at=time.monotonic())


class _StaleSession(Exception):
    """A reused session failed before the server accepted anything: open a fresh one."""


def smtp_deliver(*, route: Route, mail_from: str, recipients: list[str], raw: bytes) -> SmtpOutcome:
    """Hand ``raw`` to one server; raises OSError / SMTPException when the session itself fails.

    Recipients answered 452 while others of the transaction were taken are sent at once in a
    further transaction (RFC 5321 §4.5.3.1.10): a server limits recipients per transaction
    that way, and pecmail's own server keeps recipients with different policies towards mail
    from outside PEC apart so. Each round settles at least one recipient, or stops.
    """
    outcome = _deliver_once(route=route, mail_from=mail_from, recipients=recipients, raw=raw)
    while True:
        deferred = [r for r, (code, _text) in outcome.transient.items() if code == 452]
        if not deferred or len(deferred) == len(recipients):
            return outcome
        recipients = deferred
        try:
            more = _deliver_once(route=route, mail_from=mail_from, recipients=recipients, raw=raw)
        except (OSError, smtplib.SMTPException) as exc:
            # What the first transaction settled stands; only the deferred ones wait for a retry.
            more = SmtpOutcome(
                transient=dict.fromkeys(recipients, (421, f"{route.host}:{route.port}: {exc}"))
            )
        for recipient in recipients:
            outcome.transient.pop(recipient, None)
        outcome.accepted.update(more.accepted)
        outcome.permanent.update(more.permanent)
        outcome.transient.update(more.transient)


def _deliver_once(*, route: Route, mail_from: str, recipients: list[str], raw: bytes) -> SmtpOutcome:
    """One mail transaction to one server, on a kept session when there is one.

    The session is kept open for the next transaction to the same server (RFC 5321 allows
    many per session), which saves the connection, EHLO and TLS handshake per message. A
    kept session the server has meanwhile closed is noticed at MAIL FROM, before anything
    was accepted, and replaced by a fresh one, so reuse never changes an outcome.
    """
    helo = getattr(settings, "PEC_SMTP_HOSTNAME", "") or f"mx.{settings.PEC_DOMAIN}"
    key = _session_key(route, helo)
    session = _session_take(key)
    if session is not None:
        try:
            return _session_deliver(key, session, mail_from=mail_from, recipients=recipients, raw=raw)
        except _StaleSession:
            log.debug("outbound: kept session to %s:%s was closed; reconnecting", route.host, route.port)
    # A fresh session never raises _StaleSession (only a reused one can be stale).
    session = _session_open(route, helo)
    return _session_deliver(key, session, mail_from=mail_from, recipients=recipients, raw=raw)


def _session_deliver(
    key: tuple, session: _Session, *, mail_from: str, recipients: list[str], raw: bytes
) -> SmtpOutcome:
    """One mail transaction on ``session``; keeps the session when it ends in a clean state."""
    smtp = session.smtp
    reused = session.transactions > 0
    session.transactions += 1
    try:
        outcome, clean = _transaction(
            smtp, mail_from=mail_from, recipients=recipients, raw=raw, reused=reused
        )
    except BaseException:
        smtp.close()
        raise
    if clean and session_max_transactions() > 0:
        session.used_at = time.monotonic()
        previous = _session_pool().pop(key, None)
        if previous is not None:
            _session_close(previous)
        _session_pool()[key] = session
    else:
        _session_close(session)
    return outcome


def _transaction(
    smtp: smtplib.SMTP, *, mail_from: str, recipients: list[str], raw: bytes, reused: bool
) -> tuple[SmtpOutcome, bool]:
    """MAIL, RCPT…, DATA; returns the outcome and whether the session may carry another one."""
    outcome = SmtpOutcome()
    options = [f"SIZE={len(raw)}"] if smtp.has_extn("size") else []
    try:
        code, reply = smtp.mail(mail_from, options)
    except (OSError, smtplib.SMTPServerDisconnected) as exc:
        if reused:
            raise _StaleSession(str(exc)) from exc
        raise
    if reused and code == 421:
        # The server is closing the kept session (idle timeout, shutdown): nothing happened yet.
        raise _StaleSession(_reply_text(reply))
    if code >= 400:
        target = outcome.permanent if code >= 500 else outcome.transient
        for recipient in recipients:
            target[recipient] = (code, _reply_text(reply))
        return outcome, code != 421 and _reset(smtp)
    for recipient in recipients:
        code, reply = smtp.rcpt(recipient)
        if code < 300:
            outcome.accepted[recipient] = _reply_text(reply)
        elif code >= 500:
            outcome.permanent[recipient] = (code, _reply_text(reply))
        else:
            outcome.transient[recipient] = (code, _reply_text(reply))
        if code == 421:
            return _all_transient_after_421(outcome, recipients, code, reply), False
    if not outcome.accepted:
        return outcome, _reset(smtp)
    try:
        code, reply = smtp.data(raw)
    except smtplib.SMTPDataError as exc:
        code, reply = exc.smtp_code, exc.smtp_error
    if code >= 300:
        target = outcome.permanent if code >= 500 else outcome.transient
        for recipient in outcome.accepted:
            target[recipient] = (code, _reply_text(reply))
        outcome.accepted = {}
    else:
        outcome.accepted = dict.fromkeys(outcome.accepted, _reply_text(reply))
    # After the final reply to DATA the transaction is over either way (RFC 5321 §4.1.1.4).
    return outcome, code != 421


def _all_transient_after_421(
    outcome: SmtpOutcome, recipients: list[str], code: int, reply: bytes | str
) -> SmtpOutcome:
    """421 closes the session: recipients not yet answered are transient too, nothing was sent."""
    for recipient in recipients:
        if recipient not in outcome.permanent:
            outcome.transient[recipient] = (code, _reply_text(reply))
    outcome.accepted = {}
    return outcome


def _reset(smtp: smtplib.SMTP) -> bool:
    """RSET after an aborted transaction; False when the session is no longer usable."""
    try:
        code, _reply = smtp.rset()
    except (OSError, smtplib.SMTPException):
        return False
    return code == 250


def _try_routes(routes: list[Route], *, mail_from: str, recipients: list[str], raw: bytes) -> SmtpOutcome:
    last_error = "no route"
    for route in routes:
        try:
            return smtp_deliver(route=route, mail_from=mail_from, recipients=recipients, raw=raw)
        except (OSError, smtplib.SMTPException) as exc:
            last_error = f"{route.host}:{route.port}: {exc}"
            log.info("outbound: %s", last_error)
    return SmtpOutcome(transient=dict.fromkeys(recipients, (421, last_error)))


def outbound_send(*, outbound_id: int, now: dt.datetime | None = None) -> str:
    """Send one queued row; return its new state ("skipped" if another worker holds it).

    Raises OutboundRetry when recipients remain after a transient failure.
    """
    now = now or timezone.now()
    claimed = (
        OutboundMessage.objects.filter(pk=outbound_id)
        .filter(
            Q(state=OutboundMessage.State.QUEUED)
            | Q(state=OutboundMessage.State.SENDING, claimed_at__lt=now - claim_lease())
        )
        .update(state=OutboundMessage.State.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return "skipped"
    return _send_claimed(OutboundMessage.objects.get(pk=outbound_id), now=now)


def _send_claimed(row: OutboundMessage, *, now: dt.datetime) -> str:
    """Send a row this process holds the claim of, and record each recipient's answer."""
    outcome = _attempt(row)
    with transaction.atomic():
        state, delay = _record(row, outcome, now=now)
    if state == OutboundMessage.State.QUEUED:
        raise OutboundRetry(countdown=int(delay.total_seconds()))
    return state


def _attempt(row: OutboundMessage) -> SmtpOutcome:
    """Hand a claimed row to its domain over SMTP (no database work): each recipient's answer."""
    pending = [r for r in row.recipients if r not in row.results]
    raw = storage.raw_get(row.raw_sha256)
    try:
        outcome = _try_routes(routes_for(row.domain), mail_from=row.mail_from, recipients=pending, raw=raw)
    except RoutingError as exc:
        code = 451 if exc.transient else 550
        target = {r: (code, str(exc)) for r in pending}
        outcome = SmtpOutcome(transient=target) if exc.transient else SmtpOutcome(permanent=target)
    if outcome.accepted:
        _reached[row.domain] = time.monotonic()
    elif outcome.transient:
        _reached.pop(row.domain, None)
    return outcome


_RECORD = PreparedUpdate(
    lambda pk: OutboundMessage.objects.filter(pk=pk),
    "state",
    "results",
    "sent_at",
    "next_attempt_at",
    "last_reply",
)


def _record(row: OutboundMessage, outcome: SmtpOutcome, *, now: dt.datetime) -> tuple[str, dt.timedelta]:
    """Record an attempt's answers inside the caller's transaction: the row's new state, the
    log rows, the notices they call for; returns (state, the backoff before a retry)."""
    from pecmail.certification.log import log_append

    from .notices import outbound_accepted, outbound_refused

    def logged(event: str, recipients: list[str], details: dict) -> None:
        log_append(
            event=event,
            identifier=row.pec_id or f"outbound-{row.pk}",
            sender=row.mail_from,
            recipients=recipients,
            details=details,
        )

    def replies(answers: dict[str, tuple[int, str]]) -> dict[str, str]:
        return {r: f"{c} {t}" for r, (c, t) in answers.items()}

    results = dict(row.results)
    for recipient, reply in outcome.accepted.items():
        results[recipient] = {"code": 250, "reply": reply}
    for recipient, (code, reply) in outcome.permanent.items():
        results[recipient] = {"code": code, "reply": reply}
    if outcome.accepted:
        logged(
            "smtp-sent",
            list(outcome.accepted),
            {"kind": row.kind, "domain": row.domain, "attempt": row.attempts},
        )
        outbound_accepted(row=row, accepted=list(outcome.accepted), when=now)
    if outcome.permanent:
        logged("smtp-refused", list(outcome.permanent), replies(outcome.permanent))
        outbound_refused(row=row, refused=outcome.permanent)
    if outcome.transient and row.attempts < max_attempts() and now - row.created_at < give_up_after():
        state = OutboundMessage.State.QUEUED
    elif outcome.transient:
        state = OutboundMessage.State.FAILED
        logged("smtp-gave-up", list(outcome.transient), replies(outcome.transient))
    else:
        state = OutboundMessage.State.SENT
    delay = backoff(row.attempts)
    last = next(iter(outcome.transient.values()), None) or next(iter(outcome.permanent.values()), None)
    _RECORD(
        row.pk,
        state=state,
        results=results,
        sent_at=now if state == OutboundMessage.State.SENT else None,
        next_attempt_at=now + delay,
        last_reply=f"{last[0]} {last[1]}" if last else "",
    )
    row.results = results
    return state, delay


def outbound_retry_due(*, now: dt.datetime | None = None, limit: int = 200) -> int:
    """Republish queued rows whose retry is overdue (a lost Celery retry delays, never loses)."""
    from . import tasks

    now = now or timezone.now()
    grace = sweep_grace()
    ids = list(
        OutboundMessage.objects.filter(
            Q(state=OutboundMessage.State.QUEUED, next_attempt_at__lte=now - grace)
            | Q(state=OutboundMessage.State.SENDING, claimed_at__lt=now - claim_lease())
        ).values_list("id", flat=True)[:limit]
    )
    for outbound_id in ids:
        tasks.outbound_send.apply_async(kwargs={"outbound_id": outbound_id})
    return len(ids)
