"""Fixtures of the Calendar tests: calendars and events owned by alice, a stored PEC message."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation

from pecmail.agenda import services
from pecmail.agenda.models import Calendar, Event
from pecmail.mail.models import Folder, Mailbox, Message

ROME = ZoneInfo("Europe/Rome")


@pytest.fixture(autouse=True)
def _english():
    """A request in Italian leaves Italian active in the thread: start each test in English."""
    with translation.override("en"):
        yield


@pytest.fixture
def work(alice: Mailbox) -> Calendar:
    return services.calendar_create(owner=alice.owner, name="Lavoro", colour=Calendar.Colour.GREEN)


def make_event(calendar: Calendar, **fields) -> Event:
    start = fields.pop("start", dt.datetime(2026, 3, 16, 9, 0, tzinfo=ROME))
    defaults = {
        "title": "Riunione",
        "start": start,
        "end": fields.pop("end", start + dt.timedelta(hours=1)),
        "time_zone": "Europe/Rome",
    }
    defaults.update(fields)
    return services.event_create(calendar=calendar, **defaults)


def make_message(mailbox: Mailbox, *, subject: str = "Convocazione assemblea", date=None) -> Message:
    folder = Folder.objects.get(mailbox=mailbox, role=Folder.Role.INBOX)
    return Message.objects.create(
        mailbox=mailbox,
        folder=folder,
        raw_sha256="0" * 64,
        subject=subject,
        from_address="studio@pec.example.it",
        from_name="Studio Bianchi",
        date=date or dt.datetime(2026, 5, 4, 8, 7, tzinfo=dt.UTC),
        kind=Message.Kind.CERTIFIED,
    )
