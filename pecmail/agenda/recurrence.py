"""Recurrence rules (RFC 5545 RRULE) and their expansion into occurrences, with no ORM.

Timed events are expanded on the wall clock of their own time zone, so a weekly 09:00
Europe/Rome event stays at 09:00 local after a daylight-saving change. All-day events are
expanded on dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
# Canonical order of the parts, so that the same rule is always written the same way.
PART_ORDER = (
    "FREQ", "UNTIL", "COUNT", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY",
    "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST",
)  # fmt: skip
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# A single range query never expands more than this many occurrences of one event.
MAX_OCCURRENCES = 2000


class RecurrenceError(ValueError):
    """The rule is not one pecmail can store and expand."""


def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for ``name``; UTC when the name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def rrule_parts(rule: str) -> dict[str, str]:
    """``"FREQ=WEEKLY;COUNT=3"`` → ``{"FREQ": "WEEKLY", "COUNT": "3"}`` (keys upper-cased)."""
    parts: dict[str, str] = {}
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    for chunk in text.split(";"):
        if not chunk.strip():
            continue
        if "=" not in chunk:
            raise RecurrenceError(f"malformed rule part {chunk!r}")
        key, value = chunk.split("=", 1)
        key = key.strip().upper()
        if key in parts:
            raise RecurrenceError(f"{key} appears twice")
        parts[key] = value.strip()
    return parts


def _parse_until(value: str) -> date | datetime:
    text = value.strip().upper()
    try:
        if len(text) == 8:
            return datetime.strptime(text, "%Y%m%d").date()
        if text.endswith("Z"):
            return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return datetime.strptime(text, "%Y%m%dT%H%M%S")
    except ValueError:
        raise RecurrenceError(f"UNTIL {value!r} is not a date") from None


def rrule_normalise(rule: str, *, all_day: bool, tz: ZoneInfo) -> str:
    """The rule in canonical form, or "" for an empty rule; RecurrenceError if unusable.

    UNTIL becomes a UTC date-time for timed events (RFC 5545 requires it with a TZID start)
    and a plain date for all-day events.
    """
    if not rule.strip():
        return ""
    parts = rrule_parts(rule)
    freq = parts.get("FREQ", "").upper()
    if freq not in FREQUENCIES:
        raise RecurrenceError(f"FREQ {freq or '(missing)'} is not supported")
    parts["FREQ"] = freq
    unknown = set(parts) - set(PART_ORDER)
    if unknown:
        raise RecurrenceError(f"unsupported parts: {', '.join(sorted(unknown))}")
    if "UNTIL" in parts and "COUNT" in parts:
        raise RecurrenceError("UNTIL and COUNT together")
    for key in ("COUNT", "INTERVAL"):
        if key in parts:
            if not parts[key].isdigit() or not 1 <= int(parts[key]) <= 10000:
                raise RecurrenceError(f"{key} must be a positive number")
            parts[key] = str(int(parts[key]))
    if parts.get("INTERVAL") == "1":
        del parts["INTERVAL"]
    if "UNTIL" in parts:
        until = _parse_until(parts["UNTIL"])
        if all_day:
            until_date = (
                until.astimezone(tz).date() if isinstance(until, datetime) and until.tzinfo else until
            )
            if isinstance(until_date, datetime):
                until_date = until_date.date()
            parts["UNTIL"] = until_date.strftime("%Y%m%d")
        else:
            if isinstance(until, datetime):
                # A floating UNTIL is wall-clock time in the event's zone.
                until_dt = until if until.tzinfo else until.replace(tzinfo=tz)
            else:
                # A date UNTIL includes that whole local day.
                until_dt = datetime.combine(until, time(23, 59, 59), tzinfo=tz)
            parts["UNTIL"] = until_dt.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    for key, value in parts.items():
        if key not in ("FREQ", "UNTIL", "COUNT", "INTERVAL"):
            parts[key] = value.upper()
    text = ";".join(f"{key}={parts[key]}" for key in PART_ORDER if key in parts)
    # Let dateutil judge the BY* parts: a rule it cannot expand is refused now, not at display time.
    try:
        dtstart = datetime(2026, 1, 1) if all_day else datetime(2026, 1, 1, tzinfo=tz)
        rrulestr(text, dtstart=dtstart)
    except (ValueError, TypeError) as exc:
        raise RecurrenceError(str(exc)) from None
    return text


def rrule_build(
    *,
    freq: str,
    interval: int = 1,
    until: date | None = None,
    count: int | None = None,
    all_day: bool,
    tz: ZoneInfo,
    base: str = "",
    weekdays: list[str] | None = None,
) -> str:
    """A rule from the event form's fields.

    When ``base`` (the stored rule) has the same FREQ, its other parts (BYDAY, BYMONTHDAY…,
    typically from an imported file) are kept: the form only edits frequency, interval, end
    and, for weekly rules, the weekdays (``weekdays`` None keeps them, [] drops them).
    """
    if not freq:
        return ""
    parts = rrule_parts(base) if base else {}
    if parts.get("FREQ", "").upper() != freq:
        parts = {}
    parts["FREQ"] = freq
    parts.pop("UNTIL", None)
    parts.pop("COUNT", None)
    parts["INTERVAL"] = str(interval or 1)
    if until is not None:
        parts["UNTIL"] = until.strftime("%Y%m%d")
    elif count:
        parts["COUNT"] = str(count)
    if freq == "WEEKLY" and weekdays is not None:
        parts.pop("BYDAY", None)
        if weekdays:
            parts["BYDAY"] = ",".join(day for day in WEEKDAYS if day in weekdays)
    return rrule_normalise(";".join(f"{k}={v}" for k, v in parts.items()), all_day=all_day, tz=tz)


def occurrence_key(local_start: datetime | date, *, all_day: bool) -> str:
    """How an occurrence is named in EXDATE lists: local wall-clock ISO, or the date."""
    if all_day:
        return (local_start.date() if isinstance(local_start, datetime) else local_start).isoformat()
    assert isinstance(local_start, datetime)
    return local_start.replace(tzinfo=None).isoformat()


@dataclass(frozen=True)
class Occurrence:
    """One concrete occurrence of an event (``start``/``end`` aware)."""

    event: Any
    start: datetime
    end: datetime
    all_day: bool
    key: str

    @property
    def recurring(self) -> bool:
        return bool(self.event.rrule)


def _all_day_bounds(event: Any, tz: ZoneInfo) -> tuple[date, int]:
    first = event.start.astimezone(tz).date()
    last = event.end.astimezone(tz).date()
    return first, max((last - first).days, 1)


def occurrences(event: Any, range_start: datetime, range_end: datetime) -> list[Occurrence]:
    """The occurrences of ``event`` that overlap [range_start, range_end), oldest first.

    ``event`` needs ``start``, ``end``, ``all_day``, ``time_zone``, ``rrule`` and ``exdates``.
    """
    tz = zone(event.time_zone)
    excluded = set(event.exdates or ())
    found: list[Occurrence] = []
    if event.all_day:
        first, days = _all_day_bounds(event, tz)
        candidates: list[datetime]
        if event.rrule:
            # Naive local midnights: all-day events live on dates, not instants.
            lo = range_start.astimezone(tz).replace(tzinfo=None) - timedelta(days=days)
            hi = range_end.astimezone(tz).replace(tzinfo=None)
            rule = rrulestr(event.rrule, dtstart=datetime.combine(first, time()))
            candidates = rule.between(lo, hi, inc=True)
        else:
            candidates = [datetime.combine(first, time())]
        for naive in candidates[:MAX_OCCURRENCES]:
            key = occurrence_key(naive, all_day=True)
            if key in excluded:
                continue
            start = datetime.combine(naive.date(), time(), tzinfo=tz)
            end = datetime.combine(naive.date() + timedelta(days=days), time(), tzinfo=tz)
            if end > range_start and start < range_end:
                found.append(Occurrence(event, start, end, True, key))
        return found[:MAX_OCCURRENCES]

    duration = event.end - event.start
    local_start = event.start.astimezone(tz)
    if event.rrule:
        rule = rrulestr(event.rrule, dtstart=local_start)
        candidates = rule.between(range_start - duration, range_end, inc=True)
    else:
        candidates = [local_start]
    for local in candidates:
        key = occurrence_key(local, all_day=False)
        if key in excluded:
            continue
        start = local.astimezone(UTC)
        end = start + duration
        # A zero-length event still shows on the instant it happens.
        if (end > range_start or (duration == timedelta(0) and start >= range_start)) and start < range_end:
            found.append(Occurrence(event, start, end, False, key))
        if len(found) >= MAX_OCCURRENCES:
            break
    return found


def describe(rule: str) -> dict[str, Any]:
    """The form's view of a rule: freq, interval, until (date), count, weekdays."""
    if not rule:
        return {"freq": "", "interval": 1, "until": None, "count": None, "weekdays": []}
    parts = rrule_parts(rule)
    until = _parse_until(parts["UNTIL"]) if "UNTIL" in parts else None
    # Plain weekdays only: "2TU" (the second Tuesday) belongs to monthly rules the form keeps as they are.
    days = [d for d in parts.get("BYDAY", "").split(",") if d in WEEKDAYS]
    return {
        "weekdays": days,
        "freq": parts.get("FREQ", ""),
        "interval": int(parts.get("INTERVAL", "1")),
        "until": until,
        "count": int(parts["COUNT"]) if "COUNT" in parts else None,
    }
