"""VTODO parsing and serialising: round trips, DST, hostile and broken files."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from pecmail.todos import formats

ROME = ZoneInfo("Europe/Rome")
STAMP = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


def records() -> list[formats.Record]:
    first = formats.empty_record()
    first.update(
        uid="a1@pecmail",
        title="Rispondere all'Agenzia delle Entrate — è urgente, perché sì; ok",
        notes="Riga uno\nRiga due: «città» ñ",
        due_date="2026-10-25",
        due_time="02:30:00",
        priority=1,
        status="completed",
        completed_at="2026-10-24T08:15:00+00:00",
        list="Scadenze PEC",
    )
    second = formats.empty_record()
    second.update(uid="b2@pecmail", title="Solo data", due_date="2026-12-31", priority=9, status="in-process")
    third = formats.empty_record()
    third.update(uid="c3@pecmail", title="Senza scadenza")
    return [first, second, third]


def test_it_round_trips_vtodo_with_accents_and_a_dst_ambiguous_time():
    first = formats.ics_serialize(records(), zone=ROME, stamp=STAMP)
    parsed = formats.ics_parse(first, zone=ROME)
    assert parsed.skipped == []
    assert parsed.records == records()
    assert formats.ics_serialize(parsed.records, zone=ROME, stamp=STAMP) == first


def test_it_writes_due_times_in_utc_and_dates_as_dates():
    body = formats.ics_serialize(records(), zone=ROME, stamp=STAMP).decode()
    # 25 October 2026 02:30 in Rome is still summer time (UTC+2) on its first pass.
    assert "DUE:20261025T003000Z" in body
    assert "DUE;VALUE=DATE:20261231" in body
    assert "STATUS:IN-PROCESS" in body
    assert "CATEGORIES:Scadenze PEC" in body


def test_it_reads_floating_and_zoned_times_in_the_users_zone():
    data = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
        b"BEGIN:VTODO\r\nUID:f\r\nSUMMARY:Floating\r\nDUE:20260701T090000\r\nEND:VTODO\r\n"
        b"BEGIN:VTODO\r\nUID:n\r\nSUMMARY:New York\r\nDUE;TZID=America/New_York:20260701T090000\r\nEND:VTODO\r\n"
        b"END:VCALENDAR\r\n"
    )
    floating, new_york = formats.ics_parse(data, zone=ROME).records
    assert (floating["due_date"], floating["due_time"]) == ("2026-07-01", "09:00:00")
    assert (new_york["due_date"], new_york["due_time"]) == ("2026-07-01", "15:00:00")


def test_it_maps_ics_priorities_into_three_levels():
    assert [formats.priority_from_ics(n) for n in (0, 1, 4, 5, 6, 9, "x", None)] == [5, 1, 1, 5, 9, 9, 5, 5]


def test_it_skips_events_untitled_and_repeated_todos_with_reasons():
    data = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
        b"BEGIN:VEVENT\r\nUID:e\r\nSUMMARY:Meeting\r\nDTSTART:20260101T100000Z\r\nEND:VEVENT\r\n"
        b"BEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\n"
        b"BEGIN:VTODO\r\nUID:d\r\nSUMMARY:Once\r\nEND:VTODO\r\n"
        b"BEGIN:VTODO\r\nUID:d\r\nSUMMARY:Twice\r\nEND:VTODO\r\n"
        b"END:VCALENDAR\r\n"
    )
    parsed = formats.ics_parse(data, zone=ROME)
    assert [r["title"] for r in parsed.records] == ["Once"]
    assert parsed.skipped == [
        ("Meeting", "it is not a task (VEVENT)"),
        ("item 2", "it has no title"),
        ("Twice", "it appears twice in the file"),
    ]


@pytest.mark.parametrize(
    "data", [b"", b"hello world", b"BEGIN:VCARD\r\nEND:VCARD\r\n", b"\xff\xfe\x00garbage"]
)
def test_it_refuses_files_that_are_not_icalendar(data):
    with pytest.raises(formats.FormatError):
        formats.ics_parse(data, zone=ROME)


def test_it_takes_completion_from_dtstamp_when_completed_is_missing():
    data = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:t\r\nSUMMARY:Done\r\n"
        b"STATUS:COMPLETED\r\nDTSTAMP:20260101T100000Z\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
    [record] = formats.ics_parse(data, zone=ROME).records
    assert record["completed_at"] == "2026-01-01T10:00:00+00:00"
