"""``pec smtpd`` stores concurrent SMTP transactions in one database transaction (group commit)."""

from __future__ import annotations

import threading
import time

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

    def recording(requests, **kwargs):
        seen.append([r.mail_from for r in requests])
        if len(seen) == 1:
            first_started.set()
            release.wait(timeout=30)
        if any(r.mail_from == "bad@peer.test" for r in requests):
            raise OperationalError("value rejected by the database")
        return real(requests, **kwargs)

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


def test_published_rows_are_marked_by_the_next_batch_or_after_a_pause(monkeypatch):
    """The mark that keeps the relay from publishing a row again costs no commit of its own."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sent: list[list[int]] = []
    statements: list[list[str]] = []
    real = services.inbound_store_many

    def store(requests, **kwargs):
        with CaptureQueriesContext(connection) as queries:
            result = real(requests, **kwargs)
        statements.append([q["sql"] for q in queries.captured_queries])
        return result

    monkeypatch.setattr(services, "inbound_store_many", store)

    def publish(items):  # reaches the broker, leaves the marking to the committer
        sent.append([item.pk for item in items])
        return len(items)

    monkeypatch.setattr(GroupCommitter, "MARK_DELAY", 30.0)
    committer = GroupCommitter(publish=publish)
    try:
        _inbound, first_item = committer.submit(request(1)).result(timeout=30)
        assert OutboxItem.objects.get(pk=first_item.pk).published_at is None  # not yet marked
        _inbound, second_item = committer.submit(request(2)).result(timeout=30)
        # The second batch's own transaction marked the first row published (between BEGIN and COMMIT).
        assert OutboxItem.objects.get(pk=first_item.pk).published_at is not None
        assert any('UPDATE "transport_outboxitem"' in sql for sql in statements[1])
        assert OutboxItem.objects.get(pk=second_item.pk).published_at is None
    finally:
        committer.close()  # stopping marks what is left
    assert sent == [[first_item.pk], [second_item.pk]]
    assert OutboxItem.objects.filter(published_at__isnull=True).count() == 0

    monkeypatch.setattr(GroupCommitter, "MARK_DELAY", 0.05)
    committer = GroupCommitter(publish=publish)
    try:
        _inbound, item = committer.submit(request(3)).result(timeout=30)
        for _ in range(200):  # no next batch: the pause marks it
            if OutboxItem.objects.get(pk=item.pk).published_at is not None:
                break
            time.sleep(0.05)
        assert OutboxItem.objects.get(pk=item.pk).published_at is not None
    finally:
        committer.close()


def test_a_publish_that_failed_is_not_marked(monkeypatch):
    def publish(items):
        raise ConnectionError("broker down")

    committer = GroupCommitter(publish=publish)
    try:
        _inbound, item = committer.submit(request(4)).result(timeout=30)
        committer.submit(request(5)).result(timeout=30)
    finally:
        committer.close()
    assert OutboxItem.objects.get(pk=item.pk).published_at is None  # left to the relay


def test_publishing_is_paced_and_what_queued_meanwhile_goes_together(monkeypatch):
    """A lone message is published at once; batches within the interval wait and go in one call."""
    sent: list[list[int]] = []

    def publish(items):
        sent.append([item.pk for item in items])
        return len(items)

    def wait_for(count: int) -> None:
        for _ in range(400):
            if len(sent) >= count:
                return
            time.sleep(0.01)
        raise AssertionError(f"{count} publishes expected, saw {sent}")

    monkeypatch.setattr(GroupCommitter, "PUBLISH_INTERVAL", 1.0)
    committer = GroupCommitter(publish=publish)
    try:
        started = time.monotonic()
        _inbound, first = committer.submit(request(1)).result(timeout=30)
        wait_for(1)
        # Stored and answered at once, but published only once the interval has passed.
        later = [committer.submit(request(n)).result(timeout=30)[1] for n in (2, 3, 4)]
        assert sent == [[first.pk]]
        wait_for(2)
        assert time.monotonic() - started >= 1.0
    finally:
        committer.close()
    assert sent == [[first.pk], [item.pk for item in later]]
    assert OutboxItem.objects.filter(published_at__isnull=True).count() == 0


def test_close_publishes_what_still_waits_for_its_turn(monkeypatch):
    sent: list[list[int]] = []
    monkeypatch.setattr(GroupCommitter, "PUBLISH_INTERVAL", 30.0)
    committer = GroupCommitter(publish=lambda items: sent.append([i.pk for i in items]) or len(items))
    _inbound, first = committer.submit(request(1)).result(timeout=30)
    _inbound, second = committer.submit(request(2)).result(timeout=30)
    committer.close()
    assert sent == [[first.pk], [second.pk]]
    assert OutboxItem.objects.filter(published_at__isnull=True).count() == 0


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


def test_a_batch_is_two_statements_on_postgresql_and_the_same_rows_everywhere():
    """The writer's transaction: on PostgreSQL one statement stores and locks, one logs and queues."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from pecmail.certification.log import log_deferred
    from pecmail.certification.models import ProviderLogHead

    assert not ProviderLogHead.objects.exists()  # the very first append creates the head
    earlier = OutboxItem.objects.create(task_name=services.TASK_INBOUND_PROCESS, kwargs={"inbound_id": 0})
    with CaptureQueriesContext(connection) as queries:
        stored = services.inbound_store_many([request(1), request(2)], mark_published=[earlier.pk])
    sql = [q["sql"] for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    if connection.vendor == "postgresql":
        # Two statements, and between them what creates the head.
        assert sql[0].startswith("WITH") and sql[-1].startswith("WITH")
        assert sql[1:-1] and all(
            "providerloghead" in s or s.startswith(("SAVEPOINT", "RELEASE")) for s in sql[1:-1]
        )
    rows = [row for row, _item in stored]
    (item,) = {item.pk for _row, item in stored}
    assert OutboxItem.objects.get(pk=item).kwargs == {"inbound_ids": [row.pk for row in rows]}
    assert OutboxItem.objects.get(pk=earlier.pk).published_at is not None
    assert [
        bytes(r.raw) for r in InboundMessage.objects.filter(pk__in=[r.pk for r in rows]).order_by("pk")
    ] == [
        request(1).raw,
        request(2).raw,
    ]
    log_rows = list(ProviderLogEntry.objects.order_by("seq"))
    assert [(e.identifier, e.recipients) for e in log_rows] == [
        (f"inbound-{rows[0].pk}", ["r1@pec.localhost"]),
        (f"inbound-{rows[1].pk}", ["r2@pec.localhost"]),
    ]
    assert log_verify().ok

    # With the head there: exactly two statements on PostgreSQL. In a deferred block the log
    # rows wait for the block's end.
    with CaptureQueriesContext(connection) as queries:
        services.inbound_store_many([request(3)])
    if connection.vendor == "postgresql":
        assert [q["sql"].split()[0] for q in queries.captured_queries] == ["BEGIN", "WITH", "WITH", "COMMIT"]
    with transaction.atomic(), log_deferred():
        ((row, _item),) = services.inbound_store_many([request(4)])
        assert not ProviderLogEntry.objects.filter(identifier=f"inbound-{row.pk}").exists()
    assert ProviderLogEntry.objects.filter(identifier=f"inbound-{row.pk}").count() == 1
    assert log_verify().ok and log_verify().rows == 4
