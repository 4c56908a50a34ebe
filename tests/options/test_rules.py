"""Message rules: created from the page, run once per delivered message, forward without loops."""

from __future__ import annotations

import email

import pytest
from django.core import mail
from django.urls import reverse

from pecmail.mail import storage
from pecmail.mail.models import Folder, Message
from pecmail.options import services
from pecmail.options.models import Rule, RuleRun
from tests.options.conftest import DOMAIN, certified_in


def rule(mailbox, **fields):
    defaults = {"name": "Rule", "field": Rule.Field.ALL}
    defaults.update(fields)
    return services.rule_create(mailbox=mailbox, **defaults)


def test_it_shows_the_seed_labels_on_the_rules_page(alice_client):
    page = alice_client.get(reverse("options:rules")).content.decode()
    for label in (
        "New rule",
        "Rule name",
        "Select",
        "All messages",
        "Forward to address",
        "Active",
        "Add rule",
    ):
        assert label in page


def test_it_names_the_target_folders_in_the_user_s_language(alice_client, alice):
    Folder.objects.create(mailbox=alice, name="Fatture")
    alice_client.cookies["django_language"] = "it"
    page = alice_client.get(reverse("options:rules")).content.decode()
    assert ">Posta in arrivo</option>" in page
    assert ">Fatture</option>" in page
    assert f"{alice.address}/" not in page


def test_it_adds_a_rule_from_the_form(alice_client, alice):
    response = alice_client.post(
        reverse("options:rule_create"),
        {
            "name": "To the office",
            "field": "all",
            "operator": "contains",
            "forward_to": "ufficio@example.com",
            "active": "on",
        },
    )
    assert response.status_code == 302
    created = Rule.objects.get(mailbox=alice)
    assert created.name == "To the office"
    assert created.forward_to == "ufficio@example.com"
    assert created.active is True


def test_it_refuses_a_rule_without_an_action(alice_client, alice):
    response = alice_client.post(
        reverse("options:rule_create"), {"name": "Nothing", "field": "all", "operator": "contains"}
    )
    assert response.status_code == 422
    assert Rule.objects.filter(mailbox=alice).exists() is False


def test_it_refuses_another_users_folder(alice_client, alice, charlie):
    theirs = Folder.objects.get(mailbox=charlie, role=Folder.Role.INBOX)
    response = alice_client.post(
        reverse("options:rule_create"),
        {"name": "X", "field": "all", "operator": "contains", "move_to": theirs.pk},
    )
    assert response.status_code == 422
    assert Rule.objects.exists() is False


def test_it_forwards_to_a_pec_address_as_a_new_certified_message(alice, bob, send_pec):
    rule(alice, name="To Bob", forward_to=bob.address)
    send_pec(sender=bob, to=alice.address, subject="Contratto")
    (received,) = certified_in(alice)
    run = RuleRun.objects.get(message=received)
    assert run.status == RuleRun.Status.DONE
    forwarded = run.produced
    assert forwarded.mailbox == alice
    assert forwarded.kind == Message.Kind.SUBMITTED
    assert forwarded.subject == "Fwd: Contratto"
    assert forwarded.submission_state == Message.Submission.ACCEPTED
    assert forwarded.receipts.filter(kind=Message.Kind.ACCEPTANCE).count() == 1
    raw = email.message_from_bytes(storage.raw_get(forwarded.raw_sha256))
    assert raw["X-Pecmail-Forwarded-By"] == services.chain_token(alice)
    # Bob holds the forward as a PEC of its own, carrying the original as an attachment.
    forwards = certified_in(bob).filter(subject="Fwd: Contratto")
    assert forwards.count() == 1


def test_it_forwards_to_an_ordinary_address_with_the_original_attached(alice, bob, send_pec):
    rule(alice, name="Home", forward_to="alice.home@example.com")
    send_pec(sender=bob, to=alice.address, subject="Avviso")
    (received,) = certified_in(alice)
    assert RuleRun.objects.get(message=received).status == RuleRun.Status.DONE
    (sent,) = mail.outbox
    assert sent.to == ["alice.home@example.com"]
    assert sent.subject == "Fwd: Avviso"
    assert sent.extra_headers["X-Pecmail-Forwarded-By"] == services.chain_token(alice)
    (attachment,) = sent.attachments
    assert attachment.filename == "original.eml"
    assert attachment.content == storage.raw_get(received.raw_sha256)
    # No PEC was sent for an ordinary address.
    assert Message.objects.filter(mailbox=alice, kind=Message.Kind.SUBMITTED).exists() is False


