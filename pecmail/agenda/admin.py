from django.contrib import admin

from .models import Calendar, CalendarSettings, Event, Reminder


@admin.register(CalendarSettings)
class CalendarSettingsAdmin(admin.ModelAdmin):
    list_display = ("user", "time_zone")
    search_fields = ("user__email",)


@admin.register(Calendar)
class CalendarAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "colour", "visible", "created_at")
    search_fields = ("name", "owner__email")
    # The subscription secret is shown to its owner only, in the app.
    exclude = ("feed_token",)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("title", "calendar", "start", "all_day", "rrule")
    search_fields = ("title", "uid", "calendar__owner__email")
    raw_id_fields = ("calendar", "message")


@admin.register(Reminder)
class ReminderAdmin(admin.ModelAdmin):
    list_display = ("event", "occurrence_start", "fire_at", "emailed_at", "dismissed")
    raw_id_fields = ("event",)
