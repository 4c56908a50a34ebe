"""Calendars, their subscription URLs, import/export of .ics files and the time-zone setting."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pecmail.lib.http import AuthenticatedHttpRequest

from .. import ical, selectors, services
from ..forms import CalendarForm, ImportForm, SettingsForm
from ..models import Calendar
from ._common import with_user_time_zone

IMPORT_SESSION_KEY = "agenda_import"
PREVIEW_ROWS = 200


def _calendars_context(request: AuthenticatedHttpRequest, form: CalendarForm | None = None) -> dict[str, Any]:
    calendars = list(selectors.calendar_list(user=request.user))
    for calendar in calendars:
        calendar.feed_url = (
            request.build_absolute_uri(reverse("agenda:feed", args=[calendar.feed_token]))
            if calendar.feed_token
            else ""
        )
        calendar.event_count = calendar.events.count()
    return {"tab": "agenda", "calendars": calendars, "form": form or CalendarForm()}


@require_GET
@login_required
def calendar_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    services.calendar_default_ensure(user=request.user)
    return render(request, "agenda/calendars.html", _calendars_context(request))


@require_POST
@login_required
def calendar_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = CalendarForm(request.POST)
    if not form.is_valid():
        return render(request, "agenda/calendars.html", _calendars_context(request, form), status=422)
    services.calendar_create(
        owner=request.user, name=form.cleaned_data["name"], colour=form.cleaned_data["colour"]
    )
    messages.success(request, _("Calendar created."))
    return redirect("agenda:calendars")


@require_http_methods(["GET", "POST"])
@login_required
def calendar_edit(request: AuthenticatedHttpRequest, calendar_id: int) -> HttpResponse:
    calendar = selectors.calendar_get(user=request.user, calendar_id=calendar_id)
    if request.method == "POST":
        form = CalendarForm(request.POST, instance=Calendar(name=calendar.name, colour=calendar.colour))
        if form.is_valid():
            services.calendar_update(
                calendar=calendar, name=form.cleaned_data["name"], colour=form.cleaned_data["colour"]
            )
            messages.success(request, _("Calendar saved."))
            return redirect("agenda:calendars")
        status = 422
    else:
        form = CalendarForm(instance=calendar)
        status = 200
    return render(
        request,
        "agenda/calendar_form.html",
        {"tab": "agenda", "form": form, "calendar": calendar},
        status=status,
    )


@require_POST
@login_required
def calendar_toggle(request: AuthenticatedHttpRequest, calendar_id: int) -> HttpResponse:
    """Show or hide a calendar's events on the period pages."""
    calendar = selectors.calendar_get(user=request.user, calendar_id=calendar_id)
    services.calendar_visibility_set(calendar=calendar, visible=not calendar.visible)
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect("agenda:index")


@require_POST
@login_required
def calendar_delete(request: AuthenticatedHttpRequest, calendar_id: int) -> HttpResponse:
    calendar = selectors.calendar_get(user=request.user, calendar_id=calendar_id)
    services.calendar_delete(calendar=calendar)
    messages.success(request, _("Calendar “%(name)s” deleted with its events.") % {"name": calendar.name})
    return redirect("agenda:calendars")


@require_GET
@login_required
def calendar_export(request: AuthenticatedHttpRequest, calendar_id: int) -> HttpResponse:
    calendar = selectors.calendar_get(user=request.user, calendar_id=calendar_id)
    return _ics_download(services.calendar_export(calendar=calendar), f"calendar-{calendar.pk}.ics")


@require_POST
@login_required
def calendar_feed_regenerate(request: AuthenticatedHttpRequest, calendar_id: int) -> HttpResponse:
    calendar = selectors.calendar_get(user=request.user, calendar_id=calendar_id)
    services.calendar_feed_regenerate(calendar=calendar)
    messages.success(request, _("New subscription address created; the previous one no longer works."))
    return redirect("agenda:calendars")


@require_POST
@login_required
def calendar_feed_revoke(request: AuthenticatedHttpRequest, calendar_id: int) -> HttpResponse:
    calendar = selectors.calendar_get(user=request.user, calendar_id=calendar_id)
    services.calendar_feed_revoke(calendar=calendar)
    messages.success(request, _("Subscription address revoked."))
    return redirect("agenda:calendars")


