"""Processing a queue of incoming envelopes, batched or one by one (not a test: ``.venv/bin/python bench/inbound_batch.py``).

A peer sends one SMTP transaction after the other, and ``pec smtpd`` commits each on its own
when they come one at a time: under load, what waits is a queue of one-message
``transport.inbound_process`` tasks. The first task that runs takes up to
``incoming.BATCH_MAX`` waiting messages into its transaction; the tasks behind it find nothing
left to do. This prints, per message, the wall time, the CPU time of this process and of its
PostgreSQL backend, and the number of transactions that locked the provider log's head, for
the same queues processed both ways (each task on its own, as before, and batched), in
alternating blocks in one process, and their ratios.

Each queue is ``BENCH_BURST`` (default 16) transport envelopes signed by another provider
(pec-a.test, in our providers index) for bob, each stored as ``pec smtpd`` stores it; every
task of the queue runs, the skipped ones included. The take-charge and delivery receipts are
built, signed and queued for SMTP in the same transaction as in production, but not sent
(that part does not change with batching). ``BENCH_BLOCKS`` (default 8) queues each way. Uses a
throw-away database ``<DATABASE_URL name>_bench_inbound`` (PostgreSQL, default
postgres://postgres@127.0.0.1:5432/pecmail) and a temporary data directory.
"""

from __future__ import annotations

import os
import time

import throwaway

BURST = int(os.environ.get("BENCH_BURST", "16"))
BLOCKS = int(os.environ.get("BENCH_BLOCKS", "8"))

throwaway.setup("inbound")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from pecmail.certification import envelopes, testing  # noqa: E402
from pecmail.certification.log import log_verify  # noqa: E402
from pecmail.mail import services as mail_services  # noqa: E402
from pecmail.transport import incoming, outbound, services, tasks  # noqa: E402
from pecmail.transport.models import InboundMessage  # noqa: E402


def register(identity) -> None:  # noqa: ANN001 - a certification.pki.ProviderIdentity
    """List the peer (its certificate and domain) in our providers index."""
    from cryptography.hazmat.primitives import serialization

    from pecmail.certification.models import Provider, ProviderCertificate, ProviderDomain
    from pecmail.certification.trust import certificate_sha1

    provider = Provider.objects.create(name=identity.name, mail_receipt=identity.service_address)
    ProviderCertificate.objects.create(
        provider=provider,
        der=identity.cert.public_bytes(serialization.Encoding.DER),
        sha1=certificate_sha1(identity.cert),
    )
    ProviderDomain.objects.create(provider=provider, domain=identity.domain)


def envelope(peer, n: int) -> bytes:  # noqa: ANN001 - a certification.pki.ProviderIdentity
    when = timezone.now()
    original = (
        "From: Alice Rossi <alice@pec-a.test>\r\n"
        f"To: bob@{settings.PEC_DOMAIN}\r\n"
        f"Subject: Fattura {n}\r\n"
        f"Message-ID: <bench-{n}-{time.monotonic_ns()}@pec-a.test>\r\n"
        "Date: Mon, 07 Dec 2026 10:00:00 +0100\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Testo della fattura.\r\n"
    ).encode()
    tx = envelopes.Transaction.from_message(
        original, pec_id=envelopes.new_pec_id(peer.domain, when), when=when
    )
    return envelopes.build_transport_envelope(tx, original, identity=peer).raw


def queue(raws: list[bytes]) -> list[int]:
    """Each envelope stored by a commit of its own, as pec smtpd stores one that came alone."""
    ids = []
    for raw in raws:
        request = services.InboundRequest(
            raw=raw, mail_from="alice@pec-a.test", rcpt_tos=[f"bob@{settings.PEC_DOMAIN}"]
        )
        ((row, _item),) = services.inbound_store_many([request])
        ids.append(row.pk)
    return ids


def process(ids: list[int], *, batched: bool) -> tuple[float, float, float, int]:
    """Run every task of the queue: (wall, process CPU, backend CPU, head locks)."""
    waiting = incoming._waiting
    if not batched:
        incoming._waiting = lambda inbound_id: []
    try:
        outcomes, took = throwaway.measure(lambda: [tasks.inbound_process(pk) for pk in ids])
    finally:
        incoming._waiting = waiting
    assert set(outcomes) <= {"posta-certificata", "skipped"}, outcomes
    return took


def main() -> None:
    call_command("migrate", verbosity=0)
    call_command("pec", "init-provider", verbosity=0)
    mail_services.mailbox_create(address=f"bob@{settings.PEC_DOMAIN}", password=None)
    peer = testing.make_identity("pec-a.test", "Provider A")
    register(peer)
    # The receipts are queued for SMTP in the transaction, as in production, but not sent.
    outbound.outbound_handoff = lambda rows: None
    blocks = BLOCKS + 2
    raws = [envelope(peer, n) for n in range(2 * blocks * BURST)]
    bursts = [raws[i : i + BURST] for i in range(0, len(raws), BURST)]
    process(queue(bursts.pop()), batched=True)  # warm-up: compiled statements, the trust store
    process(queue(bursts.pop()), batched=False)
    results: dict[bool, list[tuple[float, float, float, int]]] = {False: [], True: []}
    for _ in range(BLOCKS):
        for batched in (False, True):
            results[batched].append(process(queue(bursts.pop()), batched=batched))
    left = InboundMessage.objects.filter(state=InboundMessage.State.RECEIVED).count()
    assert left == 0, f"{left} inbound messages left unprocessed"
    assert log_verify().ok

    print(
        f"PostgreSQL {connection.pg_version}, queues of {BURST} envelopes, {BLOCKS} queues each way, "
        f"BATCH_MAX {incoming.BATCH_MAX}"
    )
    throwaway.report(results, size=BURST, unit="envelope", group="queue")


if __name__ == "__main__":
    try:
        main()
    finally:
        throwaway.teardown()
