"""Stored messages for the Messages UI tests, written through MAIL-CORE's ``message_store``."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.utils import format_datetime

from django.conf import settings

from pecmail.mail import services
from pecmail.mail.models import Folder, Mailbox, Message


def raw_message(
    *,
    subject: str = "Hello",
    sender: str = "Mario Rossi <mario@example.org>",
    to: str | None = None,
    text: str = "Plain body",
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
    date: dt.datetime | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to or f"alice@{settings.PEC_DOMAIN}"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC))
    msg["Message-ID"] = f"<{abs(hash((subject, text, html)))}@example.org>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(msg)


def store(mailbox: Mailbox, *, role: str = Folder.Role.INBOX, **kwargs) -> Message:
    """A message in ``mailbox`` (Inbox unless ``role``); ``fields`` override the parsed metadata."""
    fields = kwargs.pop("fields", {})
    raw = raw_message(**kwargs)
    folder = Folder.objects.get(mailbox=mailbox, role=role)
    return services.message_store(mailbox=mailbox, raw=raw, folder=folder, **fields)
