"""Tasks pages: views by date, quick add, ticking done, VTODO import/export, tasks from messages."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pecmail.mail.models import Folder, Message
from pecmail.todos import services
from pecmail.todos.models import Task, TaskList

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def make_task(owner, title="Pagare F24", **fields):
    return services.task_create(owner=owner, fields={"title": title, **fields})


def make_message(mailbox, subject="Richiesta documenti", when=NOW):
    folder = Folder.objects.get(mailbox=mailbox, role=Folder.Role.INBOX)
    return Message.objects.create(
        mailbox=mailbox,
        folder=folder,
        raw_sha256="0" * 64,
        subject=subject,
        from_address="ufficio@pec.example.it",
        date=when,
        kind=Message.Kind.CERTIFIED,
    )


@pytest.fixture
def task(alice):
    return make_task(alice.owner, due_date=dt.date(2026, 11, 27))


@pytest.fixture
def task_list(alice):
    return services.task_list_create(owner=alice.owner, name="Studio")


def titles(response) -> list[str]:
    return [t.title for t in response.context["tasks"]]


def test_it_sorts_tasks_into_today_overdue_upcoming_all_and_done(alice_client, alice):
    make_task(alice.owner, "oggi", due_date=dt.date(2026, 11, 27))
    make_task(alice.owner, "ieri", due_date=dt.date(2026, 11, 26))
    make_task(alice.owner, "domani", due_date=dt.date(2026, 11, 28))
    make_task(alice.owner, "senza data")
    make_task(alice.owner, "fatto", due_date=dt.date(2026, 11, 27), status=Task.Status.DONE)
    assert titles(alice_client.get(reverse("todos:index"))) == ["oggi"]
    assert titles(alice_client.get(reverse("todos:overdue"))) == ["ieri"]
    assert titles(alice_client.get(reverse("todos:upcoming"))) == ["domani"]
    assert titles(alice_client.get(reverse("todos:all"))) == ["ieri", "oggi", "domani", "senza data"]
    assert titles(alice_client.get(reverse("todos:done"))) == ["fatto"]


def test_it_uses_the_local_date_for_today(alice_client, alice):
    make_task(alice.owner, "sabato", due_date=dt.date(2026, 11, 28))
    # 23:30 UTC on Friday is already Saturday in Rome.
    with time_machine.travel(dt.datetime(2026, 11, 27, 23, 30, tzinfo=dt.UTC), tick=False):
        assert titles(alice_client.get(reverse("todos:index"))) == ["sabato"]


def test_it_quick_adds_a_task_due_today_from_the_today_view(alice_client, alice):
    page = alice_client.get(reverse("todos:index")).content.decode()
    assert 'value="2026-11-27"' in page
    response = alice_client.post(
        reverse("todos:quick_add"), {"title": "Chiamare Mario", "due_date": "2026-11-27", "next": "/tasks/"}
    )
    assert response.status_code == 302 and response["Location"] == "/tasks/"
    assert titles(alice_client.get(reverse("todos:index"))) == ["Chiamare Mario"]


def test_it_refuses_a_quick_add_without_title(alice_client, alice):
    alice_client.post(reverse("todos:quick_add"), {"title": ""})
    assert Task.objects.filter(owner=alice.owner).exists() is False


def test_it_ticks_a_task_done_and_back_keeping_the_completion_date(alice_client, task):
    alice_client.post(reverse("todos:toggle", args=[task.pk]))
    task.refresh_from_db()
    assert task.status == Task.Status.DONE
    assert task.completed_at == NOW
    alice_client.post(reverse("todos:toggle", args=[task.pk]))
    task.refresh_from_db()
    assert task.status == Task.Status.TODO
    assert task.completed_at is None


def test_it_creates_and_edits_a_task_with_every_field(alice_client, alice, task_list):
    data = {
        "title": "Dichiarazione",
        "due_date": "2026-12-01",
        "due_time": "09:30",
        "priority": "1",
        "status": "in-process",
        "task_list": task_list.pk,
        "notes": "Portare i documenti",
    }
    assert alice_client.post(reverse("todos:new"), data).status_code == 302
    task = Task.objects.get(owner=alice.owner)
    assert (task.due_time, task.priority, task.status, task.task_list) == (
        dt.time(9, 30),
        1,
        "in-process",
        task_list,
    )
    data["status"] = "completed"
    alice_client.post(reverse("todos:edit", args=[task.pk]), data)
    task.refresh_from_db()
    assert task.completed_at == NOW


def test_it_refuses_a_time_without_a_date(alice_client, alice):
    response = alice_client.post(
        reverse("todos:new"), {"title": "x", "due_time": "09:00", "priority": "5", "status": "needs-action"}
    )
    assert response.status_code == 422
    assert Task.objects.exists() is False


def test_it_refuses_another_users_list_in_the_form(alice_client, alice, charlie):
    other = services.task_list_create(owner=charlie.owner, name="Suo")
    data = {"title": "x", "priority": "5", "status": "needs-action", "task_list": other.pk}
    assert alice_client.post(reverse("todos:new"), data).status_code == 422


def test_it_shows_hostile_titles_and_notes_escaped(alice_client, alice):
    task = make_task(alice.owner, HOSTILE, notes=HOSTILE, due_date=dt.date(2026, 11, 27))
    services.task_list_create(owner=alice.owner, name=HOSTILE)
    for url in (reverse("todos:index"), reverse("todos:edit", args=[task.pk]), reverse("todos:lists")):
        page = alice_client.get(url).content.decode()
        assert "<script>alert" not in page and "<img src=x" not in page, url
        assert "&lt;script&gt;" in page, url


def ics(*todos: str) -> bytes:
    body = "".join(f"BEGIN:VTODO\r\n{t}END:VTODO\r\n" for t in todos)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n{body}END:VCALENDAR\r\n".encode()


def test_it_previews_an_import_and_imports_on_confirmation(alice_client, alice):
    make_task(alice.owner, "gia")
    existing_uid = Task.objects.get(owner=alice.owner).uid
    data = ics(
        "UID:new-1\r\nSUMMARY:Nuovo\r\nCATEGORIES:Casa\r\nDUE;VALUE=DATE:20261201\r\n",
        f"UID:{existing_uid}\r\nSUMMARY:Doppione\r\n",
    )
    response = alice_client.post(reverse("todos:import"), {"file": SimpleUploadedFile("t.ics", data)})
    assert response.status_code == 302
    assert Task.objects.filter(owner=alice.owner).count() == 1
    preview = alice_client.get(reverse("todos:import_preview")).content.decode()
    assert "Nuovo" in preview and "it is already in your tasks" in preview
    alice_client.post(reverse("todos:import_preview"), {"action": "confirm"})
    task = Task.objects.get(owner=alice.owner, uid="new-1")
    assert (task.title, task.task_list.name, task.due_date) == ("Nuovo", "Casa", dt.date(2026, 12, 1))


def test_it_imports_nothing_when_cancelled(alice_client, alice):
    alice_client.post(
        reverse("todos:import"), {"file": SimpleUploadedFile("t.ics", ics("UID:1\r\nSUMMARY:A\r\n"))}
    )
    alice_client.post(reverse("todos:import_preview"), {"action": "cancel"})
    assert Task.objects.exists() is False


def test_it_refuses_oversized_and_malformed_files_with_a_form_error(alice_client, alice, settings):
    response = alice_client.post(reverse("todos:import"), {"file": SimpleUploadedFile("t.ics", b"nonsense")})
    assert response.status_code == 422 and "not a valid iCalendar file" in response.content.decode()
    settings.TODOS_IMPORT_MAX_BYTES = 50
    response = alice_client.post(
        reverse("todos:import"), {"file": SimpleUploadedFile("t.ics", ics("UID:1\r\nSUMMARY:A\r\n"))}
    )
    assert response.status_code == 422 and "too large" in response.content.decode()
    assert Task.objects.exists() is False


def test_it_shows_a_hostile_ics_escaped(alice_client, alice):
    data = ics(
        f"UID:x\r\nSUMMARY:{HOSTILE}\r\nDESCRIPTION:{HOSTILE}\r\nCATEGORIES:{HOSTILE}\r\nURL:javascript:alert(1)\r\n"
    )
    alice_client.post(reverse("todos:import"), {"file": SimpleUploadedFile("t.ics", data)})
    preview = alice_client.get(reverse("todos:import_preview")).content.decode()
    assert "<script>alert" not in preview and "&lt;script&gt;" in preview
    alice_client.post(reverse("todos:import_preview"), {"action": "confirm"})
    task = Task.objects.get(owner=alice.owner)
    for url in (reverse("todos:all"), reverse("todos:edit", args=[task.pk])):
        page = alice_client.get(url).content.decode()
        assert "<script>alert" not in page and "javascript:alert" not in page, url


def test_it_exports_and_reimports_the_same_tasks(alice_client, alice, charlie, task_list):
    make_task(
        alice.owner,
        "Città e perché",
        notes="èà",
        due_date=dt.date(2026, 3, 29),
        due_time=dt.time(9, 0),
        task_list=task_list,
        priority=1,
    )
    make_task(alice.owner, "Fatto", status=Task.Status.DONE)
    first = alice_client.get(reverse("todos:export"))
    assert first["Content-Type"].startswith("text/calendar")
    other = Client()
    other.force_login(charlie.owner)
    other.post(reverse("todos:import"), {"file": SimpleUploadedFile("t.ics", first.content)})
    other.post(reverse("todos:import_preview"), {"action": "confirm"})
    second = other.get(reverse("todos:export"))
    assert second.content == first.content
    assert "Città e perché" in second.content.decode()


def test_it_exports_one_list(alice_client, alice, task_list):
    make_task(alice.owner, "Nella lista", task_list=task_list)
    make_task(alice.owner, "Fuori")
    body = alice_client.get(reverse("todos:export"), {"list": task_list.pk}).content.decode()
    assert "Nella lista" in body and "Fuori" not in body


def test_it_prefills_a_task_from_a_message_and_links_it(alice_client, alice, settings):
    settings.TODOS_REPLY_DAYS = 10
    message = make_message(
        alice, subject="Richiesta   documenti", when=dt.datetime(2026, 11, 20, 23, 30, tzinfo=dt.UTC)
    )
    url = reverse("todos:create_from_message", args=[message.pk])
    form = alice_client.get(url).context["form"]
    assert form.initial["title"] == "Reply: Richiesta documenti"
    # Delivered at 00:30 on 21 November in Rome: ten days later is 1 December.
    assert form.initial["due_date"] == dt.date(2026, 12, 1)
    response = alice_client.post(
        url, {"title": "Rispondere", "due_date": "2026-12-01", "priority": "1", "status": "needs-action"}
    )
    assert response.status_code == 302
    task = Task.objects.get(owner=alice.owner)
    assert task.message == message
    message.delete()
    task.refresh_from_db()
    assert task.message is None


def test_it_does_not_create_a_task_from_another_users_message(charlie_client, alice):
    message = make_message(alice)
    url = reverse("todos:create_from_message", args=[message.pk])
    assert charlie_client.get(url).status_code == 404
    assert (
        charlie_client.post(url, {"title": "x", "priority": "5", "status": "needs-action"}).status_code == 404
    )
    assert Task.objects.exists() is False


def test_it_manages_lists_keeping_tasks(alice_client, alice):
    alice_client.post(reverse("todos:list_create"), {"name": "Casa"})
    task_list = TaskList.objects.get(owner=alice.owner)
    task = make_task(alice.owner, task_list=task_list)
    alice_client.post(reverse("todos:list_rename", args=[task_list.pk]), {"name": "Famiglia"})
    task_list.refresh_from_db()
    assert task_list.name == "Famiglia"
    alice_client.post(reverse("todos:list_delete", args=[task_list.pk]))
    task.refresh_from_db()
    assert task.task_list is None


def test_it_answers_404_to_another_user_for_every_object_url(charlie_client, task, task_list):
    for method, url in (
        ("get", reverse("todos:edit", args=[task.pk])),
        ("post", reverse("todos:edit", args=[task.pk])),
        ("post", reverse("todos:toggle", args=[task.pk])),
        ("post", reverse("todos:delete", args=[task.pk])),
        ("post", reverse("todos:list_rename", args=[task_list.pk])),
        ("post", reverse("todos:list_delete", args=[task_list.pk])),
        ("get", reverse("todos:index") + f"?list={task_list.pk}"),
        ("get", reverse("todos:export") + f"?list={task_list.pk}"),
    ):
        response = getattr(charlie_client, method)(
            url, {"name": "x", "title": "x"} if method == "post" else None
        )
        assert response.status_code == 404, url
    task.refresh_from_db()
    assert (task.status, task.title) == (Task.Status.TODO, "Pagare F24")
    assert "Pagare" not in charlie_client.get(reverse("todos:export")).content.decode()


def test_it_sends_anonymous_users_to_login(client, task, task_list):
    for url in (
        reverse("todos:index"),
        reverse("todos:done"),
        reverse("todos:new"),
        reverse("todos:edit", args=[task.pk]),
        reverse("todos:lists"),
        reverse("todos:import"),
        reverse("todos:import_preview"),
        reverse("todos:export"),
        reverse("todos:create_from_message", args=[1]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_it_refuses_get_on_writes(alice_client, task, task_list):
    for url in (
        reverse("todos:toggle", args=[task.pk]),
        reverse("todos:delete", args=[task.pk]),
        reverse("todos:quick_add"),
        reverse("todos:list_create"),
        reverse("todos:list_delete", args=[task_list.pk]),
    ):
        assert alice_client.get(url).status_code == 405, url


def test_it_requires_csrf_on_writes(alice, task):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice.owner)
    for url in (reverse("todos:toggle", args=[task.pk]), reverse("todos:quick_add"), reverse("todos:new")):
        assert client.post(url, {"title": "x"}).status_code == 403, url
    task.refresh_from_db()
    assert task.status == Task.Status.TODO


def test_it_is_translated_into_italian(alice_client, task):
    page = alice_client.get(reverse("todos:index"), headers={"accept-language": "it"}).content.decode()
    assert "Scadute" in page and "Nuova attività" in page
    assert timezone.localdate() == dt.date(2026, 11, 27)


def test_it_searches_only_the_users_tasks(alice, charlie, task_list):
    from pecmail.todos.selectors import task_search

    make_task(alice.owner, "Rinnovo contratto", task_list=task_list)
    make_task(alice.owner, "Altro", notes="il contratto di affitto")
    make_task(charlie.owner, "Contratto di Charlie")
    make_task(alice.owner, "Contratto firmato", status=Task.Status.DONE)
    assert [t.title for t in task_search(user=alice.owner, query="contratto")] == [
        "Rinnovo contratto",
        "Altro",
        "Contratto firmato",
    ]
    assert [t.title for t in task_search(user=alice.owner, query="studio rinnovo")] == ["Rinnovo contratto"]
    assert task_search(user=alice.owner, query="  ") == []
