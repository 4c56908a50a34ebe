"""``pec smtpd`` stores concurrent SMTP transactions in one database transaction (group commit)."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError

from pecmail.certification.log import log_verify
from pecmail.certification.models import ProviderLogEntry
from pecmail.transport import services
from pecmail.transport.handler import GroupCommitter
from pecmail.transport.models import InboundMessage, OutboxItem

pytestmark = pytest.mark.django_db(transaction=True)


def request(n: int, mail_from: str = "sender@peer.test") -> services.InboundRequest:
    raw = f"From: {mail_from}\r\nSubject: {n}\r\n\r\nbody {n}\r\n".encode()
    return services.InboundRequest(raw=raw, mail_from=mail_from, rcpt_tos=[f"r{n}@pec.localhost"])


@pytest.fixture
def batches(monkeypatch):
    """Record each batch the writer stores; the first one waits until the test lets it go."""
    real = services.inbound_store_many
    seen: list[list[str]] = []
    first_started, release = threading.Event(), threading.Event()

    def recording(requests):
        seen.append([r.mail_from for r in requests])
        if len(seen) == 1:
            first_started.set()
            release.wait(timeout=30)
        if any(r.mail_from == "bad@peer.test" for r in requests):
            raise OperationalError("value rejected by the database")
        return real(requests)

    monkeypatch.setattr(services, "inbound_store_many", recording)
    return seen, first_started, release


def test_it_stores_what_queued_meanwhile_in_one_transaction(batches):
    seen, first_started, release = batches
    published: list[list[int]] = []
    committer = GroupCommitter(publish=published.append, max_batch=64)
    try:
        futures = [committer.submit(request(0))]
        assert first_started.wait(timeout=30)
        futures += [committer.submit(request(n)) for n in range(1, 10)]
        release.set()
        results = [future.result(timeout=30) for future in futures]
    finally:
        committer.close()
    # The lone first message was stored at once; the nine that queued behind it went together.
    assert [len(batch) for batch in seen] == [1, 9]
    assert [inbound.rcpt_tos for inbound, _item in results] == [[f"r{n}@pec.localhost"] for n in range(10)]
    assert InboundMessage.objects.count() == 10
    # One outbox row (one Celery message) per batch, published once the batch committed.
    lone, together = OutboxItem.objects.order_by("id")
    assert (lone.task_name, lone.kwargs) == (services.TASK_INBOUND_PROCESS, {"inbound_id": results[0][0].pk})
    assert (together.task_name, together.kwargs) == (
        services.TASK_INBOUND_PROCESS_MANY,
        {"inbound_ids": [inbound.pk for inbound, _item in results[1:]]},
    )
    assert [[item.pk for item in items] for items in published] == [[lone.pk], [together.pk]]
    # One log row per message, in submission order, and the chain is whole.
    identifiers = list(ProviderLogEntry.objects.order_by("seq").values_list("identifier", flat=True))
    assert identifiers[-10:] == [f"inbound-{inbound.pk}" for inbound, _item in results]
    assert log_verify().ok


def test_one_rejected_message_does_not_fail_the_others_in_its_batch(batches):
    seen, first_started, release = batches
    committer = GroupCommitter(publish=None)
    try:
        first = committer.submit(request(0))
        assert first_started.wait(timeout=30)
        good_1 = committer.submit(request(1))
        bad = committer.submit(request(2, mail_from="bad@peer.test"))
        good_2 = committer.submit(request(3))
        release.set()
        first.result(timeout=30)
        assert good_1.result(timeout=30)[0].mail_from == "sender@peer.test"
        assert good_2.result(timeout=30)[0].mail_from == "sender@peer.test"
        with pytest.raises(OperationalError):
            bad.result(timeout=30)
    finally:
        committer.close()
    assert InboundMessage.objects.count() == 3
    assert not InboundMessage.objects.filter(mail_from="bad@peer.test").exists()
    assert log_verify().ok


def test_close_stores_what_is_still_queued(batches):
    seen, first_started, release = batches
    committer = GroupCommitter(publish=None)
    first = committer.submit(request(0))
    assert first_started.wait(timeout=30)
    queued = committer.submit(request(1))
    release.set()
    committer.close()
    assert first.done() and queued.done()
    assert InboundMessage.objects.count() == 2


def test_the_bare_cr_or_lf_check_matches_its_definition():
    """The fast count-based check agrees with the plain definition on every short CR/LF mix."""
    import itertools
    import re

    from pecmail.transport.handler import has_bare_cr_or_lf

    definition = re.compile(rb"\r(?!\n)|(?<!\r)\n")
    for length in range(7):
        for combo in itertools.product([b"a", b"\r", b"\n"], repeat=length):
            raw = b"".join(combo)
            assert has_bare_cr_or_lf(raw) is bool(definition.search(raw)), raw
