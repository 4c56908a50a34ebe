import datetime as dt
import re

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from pecmail.agenda import services
from pecmail.agenda.models import Calendar, CalendarSettings, Event, Reminder
from tests.agenda.conftest import ROME, make_event, make_message

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=ROME)


def strip_stamp(data: bytes) -> bytes:
    return re.sub(rb"DTSTAMP:[^\r\n]*\r\n", b"", data)


@pytest.fixture
def objects(alice, work):
    """One of everything alice owns, for the permission tests."""
    event = make_event(work, rrule="FREQ=WEEKLY;COUNT=4")
    services.calendar_feed_regenerate(calendar=work)
    reminder = Reminder.objects.create(event=event, occurrence_start=event.start, fire_at=event.start)
    message = make_message(alice)
    return {"event": event, "calendar": work, "reminder": reminder, "message": message}


def owned_urls(objects):
    e, c, r, m = (objects[k].pk for k in ("event", "calendar", "reminder", "message"))
    return {
        "get": [
            reverse("agenda:event_detail", args=[e]),
            reverse("agenda:event_edit", args=[e]),
            reverse("agenda:event_export", args=[e]),
            reverse("agenda:calendar_edit", args=[c]),
            reverse("agenda:calendar_export", args=[c]),
            reverse("agenda:create_from_message", args=[m]),
        ],
        "post": [
            reverse("agenda:event_edit", args=[e]),
            reverse("agenda:event_delete", args=[e]),
            reverse("agenda:event_skip", args=[e]),
            reverse("agenda:calendar_edit", args=[c]),
            reverse("agenda:calendar_delete", args=[c]),
            reverse("agenda:calendar_toggle", args=[c]),
            reverse("agenda:calendar_feed_regenerate", args=[c]),
            reverse("agenda:calendar_feed_revoke", args=[c]),
            reverse("agenda:reminder_dismiss", args=[r]),
            reverse("agenda:create_from_message", args=[m]),
        ],
    }


PAGES = [
    ("agenda:index", []),
    ("agenda:month", [2026, 3]),
    ("agenda:week", [2026, 3, 16]),
    ("agenda:day", [2026, 3, 16]),
    ("agenda:list", []),
    ("agenda:event_create", []),
    ("agenda:calendars", []),
    ("agenda:import", []),
    ("agenda:settings", []),
]

# Pages that take a form POST as well as GET.
WRITABLE_PAGES = {"agenda:event_create", "agenda:import", "agenda:settings"}


def test_it_answers_404_to_charlie_for_every_object_of_alice(objects, charlie_client):
    urls = owned_urls(objects)
    for url in urls["get"]:
        assert charlie_client.get(url).status_code == 404, url
    for url in urls["post"]:
        assert (
            charlie_client.post(url, {"key": "2026-03-23T09:00:00", "name": "x", "colour": "red"}).status_code
            == 404
        ), url
    # Nothing changed hands or disappeared.
    objects["event"].refresh_from_db()
    objects["calendar"].refresh_from_db()
    assert objects["event"].exdates == []
    assert objects["calendar"].feed_token != ""
    assert Reminder.objects.get(pk=objects["reminder"].pk).dismissed is False


def test_it_shows_charlie_none_of_alice_s_events_in_his_pages(objects, charlie_client):
    for name, args in PAGES:
        response = charlie_client.get(reverse(name, args=args))
        assert response.status_code == 200, name
        assert b"Riunione" not in response.content, name
        assert b"Lavoro" not in response.content, name


