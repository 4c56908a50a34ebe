"""Writes of the transport app: the durable inbound commit and what follows from it."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from pecmail.mail import storage
from pecmail.mail.models import Mailbox

from .models import InboundMessage
from .outbox import outbox_add

TASK_INBOUND_PROCESS = "transport.inbound_process"


def local_domains() -> frozenset[str]:
    """The mail domains this provider serves."""
    extra = getattr(settings, "PEC_LOCAL_DOMAINS", ())
    return frozenset(d.strip().lower() for d in (settings.PEC_DOMAIN, *extra) if d.strip())


def service_address() -> str:
    """The provider's own mailbox for receipts addressed to the provider (``mailReceipt``)."""
    return getattr(settings, "PEC_SERVICE_ADDRESS", "") or f"posta-certificata@{settings.PEC_DOMAIN}"


def address_domain(address: str) -> str:
    return address.rpartition("@")[2].strip().rstrip(".").lower()


def domain_is_local(address: str) -> bool:
    return address_domain(address) in local_domains()


def recipient_is_known(*, address: str) -> bool:
    """True for an existing local mailbox or the provider's service address."""
    if address.strip().lower() == service_address().lower():
        return True
    return Mailbox.objects.filter(address__iexact=address.strip()).exists()


@dataclass(frozen=True)
class Admission:
    accept: bool
    kind: str = ""


def inbound_admission(*, raw: bytes, rcpt_tos: list[str]) -> Admission:
    """Decide at DATA whether the message may be accepted at all.

    Only mail that is not valid PEC can be refused here: when every recipient refuses
    ordinary mail (SPEC §2.3, answered 554). Classification runs only when it can change
    the answer, so the common case costs nothing.
    """
    addresses = [a.strip().lower() for a in rcpt_tos]
    if service_address().lower() in addresses:
        return Admission(accept=True)
    refusing = set(
        Mailbox.objects.filter(address__in=addresses, accept_ordinary_mail=False).values_list(
            "address", flat=True
        )
    )
    if not refusing:
        return Admission(accept=True)
    from pecmail.certification.classify import classify
    from pecmail.certification.index import trust_store

    result = classify(raw, trust=trust_store())
    if result.valid and result.kind not in ("anomalia", "ordinary", "malformed"):
        return Admission(accept=True, kind=result.kind)
    if all(a in refusing for a in addresses):
        return Admission(accept=False, kind=result.kind)
    return Admission(accept=True, kind=result.kind)


def inbound_store(
    *,
    raw: bytes,
    mail_from: str,
    rcpt_tos: list[str],
    peer: str = "",
    helo: str = "",
    tls: bool = False,
    kind: str = "",
    publish_on_commit: bool = False,
) -> tuple[InboundMessage, int]:
    """Store an accepted SMTP transaction durably; return the row and its outbox item id.

    The bytes are written first (content-addressed, so a retry rewrites nothing); then one
    transaction holds the inbound row, the provider log row and the outbox row. Only after
    this returns may the SMTP server answer 250.
    """
    from pecmail.certification.log import log_append

    sha256 = storage.raw_put(raw)
    with transaction.atomic():
        inbound = InboundMessage.objects.create(
            raw_sha256=sha256,
            size=len(raw),
            mail_from=mail_from,
            rcpt_tos=rcpt_tos,
            peer=peer,
            helo=helo,
            tls=tls,
            kind=kind,
        )
        log_append(
            event="ricezione",
            identifier=f"inbound-{inbound.pk}",
            sender=mail_from,
            recipients=rcpt_tos,
            details={"sha256": sha256, "size": len(raw), "peer": peer, "tls": tls},
        )
        item = outbox_add(
            task_name=TASK_INBOUND_PROCESS,
            kwargs={"inbound_id": inbound.pk},
            publish_on_commit=publish_on_commit,
        )
    return inbound, item.pk
