"""iCalendar VTODO for tasks: bytes in, records out, and back. No ORM here.

A *record* is a JSON-serialisable dict (see ``empty_record``) so that a parsed file can
wait in the session between the preview and the confirmation. Dates are ISO strings;
``due_time`` is wall-clock time in the user's zone.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from django.utils.translation import gettext as _

PRODID = "-//pecmail//Tasks//EN"
STATUS_TO_ICS = {"needs-action": "NEEDS-ACTION", "in-process": "IN-PROCESS", "completed": "COMPLETED"}
MAX_TITLE = 500
MAX_NOTES = 20000

Record = dict[str, Any]


class FormatError(ValueError):
    """The file as a whole cannot be read: nothing in it is imported."""


@dataclass
class Parsed:
    records: list[Record] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def empty_record() -> Record:
    return {
        "uid": "",
        "title": "",
        "notes": "",
        "due_date": None,
        "due_time": None,
        "priority": 5,
        "status": "needs-action",
        "completed_at": None,
        "list": "",
    }


def priority_from_ics(value: Any) -> int:
    """RFC 5545: 1–4 high, 5 (or 0, undefined) normal, 6–9 low."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 5
    if 1 <= number <= 4:
        return 1
    if 6 <= number <= 9:
        return 9
    return 5


def _utc(value: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    if value.tzinfo is None:
        # A floating time is the user's wall-clock time.
        value = value.replace(tzinfo=zone)
    return value.astimezone(dt.UTC)


def _text(component: Any, name: str) -> str:
    value = component.get(name)
    if value is None:
        return ""
    if isinstance(value, list):
        value = value[0]
    return str(value)


def _todo_to_record(todo: Any, zone: ZoneInfo) -> Record:
    record = empty_record()
    record["uid"] = _text(todo, "UID").strip()[:255] or f"{uuid.uuid4()}@pecmail"
    record["title"] = " ".join(_text(todo, "SUMMARY").split())[:MAX_TITLE]
    record["notes"] = _text(todo, "DESCRIPTION").strip()[:MAX_NOTES]
    due = todo.get("DUE")
    if due is not None:
        value = due.dt
        if isinstance(value, dt.datetime):
            local = _utc(value, zone).astimezone(zone)
            record["due_date"] = local.date().isoformat()
            record["due_time"] = local.time().replace(microsecond=0).isoformat()
        else:
            record["due_date"] = value.isoformat()
    record["priority"] = priority_from_ics(todo.get("PRIORITY"))
    status = _text(todo, "STATUS").upper()
    record["status"] = {v: k for k, v in STATUS_TO_ICS.items()}.get(status, "needs-action")
    completed = todo.get("COMPLETED")
    if completed is not None and isinstance(completed.dt, dt.datetime):
        record["completed_at"] = _utc(completed.dt, zone).isoformat()
    if record["status"] == "completed" and not record["completed_at"]:
        stamp = todo.get("DTSTAMP") or todo.get("LAST-MODIFIED")
        if stamp is not None and isinstance(stamp.dt, dt.datetime):
            record["completed_at"] = _utc(stamp.dt, zone).isoformat()
    categories = todo.get("CATEGORIES")
    if categories is not None:
        first = categories[0] if isinstance(categories, list) else categories
        cats = getattr(first, "cats", None) or [str(first)]
        record["list"] = str(cats[0]).strip()[:100] if cats else ""
    return record


def ics_parse(data: bytes, *, zone: ZoneInfo) -> Parsed:
    """The VTODOs of an .ics file; other components are reported as skipped."""
    try:
        calendar = icalendar.Calendar.from_ical(data.decode("utf-8-sig", errors="replace"))
    except Exception as error:  # icalendar raises ValueError, KeyError, … on bad input
        raise FormatError(
            _("This is not a valid iCalendar file: %(error)s") % {"error": str(error)[:200]}
        ) from error
    if getattr(calendar, "name", "") != "VCALENDAR":
        raise FormatError(_("This is not an iCalendar file: it does not start with BEGIN:VCALENDAR."))
    parsed = Parsed()
    seen: set[str] = set()
    for number, component in enumerate(calendar.subcomponents, start=1):
        if component.name == "VTIMEZONE":
            continue
        label = _text(component, "SUMMARY")[:100] or _("item %(number)s") % {"number": number}
        if component.name != "VTODO":
            parsed.skipped.append((label, _("it is not a task (%(kind)s)") % {"kind": component.name}))
            continue
        try:
            record = _todo_to_record(component, zone)
        except Exception as error:  # a single broken property must not sink the whole file
            parsed.skipped.append((label, _("it is malformed (%(error)s)") % {"error": str(error)[:200]}))
            continue
        if not record["title"]:
            parsed.skipped.append((label, _("it has no title")))
            continue
        if record["uid"] in seen:
            parsed.skipped.append((label, _("it appears twice in the file")))
            continue
        seen.add(record["uid"])
        parsed.records.append(record)
    return parsed


def ics_serialize(records: list[Record], *, zone: ZoneInfo, stamp: dt.datetime) -> bytes:
    """A VCALENDAR with one VTODO per record; ``stamp`` is the DTSTAMP of every VTODO."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    for record in records:
        todo = icalendar.Todo()
        todo.add("uid", record["uid"])
        todo.add("dtstamp", stamp.astimezone(dt.UTC))
        todo.add("summary", record["title"])
        if record["notes"]:
            todo.add("description", record["notes"])
        if record["due_date"]:
            day = dt.date.fromisoformat(record["due_date"])
            if record["due_time"]:
                local = dt.datetime.combine(day, dt.time.fromisoformat(record["due_time"]), tzinfo=zone)
                todo.add("due", local.astimezone(dt.UTC))
            else:
                todo.add("due", day)
        todo.add("priority", int(record["priority"]))
        todo.add("status", STATUS_TO_ICS[record["status"]])
        if record["completed_at"]:
            todo.add("completed", dt.datetime.fromisoformat(record["completed_at"]).astimezone(dt.UTC))
        if record["list"]:
            todo.add("categories", [record["list"]])
        calendar.add_component(todo)
    return calendar.to_ical()
