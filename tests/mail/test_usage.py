"""A mailbox's space, kept by the database's triggers and folded by ``usage_fold``."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from pecmail.mail import services, usage
from pecmail.mail.models import Folder, Mailbox, MailboxUsageChange, Message

pytestmark = pytest.mark.django_db


def filed(mailbox: Mailbox, text: str = "Testo del messaggio.") -> Message:
    raw = (
        f"From: someone@example.test\r\nTo: {mailbox.address}\r\nSubject: Prova\r\n"
        f"Message-ID: <{id(text)}-{len(text)}@example.test>\r\n\r\n{text}\r\n"
    ).encode()
    return services.message_store(mailbox=mailbox, raw=raw)


def summed(mailbox: Mailbox) -> int:
    return Message.objects.filter(mailbox=mailbox).aggregate(total=Sum("size"))["total"] or 0


def test_the_triggers_survive_every_migration():
    """SQLite drops a table's triggers when a migration rebuilds it: this notices."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'mail_message'::regclass AND NOT tgisinternal"
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'mail_message'"
            )
        names = {row[0] for row in cursor.fetchall()}
    assert {"mail_message_usage_insert", "mail_message_usage_delete", "mail_message_usage_update"} <= names


def test_filing_and_deleting_messages_moves_the_figure_without_summing_the_mailbox(alice, bob):
    assert usage.mailbox_usage(mailbox=alice) == 0
    first, second = filed(alice), filed(alice, "Un altro testo, più lungo del primo.")
    filed(bob)
    assert usage.mailbox_usage(mailbox=alice) == first.size + second.size == summed(alice)
    assert usage.mailbox_usage(mailbox=bob) == summed(bob) > 0
    services.message_delete(message=first)  # to the Trash: still in the mailbox
    assert usage.mailbox_usage(mailbox=alice) == first.size + second.size
    Message.objects.filter(pk=first.pk).delete()
    assert usage.mailbox_usage(mailbox=alice) == second.size == summed(alice)


def test_a_fold_keeps_the_figure_and_empties_the_changes(alice, bob):
    for n in range(5):
        filed(alice, "x" * (100 * n))
    filed(bob)
    before = usage.mailbox_usage(mailbox=alice)
    assert usage.usage_fold(batch=2) == 6  # all six, in batches of two
    assert not MailboxUsageChange.objects.exists()
    alice.refresh_from_db()
    assert alice.used_bytes == before == summed(alice)
    assert usage.mailbox_usage(mailbox=bob) == summed(bob)
    # After a fold the changes start again from the folded figure.
    Message.objects.filter(mailbox=alice).order_by("pk").first().delete()
    assert usage.mailbox_usage(mailbox=alice) == summed(alice) < before
    assert usage.usage_fold() == 1
    assert usage.mailbox_usage(mailbox=alice) == summed(alice)


def test_a_bulk_delete_and_a_move_to_another_mailbox_are_counted(alice, bob):
    messages = [filed(alice, f"messaggio {n}") for n in range(4)]
    trash = Folder.objects.get(mailbox=alice, role=Folder.Role.TRASH)
    Message.objects.filter(pk__in=[m.pk for m in messages[:2]]).update(folder=trash)
    assert services.trash_empty(mailbox=alice) == 2
    assert usage.mailbox_usage(mailbox=alice) == summed(alice) == sum(m.size for m in messages[2:])
    inbox_b = Folder.objects.get(mailbox=bob, role=Folder.Role.INBOX)
    Message.objects.filter(pk=messages[2].pk).update(mailbox=bob, folder=inbox_b)
    Message.objects.filter(pk=messages[3].pk).update(size=10)  # a size put right counts too
    assert usage.mailbox_usage(mailbox=alice) == summed(alice) == 10
    assert usage.mailbox_usage(mailbox=bob) == summed(bob) == messages[2].size
    usage.usage_fold()
    assert usage.mailbox_usage(mailbox=alice) == 10
    assert usage.mailbox_usage(mailbox=bob) == messages[2].size


