"""Signal receivers of the Options tab: they only enqueue work or record a login."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models import Exists, OuterRef
from django.dispatch import receiver

from pecmail.mail.models import Message
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
    wants = (
        Message.objects.filter(pk=message_id)
        .annotate(
            receipts_folder=Exists(
                Preferences.objects.filter(
                    user_id=OuterRef("mailbox__owner_id"), receipts=Preferences.Receipts.FOLDER
                )
            ),
            rules=Exists(Rule.objects.filter(mailbox_id=OuterRef("mailbox_id"), active=True)),
            notify=Exists(
                NotificationAddress.objects.filter(
                    user_id=OuterRef("mailbox__owner_id"), confirmed_at__isnull=False
                )
            ),
        )
        .values_list("receipts_folder", "rules", "notify")
        .first()
    )  # one query, however many of the three apply
    if wants is None:
        return
    receipts_folder, rules, notify = wants
    if is_receipt and receipts_folder:
        tasks.receipt_file.delay_on_commit(message_id)
    if rules:
        tasks.rules_apply.delay_on_commit(message_id)
    if kind == Message.Kind.CERTIFIED and notify:
        tasks.notices_send.delay_on_commit(message_id)


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
