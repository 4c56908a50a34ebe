"""Helpers shared by the Calendar views: the user's time zone, the page frame, day buckets."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.http import Http404, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from pecmail.lib.http import AuthenticatedHttpRequest

from .. import selectors
from ..models import Event
from ..recurrence import Occurrence, describe

MIN_YEAR, MAX_YEAR = 1900, 2200


def with_user_time_zone(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Run the view (and its template) in the user's zone; ``request.agenda_tz`` holds it."""

    @functools.wraps(view)
    def wrapper(request: AuthenticatedHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        tz = selectors.user_time_zone(user=request.user)
        request.agenda_tz = tz  # type: ignore[attr-defined]
        with timezone.override(tz):
            return view(request, *args, **kwargs)

    return wrapper


def tz_of(request: AuthenticatedHttpRequest) -> ZoneInfo:
    return request.agenda_tz  # type: ignore[attr-defined,no-any-return]


def checked_date(year: int, month: int, day: int = 1) -> date:
    """The date named by URL parts, or 404."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise Http404
    try:
        return date(year, month, day)
    except ValueError:
        raise Http404 from None


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz)


def today(tz: ZoneInfo) -> date:
    return timezone.now().astimezone(tz).date()


def occurrence_days(occurrence: Occurrence, tz: ZoneInfo) -> list[date]:
    """The local dates an occurrence covers (an all-day or overnight event spans several)."""
    first = occurrence.start.astimezone(tz).date()
    if occurrence.end <= occurrence.start:
        return [first]
    # The end is exclusive: an event ending at midnight does not show on the next day.
    last = (occurrence.end - timedelta(microseconds=1)).astimezone(tz).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def bucket_by_day(
    occurrences: list[Occurrence], days: list[date], tz: ZoneInfo
) -> dict[date, list[Occurrence]]:
    buckets: dict[date, list[Occurrence]] = {day: [] for day in days}
    for occurrence in occurrences:
        for day in occurrence_days(occurrence, tz):
            if day in buckets:
                buckets[day].append(occurrence)
    return buckets


def month_url(day: date) -> str:
    return reverse("agenda:month", args=[day.year, day.month])


def week_url(day: date) -> str:
    return reverse("agenda:week", args=[day.year, day.month, day.day])


def day_url(day: date) -> str:
    return reverse("agenda:day", args=[day.year, day.month, day.day])


def list_url(day: date) -> str:
    return reverse("agenda:list") + f"?from={day.isoformat()}"


def frame(
    request: AuthenticatedHttpRequest,
    *,
    view: str,
    anchor: date,
    title: str,
    prev_url: str,
    next_url: str,
    today_url: str,
) -> dict[str, Any]:
    """The context every period page shares: toolbar, calendars, reminders."""
    tz = tz_of(request)
    return {
        "tab": "agenda",
        "view": view,
        "anchor": anchor,
        "period_title": title,
        "prev_url": prev_url,
        "next_url": next_url,
        "today_url": today_url,
        "views": [
            ("month", _("Month"), month_url(anchor)),
            ("week", _("Week"), week_url(anchor)),
            ("day", _("Day"), day_url(anchor)),
            ("list", _("List"), list_url(anchor)),
        ],
        "calendars": list(selectors.calendar_list(user=request.user)),
        "reminders": selectors.reminder_list(user=request.user),
        "time_zone": tz.key,
        "today": today(tz),
    }


def rule_text(event: Event, tz: ZoneInfo) -> str:
    """ "Weekly, every 2 weeks, until 1 Jan 2027" for the event page; "" for a one-off."""
    if not event.rrule:
        return ""
    rule = describe(event.rrule)
    interval = rule["interval"]
    units = {
        "DAILY": ngettext("every day", "every %(n)d days", interval),
        "WEEKLY": ngettext("every week", "every %(n)d weeks", interval),
        "MONTHLY": ngettext("every month", "every %(n)d months", interval),
        "YEARLY": ngettext("every year", "every %(n)d years", interval),
    }
    text = units.get(rule["freq"], rule["freq"]) % {"n": interval}
    if rule["until"] is not None:
        until = rule["until"]
        if isinstance(until, datetime) and until.tzinfo:
            until = until.astimezone(tz)
        text = _("%(rule)s, until %(date)s") % {"rule": text, "date": date_format(until, "DATE_FORMAT")}
    elif rule["count"]:
        text = ngettext("%(rule)s, once", "%(rule)s, %(n)d times", rule["count"]) % {
            "rule": text,
            "n": rule["count"],
        }
    return text[:1].upper() + text[1:]


# The week and day time grids: one row per quarter hour, events placed by CSS classes
# (``agenda-start-qN``, ``agenda-dur-qN``, ``agenda-lanes-N agenda-lane-I``) because CSP forbids
# inline styles. agenda.css defines exactly these classes.
QUARTERS_PER_DAY = 96
MAX_LANES = 4
FIRST_VISIBLE_HOUR = 7


@dataclass(frozen=True)
class PlacedOccurrence:
    """A timed occurrence clipped to one local day and placed on the quarter-hour grid."""

    occ: Occurrence
    start: datetime
    end: datetime
    start_q: int
    dur_q: int
    lane: int
    lanes: int

    @property
    def classes(self) -> str:
        return (
            f"agenda-start-q{self.start_q} agenda-dur-q{self.dur_q} "
            f"agenda-lanes-{self.lanes} agenda-lane-{self.lane}"
        )


def _quarter(moment: datetime, day: date) -> int:
    """The wall-clock quarter hour of ``moment`` on ``day`` (0..96; the next day is 96)."""
    if moment.date() < day:
        return 0
    if moment.date() > day:
        return QUARTERS_PER_DAY
    return (moment.hour * 60 + moment.minute) // 15


def _place_day(timed: list[Occurrence], day: date, tz: ZoneInfo) -> list[PlacedOccurrence]:
    rows: list[tuple[int, int, Occurrence, datetime, datetime]] = []
    for occurrence in timed:
        start, end = occurrence.start.astimezone(tz), occurrence.end.astimezone(tz)
        start_q = _quarter(start, day)
        end_local_q = _quarter(end, day)
        # A partly used quarter still shows: the end rounds up.
        if end.date() == day and (end.minute % 15 or end.second):
            end_local_q += 1
        end_q = min(max(end_local_q, start_q + 1), QUARTERS_PER_DAY)
        start_q = min(start_q, QUARTERS_PER_DAY - 1)
        rows.append((start_q, end_q, occurrence, start, end))
    rows.sort(key=lambda r: (r[0], -r[1]))
    placed: list[PlacedOccurrence] = []
    cluster: list[tuple[int, int, Occurrence, datetime, datetime, int]] = []
    lane_ends: list[int] = []
    cluster_end = -1

    def flush() -> None:
        lanes = min(len(lane_ends), MAX_LANES)
        for start_q, end_q, occurrence, start, end, lane in cluster:
            placed.append(
                PlacedOccurrence(
                    occurrence, start, end, start_q, end_q - start_q, min(lane, MAX_LANES - 1), lanes
                )
            )

    for start_q, end_q, occurrence, start, end in rows:
        # Events overlapping each other transitively share one set of lanes (columns).
        if cluster and start_q >= cluster_end:
            flush()
            cluster, lane_ends = [], []
        free = next((i for i, lane_end in enumerate(lane_ends) if lane_end <= start_q), None)
        if free is None:
            free = len(lane_ends)
            lane_ends.append(end_q)
        else:
            lane_ends[free] = end_q
        cluster.append((start_q, end_q, occurrence, start, end, free))
        cluster_end = max(cluster_end, end_q) if len(cluster) > 1 else end_q
    if cluster:
        flush()
    return placed


def grid_days(occurrences: list[Occurrence], days: list[date], tz: ZoneInfo) -> list[dict[str, Any]]:
    """Per day: the all-day occurrences (for the strip) and the timed ones placed on the grid."""
    buckets = bucket_by_day(occurrences, days, tz)
    return [
        {
            "date": day,
            "occurrences": buckets[day],
            "all_day": [o for o in buckets[day] if o.all_day],
            "timed": _place_day([o for o in buckets[day] if not o.all_day], day, tz),
        }
        for day in days
    ]


def grid_first_hour(columns: list[dict[str, Any]]) -> int:
    """The hour the grid opens scrolled to: 07:00, or earlier when an event starts earlier."""
    starts = [placed.start_q // 4 for column in columns for placed in column["timed"]]
    return min([FIRST_VISIBLE_HOUR, *starts])


GRID_HOURS = [(hour, f"{hour:02d}:00", hour * 4) for hour in range(24)]