def test_flag_and_folder_changes_write_no_change_rows(alice):
    message = filed(alice)
    usage.usage_fold()
    Message.objects.filter(pk=message.pk).update(seen=True, flagged=True)
    message.folder = Folder.objects.get(mailbox=alice, role=Folder.Role.TRASH)
    message.save()
    assert not MailboxUsageChange.objects.exists()


def test_the_changes_of_a_deleted_mailbox_are_dropped_by_the_fold(alice, bob):
    filed(alice)
    filed(bob)
    alice.owner.delete()  # the user, their mailbox and its messages, through Django's cascades
    assert MailboxUsageChange.objects.filter(mailbox_id=alice.pk).aggregate(total=Sum("bytes"))["total"] == 0
    usage.usage_fold()
    assert not MailboxUsageChange.objects.exists()
    assert usage.mailbox_usage(mailbox=bob) == summed(bob)


def test_the_sidebar_shows_the_space_used_and_warns_when_nearly_full(alice, alice_client):
    message = filed(alice, "y" * 2000)
    page = alice_client.get(reverse("mail:index")).content.decode()
    assert "Space used" in page and "mailbox-space-warning" not in page
    Mailbox.objects.filter(pk=alice.pk).update(quota_bytes=message.size + 100)
    page = alice_client.get(reverse("mail:index"), HTTP_ACCEPT_LANGUAGE="it").content.decode()
    assert "Spazio occupato" in page
    assert "La casella è quasi piena" in page


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs real concurrent connections (PostgreSQL)"
)
@pytest.mark.django_db(transaction=True)
def test_folds_running_beside_deliveries_count_every_message_once():
    """Two folders and three writers at once: the figure still equals the sum of the sizes."""
    from tests.conftest import make_mailbox

    mailboxes = [make_mailbox("uno", "Uno"), make_mailbox("due", "Due")]
    errors: list[BaseException] = []
    done = threading.Event()
    barrier = threading.Barrier(5)

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(25):
                message = filed(mailboxes[(n + i) % 2], f"scrittore {n} messaggio {i} " + "z" * (i * 37))
                if i % 5 == 0:
                    Message.objects.filter(pk=message.pk).delete()
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    def folder() -> None:
        try:
            barrier.wait()
            while not done.is_set():
                usage.usage_fold(batch=3)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    folders = [threading.Thread(target=folder) for _ in range(2)]
    for thread in writers + folders:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in folders:
        thread.join()
    assert errors == []
    for mailbox in mailboxes:
        assert usage.mailbox_usage(mailbox=mailbox) == summed(mailbox) > 0
    usage.usage_fold()
    for mailbox in mailboxes:
        mailbox.refresh_from_db()
        assert mailbox.used_bytes == summed(mailbox)


@pytest.mark.django_db(transaction=True)
def test_the_migration_starts_each_mailbox_at_the_sum_of_the_messages_it_already_has():
    """An existing installation upgrades: used_bytes is filled in, and the triggers count from there."""
    from django.db.migrations.executor import MigrationExecutor

    before = [("mail", "0004_message_notice_stage")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        user = old.get_model("accounts", "User").objects.create(email="old@pec.example.test")
        mailbox = old.get_model("mail", "Mailbox").objects.create(address="old@pec.example.test", owner=user)
        folder = old.get_model("mail", "Folder").objects.create(mailbox=mailbox, name="Inbox", role="inbox")
        for size in (1000, 2500, 40):
            old.get_model("mail", "Message").objects.create(
                mailbox=mailbox, folder=folder, raw_sha256="0" * 64, size=size, date=timezone.now()
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    upgraded = Mailbox.objects.get(address="old@pec.example.test")
    assert upgraded.used_bytes == 3540
    assert not MailboxUsageChange.objects.exists()
    assert usage.mailbox_usage(mailbox=upgraded) == 3540
    Message.objects.filter(mailbox=upgraded, size=40).delete()
    assert usage.mailbox_usage(mailbox=upgraded) == 3500
