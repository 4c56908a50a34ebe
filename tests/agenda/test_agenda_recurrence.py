import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from pecmail.agenda.recurrence import RecurrenceError, occurrences, rrule_build, rrule_normalise

ROME = ZoneInfo("Europe/Rome")
UTC = dt.UTC


def event(**kw):
    start = kw.pop("start", dt.datetime(2026, 3, 16, 9, 0, tzinfo=ROME))
    base = {
        "start": start,
        "end": start + dt.timedelta(hours=1),
        "all_day": False,
        "time_zone": "Europe/Rome",
        "rrule": "",
        "exdates": [],
    }
    base.update(kw)
    return SimpleNamespace(**base)


def test_it_keeps_a_weekly_0900_rome_event_at_0900_local_across_the_spring_change():
    weekly = event(rrule="FREQ=WEEKLY;COUNT=4")
    found = occurrences(weekly, dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 5, 1, tzinfo=UTC))
    assert [o.start.astimezone(ROME).strftime("%Y-%m-%d %H:%M") for o in found] == [
        "2026-03-16 09:00",
        "2026-03-23 09:00",
        "2026-03-30 09:00",
        "2026-04-06 09:00",
    ]
    # Before 29 March Rome is UTC+1, afterwards UTC+2: the UTC hour moves, the local one does not.
    assert [o.start.astimezone(UTC).hour for o in found] == [8, 8, 7, 7]
    assert all(o.end - o.start == dt.timedelta(hours=1) for o in found)


def test_it_keeps_local_time_across_the_autumn_change_too():
    weekly = event(start=dt.datetime(2026, 10, 19, 9, 0, tzinfo=ROME), rrule="FREQ=WEEKLY")
    found = occurrences(weekly, dt.datetime(2026, 10, 1, tzinfo=UTC), dt.datetime(2026, 11, 5, tzinfo=UTC))
    assert [o.start.astimezone(ROME).hour for o in found] == [9, 9, 9]
    assert [o.start.astimezone(UTC).hour for o in found] == [7, 8, 8]


def test_it_leaves_out_exception_dates():
    weekly = event(rrule="FREQ=WEEKLY;COUNT=4", exdates=["2026-03-23T09:00:00"])
    found = occurrences(weekly, dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 5, 1, tzinfo=UTC))
    assert [o.key for o in found] == ["2026-03-16T09:00:00", "2026-03-30T09:00:00", "2026-04-06T09:00:00"]


def test_it_stops_at_until_and_honours_the_interval():
    rule = rrule_normalise("FREQ=MONTHLY;INTERVAL=2;UNTIL=20260901", all_day=False, tz=ROME)
    found = occurrences(
        event(start=dt.datetime(2026, 1, 31, 18, 30, tzinfo=ROME), rrule=rule),
        dt.datetime(2026, 1, 1, tzinfo=UTC),
        dt.datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert [o.start.astimezone(ROME).date().isoformat() for o in found] == [
        "2026-01-31",
        "2026-03-31",
        "2026-05-31",
        "2026-07-31",
    ]
    # RFC 5545: a monthly rule on the 31st skips the months without one.
    monthly = event(start=dt.datetime(2026, 1, 31, 18, 30, tzinfo=ROME), rrule="FREQ=MONTHLY;COUNT=3")
    found = occurrences(monthly, dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC))
    assert [o.start.astimezone(ROME).month for o in found] == [1, 3, 5]


def test_it_expands_daily_rules_only_inside_the_range():
    daily = event(start=dt.datetime(2020, 1, 1, 7, 0, tzinfo=ROME), rrule="FREQ=DAILY")
    found = occurrences(daily, dt.datetime(2026, 6, 10, tzinfo=ROME), dt.datetime(2026, 6, 13, tzinfo=ROME))
    assert [o.start.astimezone(ROME).day for o in found] == [10, 11, 12]


def test_it_expands_all_day_yearly_events_on_dates():
    birthday = event(
        start=dt.datetime(2024, 2, 29, tzinfo=ROME),
        end=dt.datetime(2024, 3, 1, tzinfo=ROME),
        all_day=True,
        rrule="FREQ=YEARLY;COUNT=3",
    )
    found = occurrences(birthday, dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2036, 1, 1, tzinfo=UTC))
    assert [o.key for o in found] == ["2024-02-29", "2028-02-29", "2032-02-29"]
    assert all(o.all_day is True for o in found)
    assert found[0].start == dt.datetime(2024, 2, 29, tzinfo=ROME)
    assert found[0].end == dt.datetime(2024, 3, 1, tzinfo=ROME)


def test_it_finds_a_one_off_event_only_in_ranges_it_overlaps():
    one = event()
    assert (
        len(
            occurrences(
                one, dt.datetime(2026, 3, 16, 9, 30, tzinfo=ROME), dt.datetime(2026, 3, 17, tzinfo=ROME)
            )
        )
        == 1
    )
    assert (
        occurrences(one, dt.datetime(2026, 3, 16, 10, 0, tzinfo=ROME), dt.datetime(2026, 3, 17, tzinfo=ROME))
        == []
    )


def test_it_writes_until_in_utc_for_timed_events_and_as_a_date_for_all_day_ones():
    assert (
        rrule_normalise("freq=weekly;until=20261231", all_day=False, tz=ROME)
        == "FREQ=WEEKLY;UNTIL=20261231T225959Z"
    )
    assert (
        rrule_normalise("RRULE:FREQ=DAILY;UNTIL=20261231T100000Z", all_day=True, tz=ROME)
        == "FREQ=DAILY;UNTIL=20261231"
    )
    assert (
        rrule_normalise("FREQ=WEEKLY;INTERVAL=1;BYDAY=mo,we", all_day=False, tz=ROME)
        == "FREQ=WEEKLY;BYDAY=MO,WE"
    )


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=HOURLY",
        "FREQ=SECONDLY;COUNT=3",
        "FREQ=WEEKLY;COUNT=2;UNTIL=20270101",
        "INTERVAL=2",
        "FREQ=DAILY;COUNT=x",
        "FREQ=DAILY;BYDAY=XX",
        "FREQ=DAILY;FOO=1",
    ],
)
def test_it_refuses_rules_it_cannot_expand(rule):
    with pytest.raises(RecurrenceError):
        rrule_normalise(rule, all_day=False, tz=ROME)


def test_it_keeps_imported_by_parts_when_the_form_changes_only_the_end():
    base = "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10"
    rule = rrule_build(
        freq="WEEKLY", interval=2, count=None, until=dt.date(2026, 12, 31), all_day=False, tz=ROME, base=base
    )
    assert rule == "FREQ=WEEKLY;UNTIL=20261231T225959Z;INTERVAL=2;BYDAY=MO,WE"
    assert rrule_build(freq="DAILY", count=3, all_day=False, tz=ROME, base=base) == "FREQ=DAILY;COUNT=3"