@require_GET
def feed(request: HttpRequest, token: str) -> HttpResponse:
    """The read-only subscription: no login, the secret token is the key."""
    calendar = selectors.calendar_by_feed_token(token=token)
    response = HttpResponse(
        services.calendar_export(calendar=calendar), content_type="text/calendar; charset=utf-8"
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


def _ics_download(data: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_http_methods(["GET", "POST"])
@login_required
@with_user_time_zone
def import_upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Step one: read the file and show what it holds; nothing is written yet."""
    if request.method != "POST":
        return render(request, "agenda/import.html", {"tab": "agenda", "form": ImportForm(user=request.user)})
    form = ImportForm(request.POST, request.FILES, user=request.user)
    if not form.is_valid():
        return render(request, "agenda/import.html", {"tab": "agenda", "form": form}, status=422)
    data: bytes = form.cleaned_data["file"]
    try:
        parsed = ical.calendar_parse(data, default_tz=request.agenda_tz.key)  # type: ignore[attr-defined]
    except ical.IcsError as exc:
        form.add_error("file", str(exc))
        return render(request, "agenda/import.html", {"tab": "agenda", "form": form}, status=422)
    target = form.cleaned_data["target"]
    target_calendar = (
        None if target == ImportForm.NEW else selectors.calendar_get(user=request.user, calendar_id=target)
    )
    # The file waits in the session (server-side) until the user confirms; it is at most 2 MiB of text.
    request.session[IMPORT_SESSION_KEY] = {
        "data": data.decode("utf-8"),
        "target": target,
        "new_name": form.cleaned_data["new_name"],
    }
    context = {
        "tab": "agenda",
        "parsed": parsed,
        "rows": parsed.events[:PREVIEW_ROWS],
        "more": max(len(parsed.events) - PREVIEW_ROWS, 0),
        "target_calendar": target_calendar,
        "new_name": form.cleaned_data["new_name"] or parsed.name,
    }
    return render(request, "agenda/import_preview.html", context)


@require_POST
@login_required
def import_confirm(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Step two: write every readable event of the previewed file, in one transaction."""
    pending = request.session.get(IMPORT_SESSION_KEY)
    if not pending:
        messages.error(request, _("There is no file waiting to be imported; choose it again."))
        return redirect("agenda:import")
    calendar = None
    if pending["target"] != ImportForm.NEW:
        calendar = selectors.calendar_get(user=request.user, calendar_id=pending["target"])
    try:
        report = services.calendar_import(
            user=request.user,
            data=pending["data"].encode("utf-8"),
            calendar=calendar,
            new_name=pending["new_name"],
        )
    except ical.IcsError as exc:
        del request.session[IMPORT_SESSION_KEY]
        messages.error(request, str(exc))
        return redirect("agenda:import")
    del request.session[IMPORT_SESSION_KEY]
    messages.success(
        request,
        _("Imported into “%(name)s”: %(created)d new, %(updated)d updated, %(skipped)d skipped.")
        % {
            "name": report.calendar.name,
            "created": report.created,
            "updated": report.updated,
            "skipped": report.skipped,
        },
    )
    return redirect("agenda:calendars")


@require_POST
@login_required
def import_cancel(request: AuthenticatedHttpRequest) -> HttpResponse:
    request.session.pop(IMPORT_SESSION_KEY, None)
    messages.info(request, _("Import cancelled: nothing was imported."))
    return redirect("agenda:import")


@require_http_methods(["GET", "POST"])
@login_required
@with_user_time_zone
def settings_edit(request: AuthenticatedHttpRequest) -> HttpResponse:
    current = request.agenda_tz.key  # type: ignore[attr-defined]
    if request.method == "POST":
        form = SettingsForm(request.POST)
        if form.is_valid():
            services.calendar_settings_update(user=request.user, time_zone=form.cleaned_data["time_zone"])
            messages.success(request, _("Time zone saved."))
            return redirect("agenda:index")
        return render(request, "agenda/settings.html", {"tab": "agenda", "form": form}, status=422)
    form = SettingsForm(initial={"time_zone": current})
    return render(request, "agenda/settings.html", {"tab": "agenda", "form": form})
