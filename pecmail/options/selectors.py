"""Reads of the Options tab, always scoped to the asking user."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from pecmail.accounts.models import User
from pecmail.mail.models import Mailbox

from .models import LoginEvent, NotificationAddress, Preferences, Rule, RuleRun


def preferences_for(user: User) -> Preferences:
    """The user's preferences; an unsaved row with the defaults when none was stored."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Preferences()
    try:
        return Preferences.objects.get(user=user)
    except Preferences.DoesNotExist:
        return Preferences(user=user)


def page_size_for(user: User) -> int:
    """How many messages the mail list shows per page for ``user``."""
    return preferences_for(user).page_size


def default_receipt_type_for(user: User) -> str:
    """The receipt type compose starts with: "completa", "breve" or "sintetica"."""
    return preferences_for(user).receipt_type


def reading_pane_for(user: User) -> str:
    """Where the reading pane goes: "right", "bottom" or "off"."""
    return preferences_for(user).reading_pane


def receipts_mode_for(user: User) -> str:
    """ "grouped" (under their message) or "folder" (filed in a Receipts folder)."""
    return preferences_for(user).receipts


def signature_for(mailbox: Mailbox) -> tuple[str, bool]:
    """The signature compose appends for ``mailbox``: (text, is_html); ("", False) when none."""
    prefs = preferences_for(mailbox.owner)
    return prefs.signature, prefs.signature_is_html


def notification_address_list(*, user: User) -> QuerySet[NotificationAddress]:
    return NotificationAddress.objects.filter(user=user)


def notification_address_get(*, user: User, address_id: int) -> NotificationAddress:
    try:
        return NotificationAddress.objects.get(pk=address_id, user=user)
    except NotificationAddress.DoesNotExist:
        raise Http404("No such notification address.") from None


def rule_list(*, mailbox: Mailbox) -> QuerySet[Rule]:
    return Rule.objects.filter(mailbox=mailbox).select_related("move_to")


def rule_get(*, user: User, rule_id: int) -> Rule:
    try:
        return Rule.objects.select_related("mailbox").get(pk=rule_id, mailbox__owner=user)
    except Rule.DoesNotExist:
        raise Http404("No such rule.") from None


def rule_runs_failed(*, mailbox: Mailbox, limit: int = 20) -> list[RuleRun]:
    """The latest failed rule runs of the mailbox, newest first."""
    return list(
        RuleRun.objects.filter(rule__mailbox=mailbox, status=RuleRun.Status.FAILED)
        .select_related("rule", "message")
        .order_by("-created_at", "-id")[:limit]
    )


def rule_runs_recent(*, mailbox: Mailbox, limit: int = 20) -> list[RuleRun]:
    return list(
        RuleRun.objects.filter(rule__mailbox=mailbox)
        .select_related("rule", "message")
        .order_by("-created_at", "-id")[:limit]
    )


def login_events_recent(*, user: User, limit: int = 20) -> list[LoginEvent]:
    return list(LoginEvent.objects.filter(user=user).order_by("-at", "-id")[:limit])
