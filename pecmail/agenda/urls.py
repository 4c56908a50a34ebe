from django.urls import path

from . import views

app_name = "agenda"

urlpatterns = [
    path("", views.index, name="index"),
    path("month/<int:year>/<int:month>/", views.month, name="month"),
    path("week/<int:year>/<int:month>/<int:day>/", views.week, name="week"),
    path("day/<int:year>/<int:month>/<int:day>/", views.day, name="day"),
    path("list/", views.agenda_list, name="list"),
    path("events/new/", views.event_create, name="event_create"),
    path("events/<int:event_id>/", views.event_detail, name="event_detail"),
    path("events/<int:event_id>/edit/", views.event_edit, name="event_edit"),
    path("events/<int:event_id>/delete/", views.event_delete, name="event_delete"),
    path("events/<int:event_id>/skip/", views.event_skip, name="event_skip"),
    path("events/<int:event_id>/export.ics", views.event_export, name="event_export"),
    path("from-message/<int:message_id>/", views.create_from_message, name="create_from_message"),
    path("calendars/", views.calendar_list, name="calendars"),
    path("calendars/new/", views.calendar_create, name="calendar_create"),
    path("calendars/<int:calendar_id>/edit/", views.calendar_edit, name="calendar_edit"),
    path("calendars/<int:calendar_id>/toggle/", views.calendar_toggle, name="calendar_toggle"),
    path("calendars/<int:calendar_id>/delete/", views.calendar_delete, name="calendar_delete"),
    path("calendars/<int:calendar_id>/export.ics", views.calendar_export, name="calendar_export"),
    path(
        "calendars/<int:calendar_id>/feed/regenerate/",
        views.calendar_feed_regenerate,
        name="calendar_feed_regenerate",
    ),
    path("calendars/<int:calendar_id>/feed/revoke/", views.calendar_feed_revoke, name="calendar_feed_revoke"),
    path("feed/<str:token>.ics", views.feed, name="feed"),
    path("import/", views.import_upload, name="import"),
    path("import/confirm/", views.import_confirm, name="import_confirm"),
    path("import/cancel/", views.import_cancel, name="import_cancel"),
    path("settings/", views.settings_edit, name="settings"),
    path("reminders/<int:reminder_id>/dismiss/", views.reminder_dismiss, name="reminder_dismiss"),
]
