"""The week and day views are time grids: quarter-hour rows, an all-day strip, side-by-side overlaps."""

import datetime as dt
import re

from django.test import Client
from django.urls import reverse

from pecmail.agenda import services
from tests.agenda.conftest import ROME, make_event


def _grid(html: str) -> str:
    return html.split('<ol class="agenda-week"', 1)[0]


def _event_classes(html: str, title: str) -> list[set[str]]:
    """The class sets of the grid cells (li.agenda-grid__event) holding ``title``."""
    found = []
    for classes, body in re.findall(r'<li class="(agenda-grid__event[^"]*)">(.*?)</li>', html, re.S):
        if title in body:
            found.append(set(classes.split()))
    return found


def _column(html: str, day: str) -> str:
    return re.search(
        rf'<ol class="agenda-grid__col[^"]*"[^>]*data-date="{day}">(.*?)</ol>', html, re.S
    ).group(1)


def test_it_places_a_09_00_to_10_30_event_in_the_09_row_with_a_one_and_a_half_hour_span(alice_client, work):
    make_event(
        work,
        title="Udienza",
        start=dt.datetime(2026, 3, 17, 9, tzinfo=ROME),
        end=dt.datetime(2026, 3, 17, 10, 30, tzinfo=ROME),
    )
    for url in (reverse("agenda:week", args=[2026, 3, 18]), reverse("agenda:day", args=[2026, 3, 17])):
        page = _grid(alice_client.get(url).content.decode())
        [classes] = _event_classes(page, "Udienza")
        # Quarter 36 is 09:00; six quarters are 1.5 hours.
        assert "agenda-start-q36" in classes, url
        assert "agenda-dur-q6" in classes, url
        assert "agenda-lanes-1" in classes, url
        assert "Udienza" in _column(page, "2026-03-17"), url
        assert "09:00–10:30" in page, url


def test_it_defines_every_placement_class_in_the_stylesheet(settings):
    from pathlib import Path

    css = (Path(settings.BASE_DIR) / "static" / "css" / "agenda.css").read_text()
    assert ".agenda-start-q36 { grid-row-start:37; }" in css
    assert ".agenda-dur-q6 { grid-row-end:span 6; }" in css
    assert ".agenda-lanes-2.agenda-lane-1 { grid-column:7 / span 6; }" in css


def test_it_puts_an_all_day_event_in_the_all_day_strip(alice_client, work):
    make_event(
        work,
        title="Ferie",
        start=dt.datetime(2026, 3, 17, tzinfo=ROME),
        end=dt.datetime(2026, 3, 18, tzinfo=ROME),
        all_day=True,
    )
    for url in (reverse("agenda:week", args=[2026, 3, 18]), reverse("agenda:day", args=[2026, 3, 17])):
        page = _grid(alice_client.get(url).content.decode())
        strip = re.search(r'<div class="agenda-grid__row agenda-grid__allday">(.*?)</div>', page, re.S).group(
            1
        )
        assert "Ferie" in strip, url
        assert _event_classes(page, "Ferie") == [], url


def test_it_puts_overlapping_events_in_separate_columns(alice_client, work):
    make_event(work, title="Primo", start=dt.datetime(2026, 3, 17, 9, tzinfo=ROME))
    make_event(work, title="Secondo", start=dt.datetime(2026, 3, 17, 9, 30, tzinfo=ROME))
    make_event(work, title="Dopo", start=dt.datetime(2026, 3, 17, 11, tzinfo=ROME))
    for url in (reverse("agenda:week", args=[2026, 3, 18]), reverse("agenda:day", args=[2026, 3, 17])):
        page = _grid(alice_client.get(url).content.decode())
        [first] = _event_classes(page, "Primo")
        [second] = _event_classes(page, "Secondo")
        [later] = _event_classes(page, "Dopo")
        assert {"agenda-lanes-2", "agenda-lane-0"} <= first, url
        assert {"agenda-lanes-2", "agenda-lane-1"} <= second, url
        assert {"agenda-start-q38", "agenda-dur-q4"} <= second, url
        # Not overlapping anything: the whole width again.
        assert {"agenda-lanes-1", "agenda-lane-0"} <= later, url


def test_it_places_recurring_occurrences_in_the_user_s_time_zone(alice, alice_client, work):
    make_event(work, title="Stand-up", rrule="FREQ=DAILY;COUNT=3")
    services.calendar_settings_update(user=alice.owner, time_zone="Europe/London")
    page = _grid(alice_client.get(reverse("agenda:week", args=[2026, 3, 18])).content.decode())
    placed = _event_classes(page, "Stand-up")
    # 09:00 in Rome is 08:00 in London: quarter 32, on each of the three days.
    assert len(placed) == 3
    assert all("agenda-start-q32" in classes and "agenda-dur-q4" in classes for classes in placed)
    for day in ("2026-03-16", "2026-03-17", "2026-03-18"):
        assert "Stand-up" in _column(page, day)
    assert "Stand-up" not in _column(page, "2026-03-19")


def test_it_clips_an_overnight_event_to_each_day_and_opens_at_its_early_hour(alice_client, work):
    make_event(
        work,
        title="Notte",
        start=dt.datetime(2026, 3, 16, 22, tzinfo=ROME),
        end=dt.datetime(2026, 3, 17, 6, tzinfo=ROME),
    )
    page = _grid(alice_client.get(reverse("agenda:week", args=[2026, 3, 18])).content.decode())
    [evening, morning] = _event_classes(page, "Notte")
    assert {"agenda-start-q88", "agenda-dur-q8"} <= evening
    assert {"agenda-start-q0", "agenda-dur-q24"} <= morning
    assert 'data-first-hour="0"' in page
    quiet = alice_client.get(reverse("agenda:week", args=[2026, 4, 8])).content.decode()
    assert 'data-first-hour="7"' in quiet


def test_it_keeps_the_grid_to_its_owner(alice, charlie, work):
    make_event(work, title="Riservato")
    for user, expected in ((alice.owner, True), (charlie.owner, False)):
        client = Client()
        client.force_login(user)
        for url in (reverse("agenda:week", args=[2026, 3, 16]), reverse("agenda:day", args=[2026, 3, 16])):
            assert ("Riservato" in client.get(url).content.decode()) is expected, (user, url)


def test_it_keeps_a_daily_09_00_in_the_09_row_across_the_summer_time_switch(alice_client, work):
    make_event(
        work, title="Caffè", start=dt.datetime(2026, 3, 28, 9, tzinfo=ROME), rrule="FREQ=DAILY;COUNT=2"
    )
    page = _grid(alice_client.get(reverse("agenda:week", args=[2026, 3, 28])).content.decode())
    placed = _event_classes(page, "Caffè")
    assert len(placed) == 2
    assert all({"agenda-start-q36", "agenda-dur-q4"} <= classes for classes in placed)
    assert "Caffè" in _column(page, "2026-03-29")
