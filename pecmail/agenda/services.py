"""Writes of the Calendar tab: calendars, events, import/export, reminders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from pecmail.accounts.models import User
from pecmail.mail.models import Message

from . import ical
from .models import DEFAULT_TIME_ZONE, Calendar, CalendarSettings, Event, Reminder, new_feed_token
from .recurrence import occurrence_exists, occurrences, zone

logger = logging.getLogger(__name__)

# Longest reminder the form accepts: four weeks before.
MAX_REMINDER_MINUTES = 40320
# A reminder whose time passed while no sweep ran is still sent this long afterwards.
REMINDER_GRACE = timedelta(minutes=15)


def calendar_settings_update(*, user: User, time_zone: str) -> CalendarSettings:
    row, _created = CalendarSettings.objects.update_or_create(user=user, defaults={"time_zone": time_zone})
    return row


def calendar_default_ensure(*, user: User) -> Calendar:
    """The user's first calendar, created ("Calendar", blue) when they have none."""
    calendar = Calendar.objects.filter(owner=user).order_by("id").first()
    if calendar is None:
        calendar = Calendar.objects.create(owner=user, name=_("Calendar"), colour=Calendar.Colour.BLUE)
    return calendar


def calendar_create(*, owner: User, name: str, colour: str = Calendar.Colour.BLUE) -> Calendar:
    return Calendar.objects.create(owner=owner, name=name.strip(), colour=colour)


def calendar_update(*, calendar: Calendar, name: str, colour: str) -> Calendar:
    calendar.name = name.strip()
    calendar.colour = colour
    calendar.save(update_fields=["name", "colour"])
    return calendar


def calendar_visibility_set(*, calendar: Calendar, visible: bool) -> Calendar:
    calendar.visible = visible
    calendar.save(update_fields=["visible"])
    return calendar


def calendar_delete(*, calendar: Calendar) -> None:
    calendar.delete()


def calendar_feed_regenerate(*, calendar: Calendar) -> str:
    """A new secret for the subscription URL; the old URL stops working at once."""
    calendar.feed_token = new_feed_token()
    calendar.save(update_fields=["feed_token"])
    return calendar.feed_token


def calendar_feed_revoke(*, calendar: Calendar) -> None:
    calendar.feed_token = ""
    calendar.save(update_fields=["feed_token"])


EVENT_FIELDS = (
    "title", "description", "location", "url", "all_day", "start", "end",
    "time_zone", "rrule", "exdates", "reminder_minutes",
)  # fmt: skip


