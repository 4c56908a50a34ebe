"""Recurrence rules (RFC 5545 RRULE) and their expansion into occurrences, with no ORM.

Timed events are expanded on the wall clock of their own time zone, so a weekly 09:00
Europe/Rome event stays at 09:00 local after a daylight-saving change. All-day events are
expanded on dates.
"""

from __future__ import annotations

from copy import copy
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


def occurrences(
    event: Any, range_start: datetime, range_end: datetime, *, viewer_tz: ZoneInfo | None = None
) -> list[Occurrence]:
    """The occurrences of ``event`` that overlap [range_start, range_end), oldest first.

    ``event`` needs ``start``, ``end``, ``all_day``, ``time_zone``, ``rrule`` and ``exdates``.
    All-day events float: they cover the same dates wherever they are seen, so their
    occurrences are placed at midnight of ``viewer_tz`` (the event's own zone by default).
    """
    tz = zone(event.time_zone)
    excluded = set(event.exdates or ())
    found: list[Occurrence] = []
    if event.all_day:
        view_tz = viewer_tz or tz
        first, days = _all_day_bounds(event, tz)
        lo_date = range_start.astimezone(view_tz).date()
        hi_local = range_end.astimezone(view_tz)
        # The exclusive end date: a range ending at 10:00 still includes that day.
        hi_date = hi_local.date() if hi_local.time() == time() else hi_local.date() + timedelta(days=1)
        candidates: list[datetime]
        if event.rrule:
            # Naive midnights: all-day events live on dates, not instants.
            rule = rrulestr(event.rrule, dtstart=datetime.combine(first, time()))
            candidates = rule.between(
                datetime.combine(lo_date - timedelta(days=days), time()),
                datetime.combine(hi_date, time()),
                inc=True,
            )
        else:
            candidates = [datetime.combine(first, time())]
        for naive in candidates[:MAX_OCCURRENCES]:
            day = naive.date()
            key = occurrence_key(day, all_day=True)
            if key in excluded or not (day + timedelta(days=days) > lo_date and day < hi_date):
                continue
            start = datetime.combine(day, time(), tzinfo=view_tz)
            end = datetime.combine(day + timedelta(days=days), time(), tzinfo=view_tz)
            found.append(Occurrence(event, start, end, True, key))
        return found

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


def occurrence_exists(event: Any, key: str) -> bool:
    """Whether ``key`` (an EXDATE-style name) names a real occurrence of ``event``."""
    tz = zone(event.time_zone)
    try:
        if event.all_day:
            start = datetime.combine(date.fromisoformat(key), time(), tzinfo=tz)
        else:
            start = datetime.fromisoformat(key)
            if start.tzinfo is not None:
                return False
            start = start.replace(tzinfo=tz)
    except ValueError:
        return False
    # Excluded occurrences are not found, so skipping twice is reported as missing; look without them.
    probe = copy(event)
    probe.exdates = []
    window = occurrences(probe, start - timedelta(seconds=1), start + timedelta(seconds=1))
    return any(o.key == key for o in window)


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
