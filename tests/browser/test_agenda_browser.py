"""The Calendar journeys in Chromium: a weekly event recurring, export and re-import, the phone layout."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from pecmail.agenda import services
from pecmail.agenda.models import Calendar, Event
from tests.browser.conftest import login, no_horizontal_overflow

pytestmark = pytest.mark.browser

ROME = ZoneInfo("Europe/Rome")


def test_it_creates_a_weekly_event_and_sees_it_recur_in_the_month_view(
    browser_page, live_server, demo_user, settings
):
    page = browser_page
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    page.goto(f"{live_server.url}/calendar/month/2026/3/")
    page.get_by_role("link", name="New event").click()
    page.get_by_label("Title").fill("Riunione di studio")
    page.get_by_label("Start date").fill("2026-03-02")
    page.get_by_label("Start time").fill("09:00")
    page.get_by_label("End date").fill("2026-03-02")
    page.get_by_label("End time").fill("10:00")
    page.get_by_label("Repeat").select_option("WEEKLY")
    page.get_by_label("Location").fill("Sala <b>Verdi</b>")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("h1:has-text('Riunione di studio')")
    assert page.get_by_text("Every week").is_visible() is True
    page.goto(f"{live_server.url}/calendar/month/2026/3/")
    for day in ("2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23", "2026-03-30"):
        cell = page.locator(f"td[data-date='{day}']")
        assert cell.get_by_text("Riunione di studio").count() == 1, day
        # 09:00 on the wall clock before and after the switch to summer time on the 29th.
        assert cell.locator("time").inner_text() == "09:00", day
    assert page.locator("td[data-date='2026-03-03']").get_by_text("Riunione di studio").count() == 0
    # The keyboard moves to the next month and back to today.
    page.locator("main").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**/calendar/month/2026/4/")
    assert page.locator("td[data-date='2026-04-06']").get_by_text("Riunione di studio").count() == 1
    page.keyboard.press("PageUp")
    page.wait_for_url("**/calendar/month/2026/3/")
    page.keyboard.press("t")
    today = dt.datetime.now(ROME).date()
    page.wait_for_url(f"**/calendar/month/{today.year}/{today.month}/")


def test_it_exports_a_calendar_and_reimports_it_into_a_new_calendar(
    browser_page, live_server, demo_user, settings, tmp_path
):
    owner = demo_user.owner
    work = services.calendar_create(owner=owner, name="Lavoro", colour=Calendar.Colour.ORANGE)
    services.event_create(
        calendar=work,
        title="Udienza però già",
        start=dt.datetime(2026, 4, 14, 10, tzinfo=ROME),
        end=dt.datetime(2026, 4, 14, 12, tzinfo=ROME),
        time_zone="Europe/Rome",
        location="Tribunale di Forlì",
        rrule="FREQ=MONTHLY;COUNT=6",
        exdates=["2026-06-14T10:00:00"],
        reminder_minutes=60,
    )
    services.event_create(
        calendar=work,
        title="Ferie",
        start=dt.datetime(2026, 8, 10, tzinfo=ROME),
        end=dt.datetime(2026, 8, 22, tzinfo=ROME),
        time_zone="Europe/Rome",
        all_day=True,
    )
    page = browser_page
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    page.goto(f"{live_server.url}/calendar/calendars/")
    section = page.locator("section.agenda-calendar", has=page.get_by_role("heading", name="Lavoro"))
    with page.expect_download() as download_info:
        section.get_by_role("link", name="Export .ics").click()
    exported = tmp_path / "lavoro.ics"
    download_info.value.save_as(exported)
    assert "Udienza però già" in exported.read_text(encoding="utf-8")

    page.goto(f"{live_server.url}/calendar/import/")
    page.get_by_label("iCalendar file (.ics)").set_input_files(str(exported))
    page.get_by_label("Import into").select_option("new")
    page.get_by_label("Name of the new calendar").fill("Lavoro (copia)")
    page.get_by_role("button", name="Preview").click()
    page.wait_for_selector("h1:has-text('Check the import')")
    assert page.locator("table.agenda-preview tbody tr").count() == 2
    # Nothing is imported before the confirmation.
    assert Calendar.objects.filter(owner=owner, name="Lavoro (copia)").exists() is False
    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_selector("text=2 new, 0 updated, 0 skipped")

    copy = Calendar.objects.get(owner=owner, name="Lavoro (copia)")

    def fields(calendar):
        return sorted(
            Event.objects.filter(calendar=calendar).values_list(
                "uid",
                "title",
                "start",
                "end",
                "all_day",
                "time_zone",
                "location",
                "rrule",
                "exdates",
                "reminder_minutes",
            )
        )

    assert fields(copy) == fields(work)
    page.goto(f"{live_server.url}/calendar/month/2026/5/")
    assert page.locator("td[data-date='2026-05-14']").get_by_text("Udienza però già").count() == 2


def test_it_collapses_the_month_into_a_list_on_a_phone(phone_page, live_server, demo_user, settings):
    calendar = services.calendar_default_ensure(user=demo_user.owner)
    services.event_create(
        calendar=calendar,
        title="Assemblea condominiale",
        start=dt.datetime(2026, 3, 16, 18, tzinfo=ROME),
        end=dt.datetime(2026, 3, 16, 19, tzinfo=ROME),
        time_zone="Europe/Rome",
    )
    page = phone_page
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    page.goto(f"{live_server.url}/calendar/month/2026/3/")
    assert no_horizontal_overflow(page) is True
    assert page.locator("table.agenda-month thead").is_visible() is False
    assert page.locator("td[data-date='2026-03-16']").is_visible() is True
    assert page.get_by_text("Monday 16 March").is_visible() is True
    assert page.locator("td[data-date='2026-03-17']").is_visible() is False
    assert page.get_by_role("link", name="Next").is_visible() is True
    page.get_by_role("link", name="Next").click()
    page.wait_for_url("**/calendar/month/2026/4/")
    assert page.get_by_text("No events this month.").is_visible() is True
    page.goto(f"{live_server.url}/calendar/events/new/")
    assert no_horizontal_overflow(page) is True


def _grid_events(owner):
    calendar = services.calendar_default_ensure(user=owner)
    for title, start, end in (
        ("Udienza", dt.datetime(2026, 3, 17, 9, tzinfo=ROME), dt.datetime(2026, 3, 17, 10, 30, tzinfo=ROME)),
        (
            "Telefonata",
            dt.datetime(2026, 3, 17, 9, 30, tzinfo=ROME),
            dt.datetime(2026, 3, 17, 10, tzinfo=ROME),
        ),
    ):
        services.event_create(calendar=calendar, title=title, start=start, end=end, time_zone="Europe/Rome")
    services.event_create(
        calendar=calendar,
        title="Ferie",
        start=dt.datetime(2026, 3, 18, tzinfo=ROME),
        end=dt.datetime(2026, 3, 19, tzinfo=ROME),
        time_zone="Europe/Rome",
        all_day=True,
    )


def test_it_shows_the_week_as_a_time_grid_on_a_desktop(browser_page, live_server, demo_user, settings):
    _grid_events(demo_user.owner)
    page = browser_page
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    page.goto(f"{live_server.url}/calendar/week/2026/3/17/")
    grid = page.locator(".agenda-weekgrid [data-agenda-grid]")
    assert grid.is_visible() is True
    assert page.locator("ol.agenda-week").is_visible() is False
    assert no_horizontal_overflow(page) is True
    nine = grid.locator(".agenda-grid__hours [data-hour='9']").bounding_box()
    ten = grid.locator(".agenda-grid__hours [data-hour='10']").bounding_box()
    hour = ten["y"] - nine["y"]
    hearing = grid.locator(".agenda-grid__event", has_text="Udienza").bounding_box()
    call = grid.locator(".agenda-grid__event", has_text="Telefonata").bounding_box()
    # The grid opens at 07:00: the 09:00 row is on screen without scrolling the page.
    assert grid.locator(".agenda-grid__hours [data-hour='7']").is_visible() is True
    assert page.evaluate("document.querySelector('.agenda-grid__scroll').scrollTop") > 0
    # 09:00–10:30 starts in the 09 row and is one and a half hours tall.
    row_top = grid.locator(".agenda-grid__col[data-date='2026-03-17']").bounding_box()["y"]
    assert abs((hearing["y"] - row_top) - 9 * hour) < 2
    assert abs(hearing["height"] - 1.5 * hour) < 2
    # The overlapping call sits beside it, half an hour lower.
    assert call["x"] >= hearing["x"] + hearing["width"] - 1
    assert abs((call["y"] - hearing["y"]) - hour / 2) < 2
    strip = grid.locator(".agenda-grid__allday")
    assert strip.get_by_text("Ferie").is_visible() is True
    # Keyboard navigation still moves between weeks.
    page.locator("main").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**/calendar/week/2026/3/24/")


def test_it_keeps_week_and_day_inside_a_phone_screen(phone_page, live_server, demo_user, settings):
    _grid_events(demo_user.owner)
    page = phone_page
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    page.goto(f"{live_server.url}/calendar/week/2026/3/17/")
    assert no_horizontal_overflow(page) is True
    assert page.locator(".agenda-weekgrid").is_visible() is False
    assert page.locator("ol.agenda-week").get_by_text("Udienza").is_visible() is True
    page.goto(f"{live_server.url}/calendar/day/2026/3/17/")
    assert no_horizontal_overflow(page) is True
    assert page.locator("[data-agenda-grid]").is_visible() is True
    assert page.locator(".agenda-grid__event", has_text="Udienza").is_visible() is True
    assert page.locator(".agenda-grid__allday").get_by_text("Ferie").count() == 0
