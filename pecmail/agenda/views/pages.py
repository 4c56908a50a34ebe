"""The period pages: month, week, day and the agenda list."""

from __future__ import annotations

import calendar as stdlib_calendar
from datetime import date, timedelta

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.formats import date_format
from django.views.decorators.http import require_GET

from pecmail.lib.http import AuthenticatedHttpRequest

from .. import selectors, services
from ._common import (
    GRID_HOURS,
    bucket_by_day,
    checked_date,
    day_url,
    frame,
    grid_days,
    grid_first_hour,
    list_url,
    local_midnight,
    month_url,
    today,
    tz_of,
    week_url,
    with_user_time_zone,
)

LIST_DAYS = 30


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@require_GET
@login_required
@with_user_time_zone
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _month(request, today(tz_of(request)).replace(day=1))


@require_GET
@login_required
@with_user_time_zone
def month(request: AuthenticatedHttpRequest, year: int, month: int) -> HttpResponse:
    return _month(request, checked_date(year, month))


def _month(request: AuthenticatedHttpRequest, first: date) -> HttpResponse:
    tz = tz_of(request)
    services.calendar_default_ensure(user=request.user)
    last = first.replace(day=stdlib_calendar.monthrange(first.year, first.month)[1])
    grid_start = first - timedelta(days=first.weekday())
    grid_end = last + timedelta(days=6 - last.weekday())
    days = [grid_start + timedelta(days=n) for n in range((grid_end - grid_start).days + 1)]
    found = selectors.occurrence_list(
        user=request.user,
        tz=tz,
        start=local_midnight(grid_start, tz),
        end=local_midnight(grid_end + timedelta(days=1), tz),
    )
    buckets = bucket_by_day(found, days, tz)
    cells = [{"date": d, "in_month": d.month == first.month, "occurrences": buckets[d]} for d in days]
    context = frame(
        request,
        view="month",
        anchor=first,
        title=date_format(first, "YEAR_MONTH_FORMAT"),
        prev_url=month_url(_add_months(first, -1)),
        next_url=month_url(_add_months(first, 1)),
        today_url=month_url(today(tz)),
    )
    context["weeks"] = [cells[i : i + 7] for i in range(0, len(cells), 7)]
    context["weekdays"] = days[:7]
    context["has_events"] = any(cell["occurrences"] for cell in cells if cell["in_month"])
    return render(request, "agenda/month.html", context)


@require_GET
@login_required
@with_user_time_zone
def week(request: AuthenticatedHttpRequest, year: int, month: int, day: int) -> HttpResponse:
    tz = tz_of(request)
    anchor = checked_date(year, month, day)
    monday = anchor - timedelta(days=anchor.weekday())
    days = [monday + timedelta(days=n) for n in range(7)]
    found = selectors.occurrence_list(
        user=request.user,
        tz=tz,
        start=local_midnight(monday, tz),
        end=local_midnight(monday + timedelta(days=7), tz),
    )
    context = frame(
        request,
        view="week",
        anchor=anchor,
        title=f"{date_format(monday, 'MONTH_DAY_FORMAT')} – {date_format(days[-1], 'DATE_FORMAT')}",
        prev_url=week_url(anchor - timedelta(days=7)),
        next_url=week_url(anchor + timedelta(days=7)),
        today_url=week_url(today(tz)),
    )
    context["days"] = grid_days(found, days, tz)
    context["hours"] = GRID_HOURS
    context["first_hour"] = grid_first_hour(context["days"])
    return render(request, "agenda/week.html", context)


@require_GET
@login_required
@with_user_time_zone
def day(request: AuthenticatedHttpRequest, year: int, month: int, day: int) -> HttpResponse:
    tz = tz_of(request)
    anchor = checked_date(year, month, day)
    found = selectors.occurrence_list(
        user=request.user,
        tz=tz,
        start=local_midnight(anchor, tz),
        end=local_midnight(anchor + timedelta(days=1), tz),
    )
    context = frame(
        request,
        view="day",
        anchor=anchor,
        title=date_format(anchor, "l j F Y"),
        prev_url=day_url(anchor - timedelta(days=1)),
        next_url=day_url(anchor + timedelta(days=1)),
        today_url=day_url(today(tz)),
    )
    context["days"] = grid_days(found, [anchor], tz)
    context["hours"] = GRID_HOURS
    context["first_hour"] = grid_first_hour(context["days"])
    return render(request, "agenda/day.html", context)


@require_GET
@login_required
@with_user_time_zone
def agenda_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    tz = tz_of(request)
    start = today(tz)
    if request.GET.get("from"):
        try:
            start = date.fromisoformat(request.GET["from"])
        except ValueError:
            raise Http404 from None
        checked_date(start.year, start.month, start.day)
    days = [start + timedelta(days=n) for n in range(LIST_DAYS)]
    found = selectors.occurrence_list(
        user=request.user,
        tz=tz,
        start=local_midnight(start, tz),
        end=local_midnight(start + timedelta(days=LIST_DAYS), tz),
    )
    buckets = bucket_by_day(found, days, tz)
    context = frame(
        request,
        view="list",
        anchor=start,
        title=f"{date_format(start, 'DATE_FORMAT')} – {date_format(days[-1], 'DATE_FORMAT')}",
        prev_url=list_url(start - timedelta(days=LIST_DAYS)),
        next_url=list_url(start + timedelta(days=LIST_DAYS)),
        today_url=list_url(today(tz)),
    )
    context["days"] = [{"date": d, "occurrences": buckets[d]} for d in days if buckets[d]]
    return render(request, "agenda/list.html", context)
