"""The Calendar tab's store: per-user settings, calendars, events and fired reminders."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

DEFAULT_TIME_ZONE = "Europe/Rome"


def new_feed_token() -> str:
    return secrets.token_urlsafe(32)


def new_uid() -> str:
    return f"{uuid.uuid4()}@pecmail"


class CalendarSettings(models.Model):
    """One row per user: the time zone every calendar page is shown in."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_settings"
    )
    time_zone = models.CharField(_("time zone"), max_length=64, default=DEFAULT_TIME_ZONE)

    class Meta:
        verbose_name = _("calendar settings")
        verbose_name_plural = _("calendar settings")

    def __str__(self) -> str:
        return f"{self.user}: {self.time_zone}"


class Calendar(models.Model):
    """A named, coloured set of events owned by one user."""

    # A fixed palette: colours are CSS classes (agenda-colour--<value>) because CSP forbids inline styles.
    class Colour(models.TextChoices):
        BLUE = "blue", _("Blue")
        GREEN = "green", _("Green")
        RED = "red", _("Red")
        ORANGE = "orange", _("Orange")
        PURPLE = "purple", _("Purple")
        TEAL = "teal", _("Teal")
        PINK = "pink", _("Pink")
        GREY = "grey", _("Grey")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendars")
    name = models.CharField(_("name"), max_length=200)
    colour = models.CharField(_("colour"), max_length=10, choices=Colour.choices, default=Colour.BLUE)
    # Hidden calendars stay out of the period pages; their reminders, exports and feeds go on.
    visible = models.BooleanField(_("shown"), default=True)
    # The private subscription URL's secret; empty when the user revoked it.
    feed_token = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("calendar")
        verbose_name_plural = _("calendars")
        constraints = [
            models.UniqueConstraint(
                fields=["feed_token"],
                condition=~models.Q(feed_token=""),
                name="agenda_calendar_unique_feed_token",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    """One event, possibly recurring.

    ``start``/``end`` are aware datetimes of the first occurrence. ``time_zone`` is the zone the
    wall-clock times belong to: recurrences are expanded there, so a weekly 09:00 event stays at
    09:00 local across a daylight-saving change. An all-day event starts at local midnight and
    ends at the (exclusive) local midnight after its last day.
    """

    class Frequency(models.TextChoices):
        NONE = "", _("Does not repeat")
        DAILY = "DAILY", _("Daily")
        WEEKLY = "WEEKLY", _("Weekly")
        MONTHLY = "MONTHLY", _("Monthly")
        YEARLY = "YEARLY", _("Yearly")

    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="events")
    uid = models.CharField(max_length=255, default=new_uid)
    title = models.CharField(_("title"), max_length=500)
    description = models.TextField(_("description"), blank=True)
    location = models.CharField(_("location"), max_length=500, blank=True)
    url = models.CharField(_("link"), max_length=2000, blank=True)
    all_day = models.BooleanField(_("all day"), default=False)
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    time_zone = models.CharField(_("time zone"), max_length=64, default=DEFAULT_TIME_ZONE)
    # The RRULE value as in iCalendar ("FREQ=WEEKLY;INTERVAL=1;UNTIL=20270101T000000Z"), empty if none.
    rrule = models.CharField(_("recurrence rule"), max_length=1000, blank=True)
    # Excluded occurrences as local wall-clock ISO strings ("2026-03-30T09:00:00" or "2026-03-30").
    exdates = models.JSONField(default=list, blank=True)
    reminder_minutes = models.PositiveIntegerField(_("reminder (minutes before)"), null=True, blank=True)
    message = models.ForeignKey(
        "mail.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="agenda_events"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["start", "id"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [
            models.UniqueConstraint(fields=["calendar", "uid"], name="agenda_event_unique_uid"),
        ]
        indexes = [models.Index(fields=["calendar", "start"], name="agenda_event_cal_start")]

    def __str__(self) -> str:
        return self.title

    @property
    def frequency(self) -> str:
        for part in self.rrule.split(";"):
            if part.upper().startswith("FREQ="):
                return part.split("=", 1)[1].upper()
        return ""


class Reminder(models.Model):
    """A reminder that fired for one occurrence of an event.

    The unique (event, occurrence_start) row is the claim: whoever inserts it sends the e-mail,
    so a sweep that runs twice (or two beats) sends each reminder exactly once.
    """

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="reminders")
    occurrence_start = models.DateTimeField()
    fire_at = models.DateTimeField()
    emailed_at = models.DateTimeField(null=True, blank=True)
    dismissed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-fire_at", "-id"]
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        constraints = [
            models.UniqueConstraint(fields=["event", "occurrence_start"], name="agenda_reminder_once"),
        ]

    def __str__(self) -> str:
        return f"{self.event}: {self.occurrence_start}"