def event_create(*, calendar: Calendar, message: Message | None = None, **fields: object) -> Event:
    """A new event in ``calendar``; ``fields`` are Event fields (see EVENT_FIELDS)."""
    unknown = set(fields) - set(EVENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown event fields: {sorted(unknown)}")
    return Event.objects.create(calendar=calendar, message=message, **fields)


def event_update(*, event: Event, calendar: Calendar, **fields: object) -> Event:
    unknown = set(fields) - set(EVENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown event fields: {sorted(unknown)}")
    # A changed start or rule makes the old exceptions meaningless: they named occurrences by time.
    if event.rrule and (fields.get("rrule") != event.rrule or fields.get("start") != event.start):
        fields.setdefault("exdates", [])
    for name, value in fields.items():
        setattr(event, name, value)
    if event.calendar_id != calendar.pk:
        # Another calendar may already hold an event with this UID (an earlier import).
        if Event.objects.filter(calendar=calendar, uid=event.uid).exists():
            event.uid = Event._meta.get_field("uid").get_default()
        event.calendar = calendar
    event.save()
    return event


def event_delete(*, event: Event) -> None:
    event.delete()


def event_occurrence_skip(*, event: Event, key: str) -> Event:
    """Leave out one occurrence of a recurring event (an EXDATE); ValueError if there is no such occurrence."""
    if not occurrence_exists(event, key):
        raise ValueError(f"{key!r} is not an occurrence of event {event.pk}")
    if key not in event.exdates:
        event.exdates = sorted([*event.exdates, key])
        event.save(update_fields=["exdates", "updated_at"])
    return event


def _event_data(event: Event) -> ical.EventData:
    return ical.EventData(
        uid=event.uid,
        title=event.title,
        start=event.start,
        end=event.end,
        all_day=event.all_day,
        time_zone=event.time_zone,
        description=event.description,
        location=event.location,
        url=event.url,
        rrule=event.rrule,
        exdates=list(event.exdates),
        reminder_minutes=event.reminder_minutes,
    )


def calendar_export(*, calendar: Calendar) -> bytes:
    events = Event.objects.filter(calendar=calendar).order_by("start", "id")
    return ical.calendar_build(name=calendar.name, events=[_event_data(e) for e in events])


def event_export(*, event: Event) -> bytes:
    return ical.calendar_build(name=event.calendar.name, events=[_event_data(event)])


@dataclass
class ImportReport:
    calendar: Calendar
    created: int
    updated: int
    skipped: int


def calendar_import(
    *, user: User, data: bytes, calendar: Calendar | None = None, new_name: str = "", colour: str = ""
) -> ImportReport:
    """Import an .ics file into ``calendar`` or, when None, into a new calendar.

    All or nothing: the events are written in one transaction. An event whose UID is already in
    the calendar is updated rather than duplicated, so importing the same file twice is harmless.
    Raises ical.IcsError when the file as a whole is unusable.
    """
    default_tz = user_time_zone_name(user=user)
    parsed = ical.calendar_parse(data, default_tz=default_tz)
    with transaction.atomic():
        if calendar is None:
            name = new_name.strip() or parsed.name or _("Imported calendar")
            calendar = Calendar.objects.create(
                owner=user, name=name[:200], colour=colour or Calendar.Colour.GREEN
            )
        existing = {
            e.uid: e for e in Event.objects.filter(calendar=calendar, uid__in=[p.uid for p in parsed.events])
        }
        created = updated = 0
        for item in parsed.events:
            fields = {name: getattr(item, name) for name in EVENT_FIELDS}
            if item.uid in existing:
                event = existing[item.uid]
                for name, value in fields.items():
                    setattr(event, name, value)
                event.save()
                updated += 1
            else:
                Event.objects.create(calendar=calendar, uid=item.uid, **fields)
                created += 1
    return ImportReport(calendar=calendar, created=created, updated=updated, skipped=len(parsed.skipped))


def user_time_zone_name(*, user: User) -> str:
    row = CalendarSettings.objects.filter(user=user).only("time_zone").first()
    return row.time_zone if row else DEFAULT_TIME_ZONE


def reminder_dismiss(*, reminder: Reminder) -> None:
    Reminder.objects.filter(pk=reminder.pk).update(dismissed=True)


def _reminder_claim(*, event: Event, occurrence_start: datetime, fire_at: datetime) -> Reminder | None:
    """Insert the reminder row; None when another sweep already did (the unique row is the claim)."""
    try:
        with transaction.atomic():
            return Reminder.objects.create(event=event, occurrence_start=occurrence_start, fire_at=fire_at)
    except IntegrityError:
        return None


def _reminder_email(reminder: Reminder) -> None:
    event = reminder.event
    user = event.calendar.owner
    tz = zone(user_time_zone_name(user=user))
    # The e-mail is written in the site language; users have no stored language yet.
    with translation.override(settings.LANGUAGE_CODE), timezone.override(tz):
        local = timezone.localtime(reminder.occurrence_start)
        when = date_format(local, "l j F Y") if event.all_day else date_format(local, "l j F Y, H:i")
        subject = _("Reminder: %(title)s, %(when)s") % {"title": event.title, "when": when}
        lines = [subject, ""]
        if event.location:
            lines.append(_("Location: %(location)s") % {"location": event.location})
        if event.description:
            lines += ["", event.description]
        lines += ["", _("Calendar: %(name)s") % {"name": event.calendar.name}]
    # Plain text only: the event's fields come from users and files and must not become HTML.
    EmailMessage(
        subject=subject.replace("\r", " ").replace("\n", " ")[:250],
        body="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    ).send()


def reminders_send(*, now: datetime | None = None) -> int:
    """Send every reminder that is due now, each exactly once; returns how many were sent.

    An occurrence is due when its reminder time has passed and either it has not started yet
    or the reminder time is less than REMINDER_GRACE ago (so a sweep that was down for a few
    minutes catches up, but a new event is not reminded of years of past occurrences).
    """
    now = now or timezone.now()
    window_start = now - REMINDER_GRACE
    window_end = now + timedelta(minutes=MAX_REMINDER_MINUTES)
    candidates = (
        Event.objects.filter(reminder_minutes__isnull=False, start__lt=window_end)
        .filter(~Q(rrule="") | Q(end__gte=window_start) | Q(start__gte=window_start))
        .select_related("calendar", "calendar__owner")
    )
    sent = 0
    owner_zones: dict[int, ZoneInfo] = {}
    for event in candidates:
        lead = timedelta(minutes=event.reminder_minutes or 0)
        owner_id = event.calendar.owner_id
        if owner_id not in owner_zones:
            owner_zones[owner_id] = zone(user_time_zone_name(user=event.calendar.owner))
        # An all-day event starts at midnight where its owner is.
        window_end_for = now + lead + timedelta(seconds=1)
        for occurrence in occurrences(event, window_start, window_end_for, viewer_tz=owner_zones[owner_id]):
            fire_at = occurrence.start - lead
            if fire_at > now:
                continue
            if occurrence.start <= now and fire_at < window_start:
                continue
            reminder = _reminder_claim(event=event, occurrence_start=occurrence.start, fire_at=fire_at)
            if reminder is None:
                continue
            try:
                _reminder_email(reminder)
            except Exception:
                # The in-app reminder stands; a mail server outage must not stop the other reminders.
                logger.exception("reminder e-mail for event %s failed", event.pk)
                continue
            Reminder.objects.filter(pk=reminder.pk).update(emailed_at=timezone.now())
            sent += 1
    return sent
