"""iCalendar (RFC 5545) build and parse for events, with no ORM: data in, bytes out and back."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import icalendar
from django.utils.translation import gettext as _

from .recurrence import RecurrenceError, occurrence_key, rrule_normalise, zone

MAX_ICS_BYTES = 2 * 1024 * 1024
PRODID = "-//pecmail//Calendar//EN"
MAX_TEXT = 500
MIN_YEAR, MAX_YEAR = 1900, 2200


class IcsError(ValueError):
    """The file as a whole cannot be imported (the message is for the user)."""


@dataclass
class EventData:
    """An event as the file and the database both describe it."""

    uid: str
    title: str
    start: datetime
    end: datetime
    all_day: bool = False
    time_zone: str = "Europe/Rome"
    description: str = ""
    location: str = ""
    url: str = ""
    rrule: str = ""
    exdates: list[str] = field(default_factory=list)
    reminder_minutes: int | None = None


@dataclass
class ParseResult:
    name: str
    events: list[EventData]
    # (what, why) for every VEVENT left out.
    skipped: list[tuple[str, str]]


def _vevent(data: EventData, stamp: datetime) -> icalendar.Event:
    tz = zone(data.time_zone)
    event = icalendar.Event()
    event.add("uid", data.uid)
    event.add("dtstamp", stamp)
    event.add("summary", data.title)
    if data.all_day:
        event.add("dtstart", data.start.astimezone(tz).date())
        event.add("dtend", data.end.astimezone(tz).date())
    else:
        event.add("dtstart", data.start.astimezone(tz))
        event.add("dtend", data.end.astimezone(tz))
    if data.location:
        event.add("location", data.location)
    if data.description:
        event.add("description", data.description)
    if data.url:
        event.add("url", data.url)
    if data.rrule:
        event.add("rrule", icalendar.vRecur.from_ical(data.rrule))
    if data.exdates:
        if data.all_day:
            dates = [date.fromisoformat(key) for key in sorted(data.exdates)]
        else:
            dates = [datetime.fromisoformat(key).replace(tzinfo=tz) for key in sorted(data.exdates)]
        event.add("exdate", dates)
    if data.reminder_minutes is not None:
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", data.title)
        alarm.add("trigger", timedelta(minutes=-data.reminder_minutes))
        event.add_component(alarm)
    return event


def calendar_build(*, name: str, events: Iterable[EventData], stamp: datetime | None = None) -> bytes:
    """A whole VCALENDAR with one VEVENT per event and the VTIMEZONEs their TZIDs need."""
    stamp = (stamp or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    if name:
        cal.add("x-wr-calname", name)
    for data in events:
        cal.add_component(_vevent(data, stamp))
    cal.add_missing_timezones()
    return cal.to_ical()


def _text(component: Any, name: str, limit: int | None = None) -> str:
    value = component.get(name)
    if value is None:
        return ""
    if isinstance(value, list):
        value = value[0]
    text = str(value).replace("\x00", "")
    return text[:limit] if limit else text


def _tz_name(value: datetime, default_tz: str) -> str:
    key = getattr(value.tzinfo, "key", None)
    if key and zone(key).key == key:
        return key
    if value.utcoffset() == timedelta(0):
        return "UTC"
    return default_tz


def _as_datetime(value: date | datetime, tz_name: str) -> datetime:
    tz = zone(tz_name)
    if isinstance(value, datetime):
        return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)
    return datetime.combine(value, time(), tzinfo=tz)


def _exdates(component: Any, *, all_day: bool, tz_name: str) -> list[str]:
    raw = component.get("exdate")
    if raw is None:
        return []
    lists = raw if isinstance(raw, list) else [raw]
    keys: set[str] = set()
    tz = zone(tz_name)
    for item in lists:
        for value in getattr(item, "dts", []):
            dt = value.dt
            if all_day:
                keys.add(occurrence_key(dt, all_day=True))
            elif isinstance(dt, datetime):
                local = dt.replace(tzinfo=tz) if dt.tzinfo is None else dt.astimezone(tz)
                keys.add(occurrence_key(local, all_day=False))
    return sorted(keys)


def _reminder(component: Any) -> int | None:
    for alarm in component.walk("VALARM"):
        trigger = alarm.get("trigger")
        if trigger is None:
            continue
        value = trigger.dt
        related = str(trigger.params.get("RELATED", "START")).upper()
        # Only "some time before the start" maps onto reminder_minutes; absolute triggers are dropped.
        if isinstance(value, timedelta) and related == "START" and value <= timedelta(0):
            minutes = int(-value.total_seconds() // 60)
            return min(minutes, 40320)
    return None


def _event_from(component: Any, default_tz: str) -> EventData:
    errors = getattr(component, "errors", None)
    if errors:
        name, problem = errors[0]
        raise ValueError(
            _("unreadable line (%(name)s: %(problem)s)") % {"name": name or "?", "problem": problem}
        )
    if component.get("recurrence-id") is not None:
        raise ValueError(_("a changed single occurrence of a recurring event is not supported"))
    if component.get("dtstart") is None:
        raise ValueError(_("no start date"))
    start_value = component.decoded("dtstart")
    all_day = not isinstance(start_value, datetime)
    if all_day:
        tz_name = default_tz
    elif start_value.tzinfo is None:
        # Floating time: the wall clock of whoever opens it, here the user's zone.
        tz_name = default_tz
    else:
        tz_name = _tz_name(start_value, default_tz)
    start = _as_datetime(start_value, tz_name)
    # Recurrences are expanded from the start: a rule from year 1 would cost every page view dearly.
    if not MIN_YEAR <= start.year <= MAX_YEAR:
        raise ValueError(
            _("the start date is outside the years %(min)d–%(max)d") % {"min": MIN_YEAR, "max": MAX_YEAR}
        )
    if component.get("dtend") is not None:
        end_value = component.decoded("dtend")
        end = _as_datetime(end_value, tz_name)
    elif component.get("duration") is not None:
        end = start + component.decoded("duration")
    else:
        end = start + timedelta(days=1) if all_day else start
    if all_day and end <= start:
        end = start + timedelta(days=1)
    if end < start:
        raise ValueError(_("it ends before it starts"))
    rrule = ""
    raw_rule = component.get("rrule")
    if raw_rule is not None:
        if isinstance(raw_rule, list):
            raise ValueError(_("more than one recurrence rule"))
        try:
            rrule = rrule_normalise(raw_rule.to_ical().decode(), all_day=all_day, tz=zone(tz_name))
        except RecurrenceError as exc:
            raise ValueError(_("unsupported recurrence rule (%(reason)s)") % {"reason": exc}) from None
    title = _text(component, "summary", MAX_TEXT).strip() or _("(no title)")
    return EventData(
        uid=_text(component, "uid", 255).strip() or f"{uuid.uuid4()}@pecmail",
        title=title,
        start=start,
        end=end,
        all_day=all_day,
        time_zone=tz_name,
        description=_text(component, "description"),
        location=_text(component, "location", MAX_TEXT),
        url=_text(component, "url", 2000),
        rrule=rrule,
        exdates=_exdates(component, all_day=all_day, tz_name=tz_name) if rrule else [],
        reminder_minutes=_reminder(component),
    )


def calendar_parse(data: bytes, *, default_tz: str) -> ParseResult:
    """The events of an .ics file; IcsError when the file as a whole is unusable.

    A VEVENT that cannot be understood is listed in ``skipped`` with the reason, so the user
    can decide whether to import the rest.
    """
    if len(data) > MAX_ICS_BYTES:
        raise IcsError(_("The file is larger than 2 MiB."))
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text[:15].upper().startswith(b"BEGIN:VCALENDAR"):
        raise IcsError(_("This is not an iCalendar (.ics) file."))
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        raise IcsError(_("The file is not UTF-8 text.")) from None
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except Exception:
        # The parser raises many kinds of errors on broken input; all mean the same to the user.
        raise IcsError(_("The file is damaged and cannot be read as iCalendar.")) from None
    if not calendars:
        # An unterminated VCALENDAR (a truncated download) parses to nothing at all.
        raise IcsError(_("The file is damaged and cannot be read as iCalendar."))
    events: list[EventData] = []
    skipped: list[tuple[str, str]] = []
    name = ""
    seen: set[str] = set()
    for cal in calendars:
        name = name or _text(cal, "x-wr-calname", 200).strip()
        for component in cal.walk("VEVENT"):
            label = _text(component, "summary", 200) or _text(component, "uid", 200) or "VEVENT"
            try:
                event = _event_from(component, default_tz)
            except Exception as exc:
                skipped.append((label, str(exc) if isinstance(exc, ValueError) else _("unreadable event")))
                continue
            if event.uid in seen:
                skipped.append((label, _("the same UID appears twice in the file")))
                continue
            seen.add(event.uid)
            events.append(event)
    if not events and not skipped:
        raise IcsError(_("The file contains no events."))
    return ParseResult(name=name, events=events, skipped=skipped)