def test_it_never_loops_between_two_mailboxes_that_forward_to_each_other(alice, bob, charlie, send_pec):
    rule(alice, name="To Bob", forward_to=bob.address)
    rule(bob, name="To Alice", forward_to=alice.address)
    send_pec(sender=charlie, to=alice.address, subject="Ping")
    # charlie → alice, alice → bob (forward 1), bob → alice (forward 2), alice stops: her token is in the chain.
    alice_received = list(certified_in(alice))
    bob_received = list(certified_in(bob))
    assert len(alice_received) == 2
    assert len(bob_received) == 1
    last = RuleRun.objects.get(message=alice_received[1])
    assert last.status == RuleRun.Status.SKIPPED
    assert Message.objects.filter(kind=Message.Kind.SUBMITTED, mailbox=alice).count() == 1
    assert Message.objects.filter(kind=Message.Kind.SUBMITTED, mailbox=bob).count() == 1


def test_it_does_not_run_rules_on_the_receipts_of_its_own_forward(alice, bob, send_pec):
    rule(
        alice,
        name="Receipts onward",
        field=Rule.Field.KIND,
        operator=Rule.Operator.EQUALS,
        value="avvenuta-consegna",
        forward_to=bob.address,
    )
    send_pec(sender=alice, to=bob.address, subject="Prima")
    # The delivery receipt of alice's own message is forwarded once; the receipts of that forward are not.
    assert RuleRun.objects.filter(rule__mailbox=alice).count() == 1
    assert Message.objects.filter(mailbox=alice, kind=Message.Kind.SUBMITTED).count() == 2


def test_it_runs_each_rule_once_per_message(alice, bob, send_pec):
    rule(alice, name="Home", forward_to="alice.home@example.com")
    send_pec(sender=bob, to=alice.address)
    (received,) = certified_in(alice)
    assert services.rules_apply(message_id=received.pk) == []
    assert len(mail.outbox) == 1
    assert RuleRun.objects.filter(message=received).count() == 1


def test_it_moves_marks_and_flags(alice, bob, send_pec):
    archive = Folder.objects.create(mailbox=alice, name="Fatture")
    rule(
        alice,
        name="Invoices",
        field=Rule.Field.SUBJECT,
        operator=Rule.Operator.CONTAINS,
        value="fattura",
        move_to=archive,
        mark_read=True,
        flag=True,
    )
    send_pec(sender=bob, to=alice.address, subject="La FATTURA di maggio")
    send_pec(sender=bob, to=alice.address, subject="Altro")
    invoice, other = certified_in(alice)
    assert invoice.folder == archive
    assert invoice.seen is True
    assert invoice.flagged is True
    assert other.folder.role == Folder.Role.INBOX
    assert other.seen is False
    assert other.flagged is False


@pytest.mark.parametrize(
    ("field", "operator", "value", "matches"),
    [
        ("sender", "contains", "bianchi", True),
        ("sender", "equals", f"bob@{DOMAIN}", True),
        ("sender", "equals", "bob", False),
        ("recipient", "equals", f"alice@{DOMAIN}", True),
        ("recipient", "contains", "nobody", False),
        ("kind", "equals", "posta-certificata", True),
        ("kind", "equals", "anomalia", False),
        ("subject", "equals", "fattura 42", True),
    ],
)
def test_it_matches_conditions(alice, bob, send_pec, field, operator, value, matches):
    rule(alice, name="Flag", field=field, operator=operator, value=value, flag=True)
    send_pec(sender=bob, to=alice.address, subject="Fattura 42")
    (received,) = certified_in(alice)
    assert received.flagged is matches


def test_it_applies_rules_in_order_and_skips_inactive_ones(alice, bob, send_pec):
    first = Folder.objects.create(mailbox=alice, name="First")
    second = Folder.objects.create(mailbox=alice, name="Second")
    a = rule(alice, name="A", move_to=first)
    b = rule(alice, name="B", move_to=second)
    rule(alice, name="C", flag=True, active=False)
    services.rule_move(rule=b, up=True)
    assert list(Rule.objects.filter(mailbox=alice).values_list("name", flat=True)) == ["B", "A", "C"]
    send_pec(sender=bob, to=alice.address)
    (received,) = certified_in(alice)
    # B then A: A moves last.
    assert received.folder == first
    assert received.flagged is False
    assert a.runs.count() == 1


def test_it_records_a_failure_and_shows_it(alice, bob, send_pec, alice_client, settings):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
        }
    }
    rule(alice, name="Broken forward", forward_to="alice.home@example.com")
    send_pec(sender=bob, to=alice.address)
    (received,) = certified_in(alice)
    run = RuleRun.objects.get(message=received)
    assert run.status == RuleRun.Status.FAILED
    assert run.error != ""
    page = alice_client.get(reverse("options:rules")).content.decode()
    assert "Rules that failed" in page
    assert "Broken forward" in page


