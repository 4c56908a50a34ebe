"""Event pages: create, read, edit, delete, skip one occurrence, create from a PEC message."""

from __future__ import annotations

import contextlib
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pecmail.lib.http import AuthenticatedHttpRequest

from .. import selectors, services
from ..forms import EventForm
from ..models import Event
from ..recurrence import occurrence_key, occurrences, zone
from ._common import day_url, month_url, rule_text, tz_of, with_user_time_zone


def _safe_link(url: str) -> str:
    """The URL if it may become a link (http/https); imported files may carry javascript: and worse."""
    lowered = url.strip().lower()
    return url.strip() if lowered.startswith(("http://", "https://")) else ""


def _default_initial(request: AuthenticatedHttpRequest) -> dict[str, Any]:
    tz = tz_of(request)
    # The next full hour, one hour long: what people most often mean by a new event. After
    # 23:00 that hour is tomorrow's midnight, not today's (which would already be past).
    now = timezone.now().astimezone(tz)
    next_hour = (now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    day = next_hour.date()
    if request.GET.get("date"):
        with contextlib.suppress(ValueError):
            day = date.fromisoformat(request.GET["date"])
    start_time = time(next_hour.hour, 0)
    end_time = time((next_hour.hour + 1) % 24, 0)
    end_day = day + timedelta(days=1) if end_time < start_time else day
    initial: dict[str, Any] = {
        "start_date": day,
        "start_time": start_time,
        "end_date": end_day,
        "end_time": end_time,
        "interval": 1,
        "ends": "never",
    }
    calendar_id = request.GET.get("calendar")
    if calendar_id and calendar_id.isdigit():
        initial["calendar"] = int(calendar_id)
    return initial


@require_http_methods(["GET", "POST"])
@login_required
@with_user_time_zone
def event_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    tz = tz_of(request)
    default = services.calendar_default_ensure(user=request.user)
    if request.method == "POST":
        form = EventForm(request.POST, user=request.user, tz=tz)
        if form.is_valid():
            event = services.event_create(
                calendar=form.cleaned_data["calendar"], **form.cleaned_data["event_fields"]
            )
            messages.success(request, _("Event created."))
            return redirect("agenda:event_detail", event.pk)
        return render(request, "agenda/event_form.html", _form_context(form, None, None), status=422)
    initial = {"calendar": default.pk, **_default_initial(request)}
    form = EventForm(user=request.user, tz=tz, initial=initial)
    return render(request, "agenda/event_form.html", _form_context(form, None, None))


@require_http_methods(["GET", "POST"])
@login_required
@with_user_time_zone
def create_from_message(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    """A new event prefilled from a PEC message's subject and date, linked back to it."""
    message = selectors.message_get(user=request.user, message_id=message_id)
    tz = tz_of(request)
    if request.method == "POST":
        form = EventForm(request.POST, user=request.user, tz=tz)
        if form.is_valid():
            event = services.event_create(
                calendar=form.cleaned_data["calendar"], message=message, **form.cleaned_data["event_fields"]
            )
            messages.success(request, _("Event created from the message."))
            return redirect("agenda:event_detail", event.pk)
        return render(request, "agenda/event_form.html", _form_context(form, None, message), status=422)
    default = services.calendar_default_ensure(user=request.user)
    sent = message.date.astimezone(tz)
    # The message's time, rounded down to the quarter hour, for one hour.
    start = sent.replace(minute=sent.minute - sent.minute % 15, second=0, microsecond=0)
    end = start + timedelta(hours=1)
    sender = message.from_name or message.from_address
    initial = {
        "calendar": default.pk,
        "title": (message.subject or _("(no subject)"))[:500],
        "start_date": start.date(),
        "start_time": start.time(),
        "end_date": end.date(),
        "end_time": end.time(),
        "interval": 1,
        "ends": "never",
        "description": _("From the PEC message “%(subject)s” of %(sender)s.")
        % {"subject": message.subject, "sender": sender},
    }
    form = EventForm(user=request.user, tz=tz, initial=initial)
    return render(request, "agenda/event_form.html", _form_context(form, None, message))


def _form_context(form: EventForm, event: Event | None, message: Any) -> dict[str, Any]:
    return {"tab": "agenda", "form": form, "event": event, "source_message": message}


def _chosen_occurrence(request: AuthenticatedHttpRequest, event: Event) -> tuple[datetime, datetime, str]:
    """The occurrence named by ``?at=`` (links from the period pages), or the first one."""
    viewer = tz_of(request)
    own = zone(event.time_zone)
    first_key = occurrence_key(event.start.astimezone(own), all_day=event.all_day)
    at = request.GET.get("at", "") if event.rrule else ""
    for key in (at, first_key) if at else (first_key,):
        try:
            if event.all_day:
                start = datetime.combine(date.fromisoformat(key), time(), tzinfo=viewer)
            else:
                start = datetime.fromisoformat(key).replace(tzinfo=own)
        except ValueError:
            continue
        for occurrence in occurrences(
            event, start - timedelta(seconds=1), start + timedelta(seconds=1), viewer_tz=viewer
        ):
            if occurrence.key == key:
                return occurrence.start, occurrence.end, occurrence.key
    # The first occurrence may itself be an exception: show the stored dates anyway.
    if event.all_day:
        first = event.start.astimezone(own).date()
        days = max((event.end.astimezone(own).date() - first).days, 1)
        start = datetime.combine(first, time(), tzinfo=viewer)
        return start, start + timedelta(days=days), first_key
    return event.start, event.end, first_key


@require_GET
@login_required
@with_user_time_zone
def event_detail(request: AuthenticatedHttpRequest, event_id: int) -> HttpResponse:
    event = selectors.event_get(user=request.user, event_id=event_id)
    tz = tz_of(request)
    start, end, key = _chosen_occurrence(request, event)
    first_day = start.astimezone(tz).date()
    last_day = (end - timedelta(days=1)).astimezone(tz).date() if event.all_day else end.astimezone(tz).date()
    context = {
        "tab": "agenda",
        "event": event,
        "occurrence_start": start,
        "occurrence_end": end,
        "occurrence_key": key,
        "first_day": first_day,
        "last_day": last_day,
        "rule_text": rule_text(event, tz),
        "safe_url": _safe_link(event.url),
        "back_url": month_url(start.astimezone(tz).date()),
        "day_url": day_url(start.astimezone(tz).date()),
    }
    return render(request, "agenda/event_detail.html", context)


@require_http_methods(["GET", "POST"])
@login_required
@with_user_time_zone
def event_edit(request: AuthenticatedHttpRequest, event_id: int) -> HttpResponse:
    event = selectors.event_get(user=request.user, event_id=event_id)
    tz = tz_of(request)
    if request.method == "POST":
        form = EventForm(request.POST, user=request.user, tz=tz, event=event)
        if form.is_valid():
            services.event_update(
                event=event, calendar=form.cleaned_data["calendar"], **form.cleaned_data["event_fields"]
            )
            messages.success(request, _("Event saved."))
            return redirect("agenda:event_detail", event.pk)
        return render(
            request, "agenda/event_form.html", _form_context(form, event, event.message), status=422
        )
    form = EventForm(user=request.user, tz=tz, event=event)
    return render(request, "agenda/event_form.html", _form_context(form, event, event.message))


@require_POST
@login_required
@with_user_time_zone
def event_delete(request: AuthenticatedHttpRequest, event_id: int) -> HttpResponse:
    event = selectors.event_get(user=request.user, event_id=event_id)
    back = month_url(event.start.astimezone(tz_of(request)).date())
    services.event_delete(event=event)
    messages.success(request, _("Event deleted."))
    return redirect(back)


@require_POST
@login_required
@with_user_time_zone
def event_skip(request: AuthenticatedHttpRequest, event_id: int) -> HttpResponse:
    """Delete one occurrence of a recurring event (adds an exception)."""
    event = selectors.event_get(user=request.user, event_id=event_id)
    key = request.POST.get("key", "")
    if not event.rrule or not key or len(key) > 32:
        messages.error(request, _("Only one occurrence of a repeating event can be skipped."))
        return redirect("agenda:event_detail", event.pk)
    try:
        services.event_occurrence_skip(event=event, key=key)
    except ValueError:
        messages.error(request, _("That occurrence does not exist."))
        return redirect("agenda:event_detail", event.pk)
    messages.success(request, _("This occurrence was deleted; the others stay."))
    return redirect(month_url(date.fromisoformat(key[:10])))


@require_GET
@login_required
def event_export(request: AuthenticatedHttpRequest, event_id: int) -> HttpResponse:
    event = selectors.event_get(user=request.user, event_id=event_id)
    return _ics_response(services.event_export(event=event), f"event-{event.pk}.ics")


def _ics_response(data: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_POST
@login_required
def reminder_dismiss(request: AuthenticatedHttpRequest, reminder_id: int) -> HttpResponse:
    reminder = selectors.reminder_get(user=request.user, reminder_id=reminder_id)
    services.reminder_dismiss(reminder=reminder)
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect(reverse("agenda:index"))
