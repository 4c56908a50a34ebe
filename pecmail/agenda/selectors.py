"""Permission-scoped reads of the Calendar tab: another user's objects are a 404."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet
from django.http import Http404

from pecmail.accounts.models import User
from pecmail.mail.models import Message

from .models import DEFAULT_TIME_ZONE, Calendar, CalendarSettings, Event, Reminder
from .recurrence import Occurrence, occurrences, zone


def user_time_zone(*, user: User) -> ZoneInfo:
    """The zone the user's calendar pages are shown in (Europe/Rome until they choose)."""
    row = CalendarSettings.objects.filter(user=user).only("time_zone").first()
    return zone(row.time_zone if row else DEFAULT_TIME_ZONE)


def calendar_list(*, user: User) -> QuerySet[Calendar]:
    return Calendar.objects.filter(owner=user).order_by("name", "id")


def calendar_get(*, user: User, calendar_id: int) -> Calendar:
    try:
        return Calendar.objects.get(pk=calendar_id, owner=user)
    except (Calendar.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def calendar_by_feed_token(*, token: str) -> Calendar:
    """The calendar a subscription URL names; 404 for a wrong, empty or revoked token."""
    if not token or len(token) > 64:
        raise Http404
    try:
        return Calendar.objects.get(feed_token=token)
    except Calendar.DoesNotExist:
        raise Http404 from None


def event_get(*, user: User, event_id: int) -> Event:
    try:
        return Event.objects.select_related("calendar", "message").get(pk=event_id, calendar__owner=user)
    except (Event.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def event_list(*, calendar: Calendar) -> QuerySet[Event]:
    return Event.objects.filter(calendar=calendar).order_by("start", "id")


def occurrence_list(
    *, user: User, start: datetime, end: datetime, tz: ZoneInfo | None = None, visible_only: bool = True
) -> list[Occurrence]:
    """Every occurrence of the user's events overlapping [start, end), all-day first, then by start."""
    events = Event.objects.filter(calendar__owner=user).select_related("calendar")
    if visible_only:
        events = events.filter(calendar__visible=True)
    # One-off events are filtered by the database; recurring ones must be expanded.
    events = events.filter(
        (Q(rrule="") & Q(start__lt=end) & (Q(end__gt=start) | Q(start__gte=start)))
        | (~Q(rrule="") & Q(start__lt=end))
    )
    found: list[Occurrence] = []
    for event in events:
        found.extend(occurrences(event, start, end, viewer_tz=tz))
    found.sort(key=lambda o: (not o.all_day, o.start, o.event.title.lower(), o.event.pk))
    return found


def event_search(*, user: User, query: str, limit: int = 20) -> list[Event]:
    """The user's events whose title, location or description contain ``query``, newest first."""
    query = query.strip()
    if not query:
        return []
    return list(
        Event.objects.filter(calendar__owner=user)
        .filter(Q(title__icontains=query) | Q(location__icontains=query) | Q(description__icontains=query))
        .select_related("calendar")
        .order_by("-start", "-id")[:limit]
    )


def reminder_list(*, user: User, limit: int = 20) -> list[Reminder]:
    """Reminders that fired and were not dismissed, newest first."""
    return list(
        Reminder.objects.filter(event__calendar__owner=user, dismissed=False)
        .select_related("event", "event__calendar")
        .order_by("-fire_at", "-id")[:limit]
    )


def reminder_get(*, user: User, reminder_id: int) -> Reminder:
    try:
        return Reminder.objects.select_related("event").get(pk=reminder_id, event__calendar__owner=user)
    except (Reminder.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def message_get(*, user: User, message_id: int) -> Message:
    """A PEC message of one of the user's mailboxes, for "create event from message"."""
    try:
        return Message.objects.select_related("mailbox").get(pk=message_id, mailbox__owner=user)
    except (Message.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
