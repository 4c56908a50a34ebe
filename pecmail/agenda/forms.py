"""Forms of the Calendar tab."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, available_timezones

from django import forms
from django.utils.translation import gettext_lazy as _

from pecmail.accounts.models import User

from .ical import MAX_ICS_BYTES, MAX_YEAR, MIN_YEAR
from .models import Calendar, Event
from .recurrence import RecurrenceError, describe, rrule_build, zone
from .services import MAX_REMINDER_MINUTES


def time_zone_choices() -> list[tuple[str, str]]:
    return [
        (name, name.replace("_", " "))
        for name in sorted(available_timezones())
        if "/" in name or name == "UTC"
    ]


class SettingsForm(forms.Form):
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices)


class CalendarForm(forms.ModelForm):
    class Meta:
        model = Calendar
        fields = ["name", "colour"]
        labels = {"name": _("Name"), "colour": _("Colour")}
        widgets = {"colour": forms.RadioSelect}

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Give the calendar a name."))
        return name


WEEKDAY_CHOICES = [
    ("MO", _("Monday")),
    ("TU", _("Tuesday")),
    ("WE", _("Wednesday")),
    ("TH", _("Thursday")),
    ("FR", _("Friday")),
    ("SA", _("Saturday")),
    ("SU", _("Sunday")),
]


class EventForm(forms.Form):
    """The event editor: dates and times are wall-clock values in ``tz``."""

    ENDS_CHOICES = [("never", _("Never")), ("until", _("On a date")), ("count", _("After a number of times"))]

    title = forms.CharField(label=_("Title"), max_length=500)
    calendar = forms.ModelChoiceField(label=_("Calendar"), queryset=Calendar.objects.none(), empty_label=None)
    all_day = forms.BooleanField(label=_("All day"), required=False)
    # <input type=date> only takes ISO dates: without the format, the Italian locale's
    # dd/mm/yyyy would leave the fields blank when editing an event.
    start_date = forms.DateField(
        label=_("Start date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    start_time = forms.TimeField(
        label=_("Start time"), required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    end_date = forms.DateField(
        label=_("End date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    end_time = forms.TimeField(
        label=_("End time"), required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    location = forms.CharField(label=_("Location"), max_length=500, required=False)
    url = forms.CharField(
        label=_("Link"), max_length=2000, required=False, help_text=_("An http:// or https:// address.")
    )
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    repeat = forms.ChoiceField(label=_("Repeat"), choices=Event.Frequency.choices, required=False)
    weekdays = forms.MultipleChoiceField(
        label=_("On these days (weekly)"),
        choices=WEEKDAY_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: the weekday of the start date."),
    )
    interval = forms.IntegerField(label=_("Every"), min_value=1, max_value=999, initial=1, required=False)
    ends = forms.ChoiceField(label=_("Ends"), choices=ENDS_CHOICES, initial="never", required=False)
    until = forms.DateField(
        label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    count = forms.IntegerField(label=_("Number of times"), min_value=1, max_value=1000, required=False)
    reminder_minutes = forms.IntegerField(
        label=_("Reminder (minutes before)"),
        min_value=0,
        max_value=MAX_REMINDER_MINUTES,
        required=False,
        help_text=_("Leave empty for no reminder; 0 reminds at the start."),
    )

    def __init__(
        self, *args: Any, user: User, tz: ZoneInfo, event: Event | None = None, **kwargs: Any
    ) -> None:
        self.tz = tz
        self.event = event
        if event is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(event, tz)
        super().__init__(*args, **kwargs)
        self.fields["calendar"].queryset = Calendar.objects.filter(owner=user).order_by("name", "id")

    @staticmethod
    def initial_for(event: Event, tz: ZoneInfo) -> dict[str, Any]:
        # All-day events float: their dates are those of the zone they were made in.
        shown_in = zone(event.time_zone) if event.all_day else tz
        start = event.start.astimezone(shown_in)
        end = event.end.astimezone(shown_in)
        if event.all_day:
            # Stored end is the exclusive midnight; the form shows the last day.
            end = end - timedelta(days=1)
        rule = describe(event.rrule)
        until = rule["until"]
        if isinstance(until, datetime):
            until = until.astimezone(tz).date() if until.tzinfo else until.date()
        return {
            "title": event.title,
            "calendar": event.calendar_id,
            "all_day": event.all_day,
            "start_date": start.date(),
            "start_time": None if event.all_day else start.time(),
            "end_date": end.date(),
            "end_time": None if event.all_day else end.time(),
            "location": event.location,
            "url": event.url,
            "description": event.description,
            "repeat": rule["freq"],
            "weekdays": rule["weekdays"] if rule["freq"] == "WEEKLY" else [],
            "interval": rule["interval"],
            "ends": "until" if until else ("count" if rule["count"] else "never"),
            "until": until,
            "count": rule["count"],
            "reminder_minutes": event.reminder_minutes,
        }

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        if url and urlsplit(url).scheme.lower() not in ("http", "https"):
            raise forms.ValidationError(_("Only http:// and https:// links are allowed."))
        return url

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        all_day = data.get("all_day", False)
        start_date: date = data["start_date"]
        end_date: date = data["end_date"]
        for name, value in (("start_date", start_date), ("end_date", end_date)):
            if not MIN_YEAR <= value.year <= MAX_YEAR:
                self.add_error(
                    name, _("Choose a date between %(min)d and %(max)d.") % {"min": MIN_YEAR, "max": MAX_YEAR}
                )
                return data
        if all_day:
            start = datetime.combine(start_date, time(), tzinfo=self.tz)
            if end_date < start_date:
                self.add_error("end_date", _("The event cannot end before it starts."))
                return data
            end = datetime.combine(end_date + timedelta(days=1), time(), tzinfo=self.tz)
        else:
            if data.get("start_time") is None:
                self.add_error("start_time", _("Give a start time, or tick “All day”."))
                return data
            end_time = data.get("end_time") or data["start_time"]
            start = datetime.combine(start_date, data["start_time"], tzinfo=self.tz)
            end = datetime.combine(end_date, end_time, tzinfo=self.tz)
            if end < start:
                self.add_error("end_time", _("The event cannot end before it starts."))
                return data
        rrule = ""
        freq = data.get("repeat") or ""
        if freq:
            ends = data.get("ends") or "never"
            until = data.get("until") if ends == "until" else None
            count = data.get("count") if ends == "count" else None
            if ends == "until" and until is None:
                self.add_error("until", _("Give the last date."))
                return data
            if ends == "count" and not count:
                self.add_error("count", _("Give the number of times."))
                return data
            if until is not None and until < start_date:
                self.add_error("until", _("The last date is before the start."))
                return data
            try:
                rrule = rrule_build(
                    freq=freq,
                    interval=data.get("interval") or 1,
                    until=until,
                    count=count,
                    all_day=all_day,
                    tz=self.tz,
                    base=self.event.rrule if self.event else "",
                    weekdays=data.get("weekdays") or [],
                )
            except RecurrenceError as exc:
                self.add_error("repeat", str(exc))
                return data
        data["event_fields"] = {
            "title": data["title"].strip(),
            "description": data.get("description", ""),
            "location": data.get("location", "").strip(),
            "url": data.get("url", ""),
            "all_day": all_day,
            # Stored in UTC; the wall clock is kept by time_zone.
            "start": start.astimezone(UTC),
            "end": end.astimezone(UTC),
            "time_zone": self.tz.key,
            "rrule": rrule,
            "reminder_minutes": data.get("reminder_minutes"),
        }
        return data


class ImportForm(forms.Form):
    """Step one of an import: the file and where it goes."""

    NEW = "new"

    file = forms.FileField(label=_("iCalendar file (.ics)"))
    target = forms.ChoiceField(label=_("Import into"))
    new_name = forms.CharField(
        label=_("Name of the new calendar"),
        max_length=200,
        required=False,
        help_text=_("Empty: the name in the file."),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(self.NEW, _("A new calendar"))]
        choices += [(str(c.pk), c.name) for c in Calendar.objects.filter(owner=user).order_by("name", "id")]
        self.fields["target"].choices = choices

    def clean_file(self) -> bytes:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_ICS_BYTES:
            raise forms.ValidationError(_("The file is larger than 2 MiB."))
        return upload.read(MAX_ICS_BYTES + 1)
