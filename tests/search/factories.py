"""Messages for the search tests, stored through the Messages store (so the index hook runs)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage
from email.utils import format_datetime

from pecmail.mail import services
from pecmail.mail.models import Folder, Mailbox, Message

BASE_DATE = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)


def raw_message(
    *,
    subject: str = "Hello",
    sender: str = "Ufficio Protocollo <protocollo@example.org>",
    to: str = "alice@pec.example",
    cc: str = "",
    text: str = "Plain body",
    html: str | None = None,
    html_only: bool = False,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
    date: dt.datetime = BASE_DATE,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = f"<{abs(hash((subject, text, html, date)))}@example.org>"
    if html_only:
        msg.set_content(html or "", subtype="html")
    else:
        msg.set_content(text)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(msg)


def envelope(*, inner: bytes, subject: str) -> bytes:
    """A PEC-shaped envelope: the provider's text, daticert.xml and the postacert.eml carried."""
    msg = EmailMessage()
    msg["From"] = '"Per conto di: mario.rossi@example.org" <posta-certificata@pec.example>'
    msg["To"] = "alice@pec.example"
    msg["Subject"] = f"POSTA CERTIFICATA: {subject}"
    msg["Date"] = format_datetime(BASE_DATE)
    msg["X-Trasporto"] = "posta-certificata"
    msg.set_content("Messaggio di posta certificata envelopeword")
    msg.add_attachment(b"<postacert/>", maintype="application", subtype="xml", filename="daticert.xml")
    carried = email.message_from_bytes(inner, policy=email.policy.default)
    msg.add_attachment(carried, filename="postacert.eml")
    return bytes(msg)


def store(
    mailbox: Mailbox, *, role: str = Folder.Role.INBOX, kind: str | None = None, fields=None, **kwargs
) -> Message:
    folder = Folder.objects.get(mailbox=mailbox, role=role)
    raw = kwargs.pop("raw", None) or raw_message(**kwargs)
    return services.message_store(mailbox=mailbox, raw=raw, folder=folder, kind=kind, **(fields or {}))