def test_it_reorders_toggles_edits_and_deletes_through_post(alice_client, alice):
    a = rule(alice, name="A", flag=True)
    b = rule(alice, name="B", flag=True)
    assert (
        alice_client.post(reverse("options:rule_move", args=[b.pk]), {"direction": "up"}).status_code == 302
    )
    assert list(Rule.objects.filter(mailbox=alice).values_list("name", flat=True)) == ["B", "A"]
    alice_client.post(reverse("options:rule_toggle", args=[a.pk]))
    a.refresh_from_db()
    assert a.active is False
    response = alice_client.post(
        reverse("options:rule_edit", args=[a.pk]),
        {"name": "A2", "field": "subject", "operator": "equals", "value": "x", "mark_read": "on"},
    )
    assert response.status_code == 302
    a.refresh_from_db()
    assert (a.name, a.field, a.mark_read, a.flag) == ("A2", "subject", True, False)
    alice_client.post(reverse("options:rule_delete", args=[a.pk]))
    assert Rule.objects.filter(pk=a.pk).exists() is False


def test_it_hides_alices_rules_from_charlie(alice, charlie_client):
    theirs = rule(alice, name="Private", flag=True)
    assert charlie_client.get(reverse("options:rule_edit", args=[theirs.pk])).status_code == 404
    for name in ("rule_edit", "rule_delete", "rule_move", "rule_toggle"):
        assert (
            charlie_client.post(reverse(f"options:{name}", args=[theirs.pk]), {"name": "x"}).status_code
            == 404
        )
    assert Rule.objects.filter(pk=theirs.pk, name="Private", active=True).exists() is True
    assert "Private" not in charlie_client.get(reverse("options:rules")).content.decode()


def test_it_refuses_get_on_changes_and_anonymous_users(client, alice):
    theirs = rule(alice, name="R", flag=True)
    assert client.get(reverse("options:rules")).status_code == 302
    assert client.post(reverse("options:rule_delete", args=[theirs.pk])).status_code == 302
    client.force_login(alice.owner)
    assert client.get(reverse("options:rule_delete", args=[theirs.pk])).status_code == 405
    assert client.get(reverse("options:rule_create")).status_code == 405


def test_it_files_receipts_with_a_pec_kind_rule(alice, bob, send_pec):
    acceptances = Folder.objects.create(mailbox=alice, name="Accettazioni")
    rule(
        alice,
        name="Acceptances",
        field=Rule.Field.KIND,
        operator=Rule.Operator.EQUALS,
        value="accettazione",
        move_to=acceptances,
    )
    sent = send_pec(sender=alice, to=bob.address)
    folders = {r.kind: r.folder for r in sent.receipts.all()}
    assert folders[Message.Kind.ACCEPTANCE] == acceptances
    assert folders[Message.Kind.DELIVERY].role == Folder.Role.INBOX


def test_it_applies_rules_to_anomaly_envelopes(alice, provider, django_capture_on_commit_callbacks):
    from pecmail.mail import services as mail_services
    from tests.options.test_general import ordinary_raw

    rule(
        alice,
        name="Anomalies",
        field=Rule.Field.KIND,
        operator=Rule.Operator.EQUALS,
        value="anomalia",
        flag=True,
    )
    with django_capture_on_commit_callbacks(execute=True):
        stored = mail_services.message_store(
            mailbox=alice, raw=ordinary_raw("Da fuori"), kind=Message.Kind.ANOMALY
        )
    stored.refresh_from_db()
    assert stored.flagged is True


def test_it_enqueues_options_work_only_for_what_the_mailbox_uses(
    alice, provider, django_capture_on_commit_callbacks
):
    """No rule, notification address or Receipts folder: a delivery enqueues none of their tasks."""
    from django.utils import timezone

    from pecmail.mail import services as mail_services
    from pecmail.options.models import NotificationAddress, Preferences
    from tests.options.test_general import ordinary_raw

    def enqueued_by_a_delivery(n: int, kind: str) -> int:
        with django_capture_on_commit_callbacks() as callbacks:
            mail_services.message_store(mailbox=alice, raw=ordinary_raw(f"Consegna {n}", n), kind=kind)
        return len(callbacks)

    plain = {
        kind: enqueued_by_a_delivery(n, kind)
        for n, kind in enumerate(Message.Kind.values)
        if kind != "submitted"
    }
    rule(alice, name="Flag", flag=True)
    NotificationAddress.objects.create(
        user=alice.owner, address="alice@example.com", confirmed_at=timezone.now()
    )
    Preferences.objects.update_or_create(user=alice.owner, defaults={"receipts": Preferences.Receipts.FOLDER})
    for n, kind in enumerate(plain, start=100):
        # One more for the rules, plus one for notices (certified mail) or for filing (receipts).
        extra = 1 + (kind == Message.Kind.CERTIFIED) + Message(kind=kind).is_receipt
        assert enqueued_by_a_delivery(n, kind) == plain[kind] + extra, kind
