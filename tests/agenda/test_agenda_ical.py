import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from pecmail.agenda.ical import MAX_ICS_BYTES, EventData, IcsError, calendar_build, calendar_parse

ROME = ZoneInfo("Europe/Rome")


def strip_stamp(data: bytes) -> bytes:
    return re.sub(rb"DTSTAMP:[^\r\n]*\r\n", b"", data)


def sample_events() -> list[EventData]:
    return [
        EventData(
            uid="weekly@pecmail",
            title="Riunione settimanale però è già così",
            start=dt.datetime(2026, 3, 16, 9, tzinfo=ROME),
            end=dt.datetime(2026, 3, 16, 10, 30, tzinfo=ROME),
            description="Ordine del giorno:\n1. Città\n2. Attività; varie, eventuali",
            location="Sala Verdi, Forlì",
            url="https://example.it/riunione",
            rrule="FREQ=WEEKLY;UNTIL=20261231T225959Z;INTERVAL=2;BYDAY=MO",
            exdates=["2026-03-30T09:00:00"],
            reminder_minutes=15,
        ),
        EventData(
            uid="ferie@pecmail",
            title="Ferie d'agosto",
            start=dt.datetime(2026, 8, 10, tzinfo=ROME),
            end=dt.datetime(2026, 8, 15, tzinfo=ROME),
            all_day=True,
            rrule="FREQ=YEARLY;COUNT=5",
            exdates=["2027-08-10"],
        ),
    ]


def test_it_round_trips_a_calendar_with_accents_and_recurrence():
    first = calendar_build(name="Attività", events=sample_events())
    parsed = calendar_parse(first, default_tz="Europe/Rome")
    assert parsed.skipped == []
    assert parsed.name == "Attività"
    assert parsed.events == sample_events()
    second = calendar_build(name=parsed.name, events=parsed.events)
    assert strip_stamp(second) == strip_stamp(first)


def test_it_writes_tzid_vtimezone_rrule_exdate_and_valarm():
    text = calendar_build(name="x", events=sample_events()).decode()
    assert "DTSTART;TZID=Europe/Rome:20260316T090000" in text
    assert "BEGIN:VTIMEZONE\r\nTZID:Europe/Rome" in text
    assert "RRULE:FREQ=WEEKLY;UNTIL=20261231T225959Z;INTERVAL=2;BYDAY=MO" in text
    assert "EXDATE;TZID=Europe/Rome:20260330T090000" in text
    assert "DTSTART;VALUE=DATE:20260810" in text
    assert "EXDATE;VALUE=DATE:20270810" in text
    assert "BEGIN:VALARM\r\nACTION:DISPLAY" in text
    assert "TRIGGER:-PT15M" in text


OUTLOOK = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Microsoft Corporation//Outlook 16.0//EN\r
BEGIN:VTIMEZONE\r
TZID:America/New_York\r
BEGIN:STANDARD\r
DTSTART:19701101T020000\r
TZOFFSETFROM:-0400\r
TZOFFSETTO:-0500\r
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:19700308T020000\r
TZOFFSETFROM:-0500\r
TZOFFSETTO:-0400\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r
END:DAYLIGHT\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:ny-1\r
SUMMARY:Call with New York\r
DTSTART;TZID=America/New_York:20260310T100000\r
DTEND;TZID=America/New_York:20260310T110000\r
RRULE:FREQ=DAILY;UNTIL=20260315\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
TRIGGER;RELATED=START:-PT1H\r
END:VALARM\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:floating\r
SUMMARY:Floating lunch\r
DTSTART:20260401T130000\r
DURATION:PT1H\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:utc\r
SUMMARY:UTC call\r
DTSTART:20260401T150000Z\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_it_reads_tzid_floating_and_utc_times_and_alarms_from_other_programs():
    parsed = calendar_parse(OUTLOOK, default_tz="Europe/Rome")
    ny, floating, utc = parsed.events
    assert ny.time_zone == "America/New_York"
    assert ny.start.astimezone(dt.UTC) == dt.datetime(2026, 3, 10, 14, 0, tzinfo=dt.UTC)
    # A date UNTIL covers that whole local day, written in UTC as RFC 5545 requires.
    assert ny.rrule == "FREQ=DAILY;UNTIL=20260316T035959Z"
    assert ny.reminder_minutes == 60
    assert floating.time_zone == "Europe/Rome"
    assert floating.start == dt.datetime(2026, 4, 1, 13, tzinfo=ROME)
    assert floating.end - floating.start == dt.timedelta(hours=1)
    assert utc.time_zone == "UTC"
    assert utc.end == utc.start


