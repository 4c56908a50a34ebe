import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from pecmail.agenda import services, tasks
from pecmail.agenda.models import Reminder
from pecmail.celery import app
from tests.agenda.conftest import ROME, make_event

pytestmark = pytest.mark.django_db


def test_it_schedules_the_reminder_sweep_every_minute_in_beat():
    entry = app.conf.beat_schedule["agenda.reminders_send"]
    assert entry["task"] == "agenda.reminders_send"
    assert entry["schedule"] == 60.0
    assert tasks.reminders_send.name == "agenda.reminders_send"


def test_it_sends_a_due_reminder_exactly_once_by_e_mail_and_in_the_app(alice, alice_client, work):
    event = make_event(work, title="Udienza però", location="Tribunale di Forlì", reminder_minutes=15)
    with time_machine.travel(dt.datetime(2026, 3, 16, 8, 44, tzinfo=ROME), tick=False):
        assert tasks.reminders_send.delay().get() == 0
    assert mail.outbox == []
    with time_machine.travel(dt.datetime(2026, 3, 16, 8, 45, tzinfo=ROME), tick=False):
        assert tasks.reminders_send.delay().get() == 1
        # A second sweep (or a second beat) finds the reminder already claimed.
        assert tasks.reminders_send.delay().get() == 0
    with time_machine.travel(dt.datetime(2026, 3, 16, 8, 50, tzinfo=ROME), tick=False):
        assert services.reminders_send() == 0
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == [alice.owner.email]
    assert sent.subject == "Reminder: Udienza però, Monday 16 March 2026, 09:00"
    assert "Tribunale di Forlì" in sent.body
    assert sent.content_subtype == "plain"
    reminder = Reminder.objects.get(event=event)
    assert reminder.emailed_at is not None
    page = alice_client.get(reverse("agenda:month", args=[2026, 3])).content.decode()
    side = page.split('id="agenda-reminders-title"')[1].split("</section>")[0]
    assert "Udienza però" in side
    alice_client.post(
        reverse("agenda:reminder_dismiss", args=[reminder.pk]), {"next": "https://evil.example/"}
    )
    reminder.refresh_from_db()
    assert reminder.dismissed is True
    page = alice_client.get(reverse("agenda:month", args=[2026, 3])).content.decode()
    assert "Udienza" not in page.split('id="agenda-reminders-title"')[1].split("</section>")[0]


def test_it_reminds_each_occurrence_of_a_recurring_event_at_local_time_across_dst(alice, work):
    make_event(work, rrule="FREQ=WEEKLY;COUNT=3", reminder_minutes=60)
    fired = []
    for day in (16, 23, 30):
        # 08:00 local each Monday, though the UTC hour changes on the 29th.
        with time_machine.travel(dt.datetime(2026, 3, day, 7, 59, tzinfo=ROME), tick=False):
            assert services.reminders_send() == 0
        with time_machine.travel(dt.datetime(2026, 3, day, 8, 0, tzinfo=ROME), tick=False):
            fired.append(services.reminders_send())
    assert fired == [1, 1, 1]
    assert [
        r.occurrence_start.astimezone(ROME).day for r in Reminder.objects.order_by("occurrence_start")
    ] == [16, 23, 30]
    assert len(mail.outbox) == 3


def test_it_does_not_remind_of_long_past_occurrences_of_a_new_event(alice, work):
    make_event(
        work, start=dt.datetime(2025, 1, 6, 9, 0, tzinfo=ROME), rrule="FREQ=WEEKLY", reminder_minutes=10
    )
    with time_machine.travel(dt.datetime(2026, 3, 11, 12, 0, tzinfo=ROME), tick=False):
        assert services.reminders_send() == 0
    assert Reminder.objects.exists() is False


def test_it_catches_up_a_reminder_missed_while_the_sweep_was_down(alice, work):
    make_event(work, reminder_minutes=120)
    # Due at 07:00; the sweep comes back at 08:30, before the event starts: still worth sending.
    with time_machine.travel(dt.datetime(2026, 3, 16, 8, 30, tzinfo=ROME), tick=False):
        assert services.reminders_send() == 1
    # An event that already started more than the grace period after its reminder: nothing.
    make_event(work, title="Late", start=dt.datetime(2026, 3, 16, 8, 0, tzinfo=ROME), reminder_minutes=30)
    with time_machine.travel(dt.datetime(2026, 3, 16, 8, 30, tzinfo=ROME), tick=False):
        assert services.reminders_send() == 0


def test_it_skips_excluded_occurrences_and_events_without_reminders(alice, work):
    make_event(work, rrule="FREQ=DAILY;COUNT=3", exdates=["2026-03-17T09:00:00"], reminder_minutes=5)
    make_event(work, title="No reminder", rrule="FREQ=DAILY;COUNT=3")
    with time_machine.travel(dt.datetime(2026, 3, 17, 8, 56, tzinfo=ROME), tick=False):
        assert services.reminders_send() == 0


def test_it_keeps_the_in_app_reminder_when_the_mail_server_fails(alice, work, settings, monkeypatch):
    make_event(work, reminder_minutes=0)

    def broken(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", broken)
    with time_machine.travel(dt.datetime(2026, 3, 16, 9, 0, tzinfo=ROME), tick=False):
        assert services.reminders_send() == 0
        reminder = Reminder.objects.get()
        assert reminder.emailed_at is None
        # Not retried by e-mail: a repeated sweep must never send twice, and the row is the claim.
        assert services.reminders_send() == 0
