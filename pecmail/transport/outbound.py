"""SMTP out: queue signed bytes per remote domain, hand them over, settle each recipient.

``outbound_enqueue`` runs inside the caller's transaction (the outbox row commits with
it). ``outbound_send`` claims one row with a conditional UPDATE, so two workers never
send the same row at once; a worker that died mid-send leaves a claim that expires.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from pecmail.mail import storage

from .models import OutboundMessage
from .outbox import outbox_add
from .routing import Route, RoutingError, routes_for
from .services import address_domain, local_domains

log = logging.getLogger(__name__)

TASK_OUTBOUND_SEND = "transport.outbound_send"


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
    with transaction.atomic():
        for domain, rcpts in by_domain.items():
            row, created = OutboundMessage.objects.get_or_create(
                raw_sha256=sha256,
                domain=domain,
                defaults={
                    "mail_from": mail_from,
                    "recipients": rcpts,
                    "kind": kind,
                    "pec_id": pec_id,
                    "sent_message_id": sent_message_id,
                },
            )
            if created:
                outbox_add(task_name=TASK_OUTBOUND_SEND, kwargs={"outbound_id": row.pk})
            rows.append(row)
    return rows


def _reply_text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def smtp_deliver(*, route: Route, mail_from: str, recipients: list[str], raw: bytes) -> SmtpOutcome:
    """Hand ``raw`` to one server; raises OSError / SMTPException when the session itself fails."""
    helo = getattr(settings, "PEC_SMTP_HOSTNAME", "") or f"mx.{settings.PEC_DOMAIN}"
    timeout = float(getattr(settings, "PEC_SMTP_TIMEOUT", 60))
    outcome = SmtpOutcome()
    with smtplib.SMTP(route.host, route.port, local_hostname=helo, timeout=timeout) as smtp:
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            # Opportunistic TLS (RFC 3207): encrypt whenever offered; peers' certificates are
            # often private, and the S/MIME signature is what authenticates a PEC message.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            smtp.starttls(context=context)
            smtp.ehlo()
        options = [f"SIZE={len(raw)}"] if smtp.has_extn("size") else []
        code, reply = smtp.mail(mail_from, options)
        if code >= 400:
            target = outcome.permanent if code >= 500 else outcome.transient
            for recipient in recipients:
                target[recipient] = (code, _reply_text(reply))
            return outcome
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code < 300:
                outcome.accepted[recipient] = _reply_text(reply)
            elif code >= 500:
                outcome.permanent[recipient] = (code, _reply_text(reply))
            else:
                outcome.transient[recipient] = (code, _reply_text(reply))
        if not outcome.accepted:
            smtp.rset()
            return outcome
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
    return outcome


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
    from pecmail.certification.log import log_append

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
    row = OutboundMessage.objects.get(pk=outbound_id)
    pending = [r for r in row.recipients if r not in row.results]
    raw = storage.raw_get(row.raw_sha256)
    try:
        outcome = _try_routes(routes_for(row.domain), mail_from=row.mail_from, recipients=pending, raw=raw)
    except RoutingError as exc:
        code = 451 if exc.transient else 550
        target = {r: (code, str(exc)) for r in pending}
        outcome = SmtpOutcome(transient=target) if exc.transient else SmtpOutcome(permanent=target)
    for recipient, reply in outcome.accepted.items():
        row.results[recipient] = {"code": 250, "reply": reply}
    for recipient, (code, reply) in outcome.permanent.items():
        row.results[recipient] = {"code": code, "reply": reply}
    with transaction.atomic():
        if outcome.accepted:
            log_append(
                event="smtp-sent",
                identifier=row.pec_id or f"outbound-{row.pk}",
                sender=row.mail_from,
                recipients=list(outcome.accepted),
                details={"kind": row.kind, "domain": row.domain, "attempt": row.attempts},
            )
        if outcome.accepted:
            from .notices import outbound_accepted

            outbound_accepted(row=row, accepted=list(outcome.accepted), when=now)
        if outcome.permanent:
            log_append(
                event="smtp-refused",
                identifier=row.pec_id or f"outbound-{row.pk}",
                sender=row.mail_from,
                recipients=list(outcome.permanent),
                details={r: f"{c} {t}" for r, (c, t) in outcome.permanent.items()},
            )
            from .notices import outbound_refused

            outbound_refused(row=row, refused=outcome.permanent)
        if outcome.transient and row.attempts < max_attempts() and now - row.created_at < give_up_after():
            state = OutboundMessage.State.QUEUED
        elif outcome.transient:
            state = OutboundMessage.State.FAILED
            log_append(
                event="smtp-gave-up",
                identifier=row.pec_id or f"outbound-{row.pk}",
                sender=row.mail_from,
                recipients=list(outcome.transient),
                details={r: f"{c} {t}" for r, (c, t) in outcome.transient.items()},
            )
        else:
            state = OutboundMessage.State.SENT
        delay = backoff(row.attempts)
        last = next(iter(outcome.transient.values()), None) or next(iter(outcome.permanent.values()), None)
        OutboundMessage.objects.filter(pk=row.pk).update(
            state=state,
            results=row.results,
            sent_at=now if state == OutboundMessage.State.SENT else None,
            next_attempt_at=now + delay,
            last_reply=f"{last[0]} {last[1]}" if last else "",
        )
    if state == OutboundMessage.State.QUEUED:
        raise OutboundRetry(countdown=int(delay.total_seconds()))
    return state


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
