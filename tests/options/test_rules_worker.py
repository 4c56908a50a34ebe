"""Rules on a real Celery worker and Redis: delivery → message_delivered → rules_apply → a PEC forward.

Runs only with REDIS_URL and a database another process can open (see tests/integration).
"""

from __future__ import annotations

import os

import pytest

from pecmail.mail import services as mail_services
from pecmail.mail.models import Message
from pecmail.options import services
from pecmail.options.models import RuleRun
from tests.conftest import make_mailbox
from tests.integration.test_worker_pipeline import wait_for, worker  # noqa: F401 - the worker fixture

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real broker for the worker)"
    ),
]


def test_it_forwards_flags_and_stops_on_a_real_worker(worker):  # noqa: F811
    _identity, process, log_path = worker
    alice = make_mailbox("alice", "Alice Rossi")
    bob = make_mailbox("bob", "Bob Bianchi")
    carol = make_mailbox("carol", "Carol Verdi")
    services.rule_create(mailbox=alice, name="To Bob", forward_to=bob.address, flag=True)
    services.rule_create(mailbox=bob, name="Back to Alice", forward_to=alice.address)
    mail_services.message_submit(
        mailbox=carol,
        to=[alice.address],
        cc=[],
        subject="Via worker",
        body_text="x",
        body_html=None,
        attachments=[],
    )

    def settled() -> bool:
        # carol → alice → bob → alice, where alice's rule stops (her token is in the chain).
        return RuleRun.objects.filter(rule__mailbox=alice, status=RuleRun.Status.SKIPPED).exists()

    wait_for(settled, process, log_path)
    first = Message.objects.filter(mailbox=alice, kind=Message.Kind.CERTIFIED).order_by("id").first()
    assert first.subject == "Via worker"
    assert first.flagged is True
    assert Message.objects.filter(mailbox=bob, kind=Message.Kind.CERTIFIED).count() == 1
    assert Message.objects.filter(mailbox=alice, kind=Message.Kind.SUBMITTED).count() == 1
    assert RuleRun.objects.filter(status=RuleRun.Status.FAILED).exists() is False