def test_it_sends_anonymous_visitors_to_the_login_page(objects, client):
    urls = owned_urls(objects)
    for url in [reverse(name, args=args) for name, args in PAGES] + urls["get"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/accounts/login/" in response["Location"]
    for url in urls["post"] + [reverse("agenda:import_confirm"), reverse("agenda:calendar_create")]:
        assert client.post(url).status_code == 302, url
    assert Event.objects.count() == 1


def test_it_refuses_get_on_state_changing_urls(objects, alice_client):
    urls = owned_urls(objects)
    for url in urls["post"]:
        if url.endswith("/edit/") or "from-message" in url:
            continue
        assert alice_client.get(url).status_code == 405, url
    for name in ("agenda:import_confirm", "agenda:import_cancel", "agenda:calendar_create"):
        assert alice_client.get(reverse(name)).status_code == 405
    read_only = [reverse(name, args=args) for name, args in PAGES if name not in WRITABLE_PAGES]
    read_only += [u for u in urls["get"] if not u.endswith("/edit/") and "from-message" not in u]
    for url in read_only:
        assert alice_client.post(url).status_code == 405, url
    assert Event.objects.filter(pk=objects["event"].pk).exists() is True


def test_it_requires_the_csrf_token_on_posts(objects, alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice.owner)
    assert client.post(reverse("agenda:event_delete", args=[objects["event"].pk])).status_code == 403
    assert Event.objects.filter(pk=objects["event"].pk).exists() is True


@time_machine.travel(NOW, tick=False)
def test_it_creates_a_weekly_event_that_recurs_in_the_month_view(alice, alice_client):
    calendar = services.calendar_default_ensure(user=alice.owner)
    response = alice_client.post(
        reverse("agenda:event_create"),
        {
            "title": "Stand-up",
            "calendar": calendar.pk,
            "start_date": "2026-03-16",
            "start_time": "09:00",
            "end_date": "2026-03-16",
            "end_time": "09:30",
            "repeat": "WEEKLY",
            "interval": "1",
            "ends": "never",
            "reminder_minutes": "10",
        },
    )
    event = Event.objects.get(title="Stand-up")
    assert response.status_code == 302
    assert response["Location"] == reverse("agenda:event_detail", args=[event.pk])
    assert event.rrule == "FREQ=WEEKLY"
    assert event.start == dt.datetime(2026, 3, 16, 8, 0, tzinfo=dt.UTC)
    assert event.reminder_minutes == 10
    page = alice_client.get(reverse("agenda:month", args=[2026, 3])).content.decode()
    for day in ("2026-03-16", "2026-03-23", "2026-03-30"):
        cell = re.search(rf'data-date="{day}">(.*?)</td>', page, re.S).group(1)
        assert "Stand-up" in cell
        # Still 09:00 on the 30th, after the switch to summer time.
        assert ">09:00</time>" in cell
    assert "Stand-up" not in re.search(r'data-date="2026-03-17">(.*?)</td>', page, re.S).group(1)


@time_machine.travel(NOW, tick=False)
def test_it_shows_the_event_form_with_labels_and_refuses_an_end_before_the_start(alice, alice_client):
    page = alice_client.get(reverse("agenda:event_create") + "?date=2026-03-20").content.decode()
    assert '<label for="id_title">' in page
    assert 'value="2026-03-20"' in page
    calendar = services.calendar_default_ensure(user=alice.owner)
    response = alice_client.post(
        reverse("agenda:event_create"),
        {"title": "x", "calendar": calendar.pk, "start_date": "2026-03-20", "start_time": "10:00",
         "end_date": "2026-03-20", "end_time": "09:00", "ends": "never"},
    )  # fmt: skip
    assert response.status_code == 422
    assert b"cannot end before it starts" in response.content
    assert Event.objects.exists() is False


def test_it_edits_an_event_and_keeps_other_users_calendars_out_of_the_choice(
    alice, alice_client, work, charlie
):
    foreign = services.calendar_create(owner=charlie.owner, name="Charlie's")
    event = make_event(work)
    page = alice_client.get(reverse("agenda:event_edit", args=[event.pk])).content.decode()
    assert "Charlie&#x27;s" not in page
    assert 'value="09:00"' in page
    form = {
        "title": "Riunione spostata", "calendar": foreign.pk, "start_date": "2026-03-17", "start_time": "11:00",
        "end_date": "2026-03-17", "end_time": "12:00", "ends": "never",
    }  # fmt: skip
    assert alice_client.post(reverse("agenda:event_edit", args=[event.pk]), form).status_code == 422
    form["calendar"] = work.pk
    assert alice_client.post(reverse("agenda:event_edit", args=[event.pk]), form).status_code == 302
    event.refresh_from_db()
    assert event.title == "Riunione spostata"
    assert event.start == dt.datetime(2026, 3, 17, 10, 0, tzinfo=dt.UTC)


def test_it_makes_an_all_day_event_that_ends_at_the_midnight_after_its_last_day(alice, alice_client, work):
    response = alice_client.post(
        reverse("agenda:event_create"),
        {"title": "Fiera", "calendar": work.pk, "all_day": "on", "start_date": "2026-03-27",
         "end_date": "2026-03-29", "ends": "never"},
    )  # fmt: skip
    assert response.status_code == 302
    event = Event.objects.get(title="Fiera")
    assert event.start == dt.datetime(2026, 3, 27, tzinfo=ROME)
    assert event.end == dt.datetime(2026, 3, 30, tzinfo=ROME)
    page = alice_client.get(reverse("agenda:month", args=[2026, 3])).content.decode()
    days = [
        d
        for d in ("26", "27", "28", "29", "30")
        if "Fiera" in re.search(rf'data-date="2026-03-{d}">(.*?)</td>', page, re.S).group(1)
    ]
    assert days == ["27", "28", "29"]


def test_it_deletes_one_occurrence_then_the_whole_series(alice_client, work):
    event = make_event(work, rrule="FREQ=WEEKLY;COUNT=4")
    detail = alice_client.get(reverse("agenda:event_detail", args=[event.pk]) + "?at=2026-03-23T09:00:00")
    assert b"Monday 23 March 2026" in detail.content
    assert b'value="2026-03-23T09:00:00"' in detail.content
    alice_client.post(reverse("agenda:event_skip", args=[event.pk]), {"key": "2026-03-23T09:00:00"})
    event.refresh_from_db()
    assert event.exdates == ["2026-03-23T09:00:00"]
    page = alice_client.get(reverse("agenda:month", args=[2026, 3])).content.decode()
    assert "Riunione" not in re.search(r'data-date="2026-03-23">(.*?)</td>', page, re.S).group(1)
    assert "Riunione" in re.search(r'data-date="2026-03-30">(.*?)</td>', page, re.S).group(1)
    alice_client.post(reverse("agenda:event_delete", args=[event.pk]))
    assert Event.objects.filter(pk=event.pk).exists() is False


def test_it_shows_week_day_and_list_views(alice_client, work):
    make_event(work, rrule="FREQ=DAILY;COUNT=3", location="Sala Rossa")
    week = alice_client.get(reverse("agenda:week", args=[2026, 3, 18])).content.decode()
    # Once in the time grid and once in the per-day list a phone shows instead.
    grid, phone_list = week.split('<ol class="agenda-week"', 1)
    assert grid.count("Riunione") == 3
    assert phone_list.count("Riunione") == 3
    day = alice_client.get(reverse("agenda:day", args=[2026, 3, 17])).content.decode()
    assert "09:00–10:00" in day and "Sala Rossa" in day
    listing = alice_client.get(reverse("agenda:list") + "?from=2026-03-15").content.decode()
    assert listing.count("Riunione") == 3
    assert 'href="/calendar/list/?from=2026-04-14"' in listing
    assert alice_client.get(reverse("agenda:list") + "?from=nope").status_code == 404
    assert alice_client.get(reverse("agenda:month", args=[2026, 13])).status_code == 404
    assert alice_client.get(reverse("agenda:day", args=[2026, 2, 30])).status_code == 404


def test_it_offers_previous_next_and_today_for_the_keyboard(alice_client):
    with time_machine.travel(NOW, tick=False):
        page = alice_client.get(reverse("agenda:month", args=[2026, 1])).content.decode()
    assert 'href="/calendar/month/2025/12/" rel="prev" data-agenda-nav="prev"' in page
    assert 'href="/calendar/month/2026/2/" rel="next" data-agenda-nav="next"' in page
    assert 'href="/calendar/month/2026/3/" data-agenda-nav="today"' in page
    assert "js/agenda.js" in page


def test_it_shows_times_in_the_user_s_time_zone(alice, alice_client, work):
    make_event(work)
    alice_client.post(reverse("agenda:settings"), {"time_zone": "America/New_York"})
    assert CalendarSettings.objects.get(user=alice.owner).time_zone == "America/New_York"
    page = alice_client.get(reverse("agenda:day", args=[2026, 3, 16])).content.decode()
    # 09:00 in Rome (UTC+1) is 04:00 in New York (already on summer time, UTC-4).
    assert "04:00–05:00" in page
    assert alice_client.post(reverse("agenda:settings"), {"time_zone": "Mars/Olympus"}).status_code == 422


def test_it_escapes_hostile_fields_everywhere(alice_client, work):
    event = make_event(
        work,
        title="<script>alert('t')</script>",
        description="<img src=x onerror=alert(1)>",
        location='"><svg onload=alert(2)>',
        url="javascript:alert(3)",
        rrule="FREQ=DAILY;COUNT=2",
    )
    Reminder.objects.create(event=event, occurrence_start=event.start, fire_at=event.start)
    pages = [
        reverse("agenda:month", args=[2026, 3]),
        reverse("agenda:day", args=[2026, 3, 16]),
        reverse("agenda:list") + "?from=2026-03-15",
        reverse("agenda:event_detail", args=[event.pk]),
        reverse("agenda:event_edit", args=[event.pk]),
    ]
    for url in pages:
        page = alice_client.get(url).content.decode()
        assert "<script>alert" not in page, url
        assert "<img src=x" not in page, url
        assert "<svg onload" not in page, url
        assert 'href="javascript:' not in page, url
    detail = alice_client.get(reverse("agenda:event_detail", args=[event.pk])).content.decode()
    assert "&lt;script&gt;alert(&#x27;t&#x27;)&lt;/script&gt;" in detail
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail
    assert '<span class="mono">javascript:alert(3)</span>' in detail


def test_it_links_safe_urls_with_noopener(alice_client, work):
    event = make_event(work, url="https://example.it/verbale")
    detail = alice_client.get(reverse("agenda:event_detail", args=[event.pk])).content.decode()
    assert '<a href="https://example.it/verbale" rel="noopener noreferrer nofollow"' in detail


def test_it_manages_calendars_with_palette_colours(alice, alice_client):
    page = alice_client.get(reverse("agenda:calendars")).content.decode()
    assert "agenda-colour--blue" in page
    assert (
        alice_client.post(
            reverse("agenda:calendar_create"), {"name": "Studio", "colour": "purple"}
        ).status_code
        == 302
    )
    studio = Calendar.objects.get(owner=alice.owner, name="Studio")
    assert studio.colour == "purple"
    assert (
        alice_client.post(reverse("agenda:calendar_create"), {"name": "x", "colour": "#ff0000"}).status_code
        == 422
    )
    alice_client.post(
        reverse("agenda:calendar_edit", args=[studio.pk]), {"name": "Studio legale", "colour": "teal"}
    )
    studio.refresh_from_db()
    assert (studio.name, studio.colour) == ("Studio legale", "teal")
    make_event(studio)
    month = alice_client.get(reverse("agenda:month", args=[2026, 3])).content.decode()
    assert "agenda-event agenda-colour--teal" in month
    alice_client.post(reverse("agenda:calendar_delete", args=[studio.pk]))
    assert Calendar.objects.filter(pk=studio.pk).exists() is False
    assert Event.objects.filter(calendar_id=studio.pk).exists() is False


def test_it_serves_the_subscription_feed_without_login_until_revoked(alice_client, client, work):
    make_event(work, title="Udienza")
    alice_client.post(reverse("agenda:calendar_feed_regenerate", args=[work.pk]))
    work.refresh_from_db()
    first = work.feed_token
    assert len(first) >= 40
    alice_client.logout()
    feed = client.get(reverse("agenda:feed", args=[first]))
    assert feed.status_code == 200
    assert feed["Content-Type"] == "text/calendar; charset=utf-8"
    assert b"SUMMARY:Udienza" in feed.content
    assert (
        client.get(reverse("agenda:feed", args=[first[:-1] + ("A" if first[-1] != "A" else "B")])).status_code
        == 404
    )
    assert client.get("/calendar/feed/.ics").status_code == 404
    assert client.post(reverse("agenda:feed", args=[first])).status_code == 405
    services.calendar_feed_regenerate(calendar=work)
    assert client.get(reverse("agenda:feed", args=[first])).status_code == 404
    work.refresh_from_db()
    assert client.get(reverse("agenda:feed", args=[work.feed_token])).status_code == 200
    services.calendar_feed_revoke(calendar=work)
    assert client.get(reverse("agenda:feed", args=[work.feed_token or "x"])).status_code == 404


def test_it_shows_the_subscription_address_on_the_calendars_page(alice_client, work):
    services.calendar_feed_regenerate(calendar=work)
    page = alice_client.get(reverse("agenda:calendars")).content.decode()
    assert f"http://testserver/calendar/feed/{work.feed_token}.ics" in page


def upload(data: bytes, name: str = "agenda.ics") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/calendar")


def test_it_round_trips_export_import_export_through_the_views(alice, alice_client, work):
    make_event(
        work,
        title="Consiglio d'amministrazione però già",
        description="Città: Forlì\nVarie; eventuali, ecc.",
        location="Sede — piano 2°",
        rrule="FREQ=WEEKLY;UNTIL=20261231T225959Z;INTERVAL=2;BYDAY=MO",
        exdates=["2026-03-30T09:00:00"],
        reminder_minutes=30,
    )
    make_event(
        work,
        title="Ferragosto",
        start=dt.datetime(2026, 8, 15, tzinfo=ROME),
        end=dt.datetime(2026, 8, 16, tzinfo=ROME),
        all_day=True,
        rrule="FREQ=YEARLY",
    )
    first = alice_client.get(reverse("agenda:calendar_export", args=[work.pk]))
    assert first["Content-Disposition"].startswith("attachment;")
    preview = alice_client.post(
        reverse("agenda:import"), {"file": upload(first.content), "target": "new", "new_name": ""}
    )
    assert preview.status_code == 200
    assert "Consiglio d&#x27;amministrazione però già" in preview.content.decode()
    # Nothing is written before the user confirms.
    assert Calendar.objects.filter(owner=alice.owner).count() == 1
    assert alice_client.post(reverse("agenda:import_confirm")).status_code == 302
    copy = Calendar.objects.filter(owner=alice.owner).exclude(pk=work.pk).get()
    assert copy.name == "Lavoro"
    assert copy.events.count() == 2
    second = alice_client.get(reverse("agenda:calendar_export", args=[copy.pk]))
    assert strip_stamp(second.content) == strip_stamp(first.content)
    assert "però già".encode() in second.content


def test_it_refuses_oversized_and_malformed_files_with_a_form_error(alice, alice_client):
    big = b"BEGIN:VCALENDAR\r\n" + b"X-PAD:" + b"a" * (2 * 1024 * 1024) + b"\r\nEND:VCALENDAR\r\n"
    response = alice_client.post(reverse("agenda:import"), {"file": upload(big), "target": "new"})
    assert response.status_code == 422
    assert b"larger than 2 MiB" in response.content
    response = alice_client.post(
        reverse("agenda:import"), {"file": upload(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n"), "target": "new"}
    )
    assert response.status_code == 422
    assert b"damaged" in response.content
    response = alice_client.post(reverse("agenda:import"), {"file": upload(b"hello"), "target": "new"})
    assert b"not an iCalendar" in response.content
    assert Calendar.objects.filter(owner=alice.owner).exists() is False
    assert alice_client.post(reverse("agenda:import_confirm")).status_code == 302
    assert Event.objects.exists() is False


PARTLY_BROKEN = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
BEGIN:VEVENT\r
UID:good-1\r
SUMMARY:<b>Good</b> one\r
LOCATION:<script>alert(1)</script>\r
DESCRIPTION:<img src=x onerror=alert(2)>\r
URL:javascript:alert(3)\r
DTSTART:20260401T080000Z\r
DTEND:20260401T090000Z\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:bad-1\r
SUMMARY:<i>Hourly</i>\r
DTSTART:20260401T080000Z\r
RRULE:FREQ=MINUTELY\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_it_imports_part_of_a_file_only_after_the_user_confirms(alice_client, work):
    preview = alice_client.post(
        reverse("agenda:import"), {"file": upload(PARTLY_BROKEN), "target": str(work.pk)}
    )
    page = preview.content.decode()
    assert "1 event will be left out" in page
    assert "&lt;i&gt;Hourly&lt;/i&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    assert work.events.count() == 0
    alice_client.post(reverse("agenda:import_cancel"))
    assert alice_client.post(reverse("agenda:import_confirm")).status_code == 302
    assert work.events.count() == 0
    alice_client.post(reverse("agenda:import"), {"file": upload(PARTLY_BROKEN), "target": str(work.pk)})
    alice_client.post(reverse("agenda:import_confirm"))
    assert list(work.events.values_list("uid", flat=True)) == ["good-1"]
    # The same file again updates instead of duplicating.
    alice_client.post(reverse("agenda:import"), {"file": upload(PARTLY_BROKEN), "target": str(work.pk)})
    alice_client.post(reverse("agenda:import_confirm"))
    assert work.events.count() == 1
    detail = alice_client.get(reverse("agenda:event_detail", args=[work.events.get().pk])).content.decode()
    assert "&lt;b&gt;Good&lt;/b&gt; one" in detail
    assert "<b>Good</b>" not in detail
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail
    assert "&lt;img src=x onerror=alert(2)&gt;" in detail
    assert 'href="javascript:' not in detail
    assert "<script>alert" not in detail and "<img src=x" not in detail


def test_it_will_not_import_into_charlie_s_calendar(alice_client, charlie):
    foreign = services.calendar_create(owner=charlie.owner, name="Charlie")
    response = alice_client.post(
        reverse("agenda:import"), {"file": upload(PARTLY_BROKEN), "target": str(foreign.pk)}
    )
    assert response.status_code == 422
    assert foreign.events.count() == 0


def test_it_creates_an_event_from_a_pec_message_linked_back_to_it(alice, alice_client):
    message = make_message(alice, subject="Convocazione <assemblea> dei soci")
    page = alice_client.get(reverse("agenda:create_from_message", args=[message.pk])).content.decode()
    assert 'value="Convocazione &lt;assemblea&gt; dei soci"' in page
    # 08:07 UTC is 10:07 in Rome (summer time): rounded down to 10:00, one hour long.
    assert 'value="2026-05-04"' in page
    assert 'value="10:00"' in page and 'value="11:00"' in page
    assert reverse("mail:read", args=[message.pk]) in page
    calendar = services.calendar_default_ensure(user=alice.owner)
    response = alice_client.post(
        reverse("agenda:create_from_message", args=[message.pk]),
        {"title": "Assemblea", "calendar": calendar.pk, "start_date": "2026-05-20", "start_time": "15:00",
         "end_date": "2026-05-20", "end_time": "17:00", "ends": "never"},
    )  # fmt: skip
    assert response.status_code == 302
    event = Event.objects.get(title="Assemblea")
    assert event.message == message
    detail = alice_client.get(reverse("agenda:event_detail", args=[event.pk])).content.decode()
    assert reverse("mail:read", args=[message.pk]) in detail
    # Deleting the message keeps the event, without the link.
    message.delete()
    event.refresh_from_db()
    assert event.message is None


def test_it_speaks_italian(alice_client, work):
    make_event(work, rrule="FREQ=WEEKLY;COUNT=3")
    alice_client.cookies["django_language"] = "it"
    page = alice_client.get(reverse("agenda:month", args=[2026, 3])).content.decode()
    assert "Nuovo evento" in page
    assert "Promemoria" in page
    assert "Marzo 2026" in page
    detail = alice_client.get(reverse("agenda:event_detail", args=[work.events.get().pk])).content.decode()
    assert "Ogni settimana, 3 volte" in detail
    importing = alice_client.get(reverse("agenda:import")).content.decode()
    assert "Importa eventi" in importing
    form = alice_client.get(reverse("agenda:event_create")).content.decode()
    assert "Ricorrenza" in form and "Lunedì" in form and "Tutto il giorno" in form


def test_it_proposes_tomorrow_s_first_hour_for_a_new_event_after_23(alice_client):
    with time_machine.travel(dt.datetime(2026, 3, 10, 23, 30, tzinfo=ROME), tick=False):
        page = alice_client.get(reverse("agenda:event_create")).content.decode()
    assert 'name="start_date" value="2026-03-11"' in page
    assert 'name="start_time" value="00:00"' in page
    assert 'name="end_date" value="2026-03-11"' in page
    assert 'name="end_time" value="01:00"' in page


def test_it_fills_the_date_fields_in_iso_format_in_italian_too(alice_client, work):
    """<input type=date> ignores a dd/mm/yyyy value: an Italian user would edit blank dates."""
    event = make_event(work, rrule="FREQ=DAILY;UNTIL=20260320T225959Z")
    alice_client.cookies["django_language"] = "it"
    page = alice_client.get(reverse("agenda:event_edit", args=[event.pk])).content.decode()
    assert "Modifica" in page
    assert re.search(r'name="start_date" value="2026-03-16"', page) is not None
    assert re.search(r'name="end_date" value="2026-03-16"', page) is not None
    assert re.search(r'name="until" value="2026-03-20"', page) is not None
    assert "16/03/2026" not in page


def test_it_repeats_weekly_on_the_ticked_weekdays_and_keeps_them_when_editing(alice_client, work):
    form = {
        "title": "Palestra", "calendar": work.pk, "start_date": "2026-03-02", "start_time": "19:00",
        "end_date": "2026-03-02", "end_time": "20:00", "repeat": "WEEKLY", "interval": "1",
        "weekdays": ["WE", "MO"], "ends": "count", "count": "4",
    }  # fmt: skip
    assert alice_client.post(reverse("agenda:event_create"), form).status_code == 302
    event = Event.objects.get(title="Palestra")
    assert event.rrule == "FREQ=WEEKLY;COUNT=4;BYDAY=MO,WE"
    page = alice_client.get(reverse("agenda:month", args=[2026, 3])).content.decode()
    days = [
        d
        for d in range(1, 32)
        if "Palestra" in re.search(rf'data-date="2026-03-{d:02}">(.*?)</td>', page, re.S).group(1)
    ]
    assert days == [2, 4, 9, 11]
    edit = alice_client.get(reverse("agenda:event_edit", args=[event.pk])).content.decode()
    assert re.search(r'<input[^>]*value="WE"[^>]*checked', edit) is not None
    form["title"] = "Palestra e piscina"
    alice_client.post(reverse("agenda:event_edit", args=[event.pk]), form)
    event.refresh_from_db()
    assert event.rrule == "FREQ=WEEKLY;COUNT=4;BYDAY=MO,WE"


def test_it_hides_and_shows_a_calendar_on_the_period_pages(alice_client, work):
    make_event(work, title="Nascosto")
    month = reverse("agenda:month", args=[2026, 3])
    response = alice_client.post(reverse("agenda:calendar_toggle", args=[work.pk]), {"next": month})
    assert response["Location"] == month
    work.refresh_from_db()
    assert work.visible is False
    page = alice_client.get(month).content.decode()
    assert "Nascosto" not in page
    assert "agenda-calendar-item--hidden" in page
    alice_client.post(reverse("agenda:calendar_toggle", args=[work.pk]))
    assert "Nascosto" in alice_client.get(month).content.decode()


def test_it_finds_events_for_the_global_search_only_among_the_user_s_own(alice, charlie, work):
    from pecmail.agenda import selectors

    make_event(work, title="Assemblea soci", location="Forlì")
    other = services.calendar_create(owner=charlie.owner, name="C")
    make_event(other, title="Assemblea di Charlie")
    assert [e.title for e in selectors.event_search(user=alice.owner, query="assemblea")] == [
        "Assemblea soci"
    ]
    assert [e.title for e in selectors.event_search(user=alice.owner, query="forlì")] == ["Assemblea soci"]
    assert selectors.event_search(user=alice.owner, query="  ") == []


def test_it_keeps_all_day_events_on_their_dates_in_another_time_zone(alice, alice_client, work):
    fair = make_event(
        work,
        title="Fiera",
        start=dt.datetime(2026, 3, 27, tzinfo=ROME),
        end=dt.datetime(2026, 3, 29, tzinfo=ROME),
        all_day=True,
        rrule="FREQ=YEARLY;COUNT=2",
    )
    services.calendar_settings_update(user=alice.owner, time_zone="America/New_York")
    page = alice_client.get(reverse("agenda:month", args=[2026, 3])).content.decode()
    days = [
        d
        for d in (26, 27, 28, 29)
        if "Fiera" in re.search(rf'data-date="2026-03-{d}">(.*?)</td>', page, re.S).group(1)
    ]
    assert days == [27, 28]
    assert "Fiera" not in alice_client.get(reverse("agenda:day", args=[2026, 3, 26])).content.decode()
    detail = alice_client.get(
        reverse("agenda:event_detail", args=[fair.pk]) + "?at=2027-03-27"
    ).content.decode()
    assert "Saturday 27 March 2027 – Sunday 28 March 2027" in detail
    edit = alice_client.get(reverse("agenda:event_edit", args=[fair.pk])).content.decode()
    assert 'value="2026-03-27"' in edit and 'value="2026-03-28"' in edit


def test_it_refuses_to_skip_an_occurrence_that_does_not_exist(alice_client, work):
    event = make_event(work, rrule="FREQ=WEEKLY;COUNT=4")
    for key in (
        "garbage",
        "2026-03-24T09:00:00",
        "2026-03-23T10:00:00",
        "2026-03-23T09:00:00+01:00",
        "2026-03-23",
    ):
        response = alice_client.post(reverse("agenda:event_skip", args=[event.pk]), {"key": key}, follow=True)
        assert b"That occurrence does not exist." in response.content, key
    event.refresh_from_db()
    assert event.exdates == []
    alice_client.post(reverse("agenda:event_skip", args=[event.pk]), {"key": "2026-03-23T09:00:00"})
    alice_client.post(reverse("agenda:event_skip", args=[event.pk]), {"key": "2026-03-23T09:00:00"})
    event.refresh_from_db()
    assert event.exdates == ["2026-03-23T09:00:00"]
    assert alice_client.get(reverse("agenda:event_export", args=[event.pk])).status_code == 200