def test_it_skips_unreadable_events_with_a_reason_and_keeps_the_rest():
    data = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
BEGIN:VEVENT\r
UID:good\r
SUMMARY:Good\r
DTSTART;VALUE=DATE:20260501\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:hourly\r
SUMMARY:Too often\r
DTSTART:20260501T100000Z\r
RRULE:FREQ=HOURLY\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:nostart\r
SUMMARY:No start\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:backwards\r
SUMMARY:Backwards\r
DTSTART:20260501T100000Z\r
DTEND:20260501T090000Z\r
END:VEVENT\r
END:VCALENDAR\r
"""
    parsed = calendar_parse(data, default_tz="Europe/Rome")
    assert [e.uid for e in parsed.events] == ["good"]
    assert parsed.events[0].end - parsed.events[0].start == dt.timedelta(days=1)
    reasons = dict(parsed.skipped)
    assert "FREQ HOURLY" in reasons["Too often"]
    assert reasons["No start"] == "no start date"
    assert reasons["Backwards"] == "it ends before it starts"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<html><script>alert(1)</script></html>", "not an iCalendar"),
        (b"BEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n", "not an iCalendar"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "no events"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\n", "damaged"),
        (b"BEGIN:VCALENDAR\r\nSUMMARY:\xff\xfe\r\nEND:VCALENDAR\r\n", "UTF-8"),
        (b"BEGIN:VCALENDAR\r\n" + b"X-PAD:" + b"a" * MAX_ICS_BYTES + b"\r\nEND:VCALENDAR\r\n", "2 MiB"),
    ],
)
def test_it_refuses_files_that_are_not_usable_as_a_whole(data, message):
    with pytest.raises(IcsError, match=message):
        calendar_parse(data, default_tz="Europe/Rome")


def test_it_keeps_hostile_text_verbatim_for_the_templates_to_escape():
    data = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
BEGIN:VEVENT\r
UID:x\r
SUMMARY:<script>alert('s')</script>\r
DESCRIPTION:<img src=x onerror=alert(1)>\r
LOCATION:<b>here</b>\r
URL:javascript:alert(1)\r
DTSTART:20260501T100000Z\r
END:VEVENT\r
END:VCALENDAR\r
"""
    event = calendar_parse(data, default_tz="Europe/Rome").events[0]
    assert event.title == "<script>alert('s')</script>"
    assert event.url == "javascript:alert(1)"


def test_it_skips_an_event_with_a_broken_line_instead_of_guessing():
    data = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
BEGIN:VEVENT\r
UID:1\r
SUMMARY:Broken date\r
DTSTART:notadate\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:2\r
SUMMARY:Fine\r
DTSTART:20260101T100000Z\r
END:VEVENT\r
END:VCALENDAR\r
"""
    parsed = calendar_parse(data, default_tz="Europe/Rome")
    assert [e.uid for e in parsed.events] == ["2"]
    assert parsed.skipped[0][0] == "Broken date"
    assert "DTSTART" in parsed.skipped[0][1]


def test_it_skips_events_starting_in_implausible_years():
    data = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
BEGIN:VEVENT\r
UID:ancient\r
SUMMARY:Ancient daily\r
DTSTART:00010101T100000Z\r
RRULE:FREQ=DAILY\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:ok\r
SUMMARY:Fine\r
DTSTART:20260101T100000Z\r
END:VEVENT\r
END:VCALENDAR\r
"""
    parsed = calendar_parse(data, default_tz="Europe/Rome")
    assert [e.uid for e in parsed.events] == ["ok"]
    assert "outside the years 1900–2200" in parsed.skipped[0][1]
