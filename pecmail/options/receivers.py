"""Signal receivers of the Options tab: they only enqueue work or record a login."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import connection
from django.dispatch import receiver

from pecmail.mail.models import Mailbox, Message
from pecmail.mail.pipeline import message_delivered

from . import services, tasks
from .models import NotificationAddress, Preferences, Rule
from .selectors import preferences_for

logger = logging.getLogger(__name__)


@receiver(message_delivered, dispatch_uid="options.message_delivered")
def on_message_delivered(sender: Any, message_id: int, kind: str, **kwargs: Any) -> None:
    """Enqueue only the work this mailbox asked for.

    Most mailboxes have no rules and no notification address and keep receipts in the Inbox;
    a task that would find nothing to do still costs a broker message and a worker slot for
    every delivered message (three per PEC, with its receipts), so a query here decides first.
    """
    is_receipt = kind in Message.Kind.values and Message(kind=kind).is_receipt
    wants = _mailbox_wants(message_id)
    if wants is None:
        return
    receipts_folder, rules, notify = wants
    if is_receipt and receipts_folder:
        tasks.receipt_file.delay_on_commit(message_id)
    if rules:
        tasks.rules_apply.delay_on_commit(message_id)
    if kind == Message.Kind.CERTIFIED and notify:
        tasks.notices_send.delay_on_commit(message_id)


_WANTS_SQL: dict[str, str] = {}


def _wants_sql() -> str:
    meta = {model: model._meta for model in (Message, Mailbox, Preferences, Rule, NotificationAddress)}

    def table(model: Any) -> str:
        return connection.ops.quote_name(meta[model].db_table)

    def column(model: Any, field: str) -> str:
        return connection.ops.quote_name(meta[model].get_field(field).column)

    # Identifiers come from the models' metadata, quoted; every value is a query parameter.
    return (
        f"SELECT EXISTS(SELECT 1 FROM {table(Preferences)} p"  # noqa: S608
        f" WHERE p.{column(Preferences, 'user')} = b.{column(Mailbox, 'owner')}"
        f" AND p.{column(Preferences, 'receipts')} = %s),"
        f" EXISTS(SELECT 1 FROM {table(Rule)} r"
        f" WHERE r.{column(Rule, 'mailbox')} = m.{column(Message, 'mailbox')}"
        f" AND r.{column(Rule, 'active')} = %s),"
        f" EXISTS(SELECT 1 FROM {table(NotificationAddress)} n"
        f" WHERE n.{column(NotificationAddress, 'user')} = b.{column(Mailbox, 'owner')}"
        f" AND n.{column(NotificationAddress, 'confirmed_at')} IS NOT NULL)"
        f" FROM {table(Message)} m JOIN {table(Mailbox)} b"
        f" ON b.{column(Mailbox, 'id')} = m.{column(Message, 'mailbox')}"
        f" WHERE m.{column(Message, 'id')} = %s"
    )


def _mailbox_wants(message_id: int) -> tuple[bool, bool, bool] | None:
    """(receipts in their own folder, active rules, confirmed notification address) for the
    mailbox of ``message_id``; None if the message is gone.

    One round trip and no ORM compilation: this runs for every message filed in any Inbox.
    """
    sql = _WANTS_SQL.get(connection.vendor)
    if sql is None:
        sql = _WANTS_SQL[connection.vendor] = _wants_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [Preferences.Receipts.FOLDER.value, True, message_id])
        row = cursor.fetchone()
    return None if row is None else (bool(row[0]), bool(row[1]), bool(row[2]))


@receiver(user_logged_in, dispatch_uid="options.user_logged_in")
def on_user_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # A login must never fail because its history or preferences could not be read.
    try:
        services.login_event_record(user=user, request=request, success=True)
        if request is not None:
            services.session_preferences_apply(request=request, prefs=preferences_for(user))
    except Exception:  # noqa: BLE001
        logger.exception("could not record the login of user %s", getattr(user, "pk", None))


@receiver(user_login_failed, dispatch_uid="options.user_login_failed")
def on_user_login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    email = str(credentials.get("email") or credentials.get("username") or "").strip()
    if not email:
        return
    try:
        user = get_user_model().objects.filter(email__iexact=email).first()
        services.login_event_record(user=user, request=request, success=False)
    except Exception:  # noqa: BLE001
        logger.exception("could not record a failed login")
