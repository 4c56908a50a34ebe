"""The Calendar tab's views, split by area (pages, events, calendars and files)."""

from .calendars import (
    calendar_create,
    calendar_delete,
    calendar_edit,
    calendar_export,
    calendar_feed_regenerate,
    calendar_feed_revoke,
    calendar_list,
    calendar_toggle,
    feed,
    import_cancel,
    import_confirm,
    import_upload,
    settings_edit,
)
from .events import (
    create_from_message,
    event_create,
    event_delete,
    event_detail,
    event_edit,
    event_export,
    event_skip,
    reminder_dismiss,
)
from .pages import agenda_list, day, index, month, week

__all__ = [
    "agenda_list", "calendar_create", "calendar_delete", "calendar_edit", "calendar_export",
    "calendar_feed_regenerate", "calendar_feed_revoke", "calendar_list", "calendar_toggle", "create_from_message", "day",
    "event_create", "event_delete", "event_detail", "event_edit", "event_export", "event_skip", "feed",
    "import_cancel", "import_confirm", "import_upload", "index", "month", "reminder_dismiss",
    "settings_edit", "week",
]  # fmt: skip
