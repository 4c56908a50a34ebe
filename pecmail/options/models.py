"""The Options tab: per-user preferences, notification addresses, message rules, login history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from pecmail.mail.models import Folder, Mailbox, Message


class Preferences(models.Model):
    """One user's general parameters; missing rows mean the defaults below."""

    class ReadingPane(models.TextChoices):
        RIGHT = "right", _("On the right")
        BOTTOM = "bottom", _("Below the list")
        OFF = "off", _("Off (open messages full page)")

    class Receipts(models.TextChoices):
        GROUPED = "grouped", _("Grouped under their message")
        FOLDER = "folder", _("Filed in a Receipts folder")

    PAGE_SIZES = (10, 25, 50, 100)

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    signature = models.TextField(_("signature"), blank=True)
    signature_is_html = models.BooleanField(_("signature is HTML"), default=False)
    language = models.CharField(_("language"), max_length=10, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    page_size = models.PositiveSmallIntegerField(
        _("messages per page"), default=50, choices=[(n, str(n)) for n in PAGE_SIZES]
    )
    # The PEC receipt types (Message.ReceiptType without its "none").
    receipt_type = models.CharField(
        _("default receipt type"),
        max_length=10,
        choices=[c for c in Message.ReceiptType.choices if c[0]],
        default=Message.ReceiptType.COMPLETE,
    )
    reading_pane = models.CharField(
        _("reading pane"), max_length=10, choices=ReadingPane.choices, default=ReadingPane.RIGHT
    )
    receipts = models.CharField(
        _("receipts"), max_length=10, choices=Receipts.choices, default=Receipts.GROUPED
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("preferences")
        verbose_name_plural = _("preferences")

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"


class NotificationAddress(models.Model):
    """An ordinary address told about each new PEC; silent until confirmed through its link."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_addresses"
    )
    address = models.EmailField(_("address"))
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["address"]
        constraints = [
            models.UniqueConstraint(fields=["user", "address"], name="notification_address_unique")
        ]

    def __str__(self) -> str:
        return self.address

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None


class Notice(models.Model):
    """One notice sent (or being sent) about one message to one address: claimed before sending."""

    address = models.ForeignKey(NotificationAddress, on_delete=models.CASCADE, related_name="notices")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["address", "message"], name="notice_once")]

    def __str__(self) -> str:
        return f"notice {self.message_id} → {self.address_id}"


class Rule(models.Model):
    """A named, ordered message rule of one mailbox: a condition and one or more actions."""

    class Field(models.TextChoices):
        ALL = "all", _("All messages")
        SENDER = "sender", _("Sender")
        SUBJECT = "subject", _("Subject")
        RECIPIENT = "recipient", _("Recipient")
        KIND = "kind", _("PEC kind")

    class Operator(models.TextChoices):
        CONTAINS = "contains", _("contains")
        EQUALS = "equals", _("equals")

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(_("Rule name"), max_length=100)
    position = models.PositiveIntegerField(default=0)
    active = models.BooleanField(_("Active"), default=True)
    field = models.CharField(_("Select"), max_length=10, choices=Field.choices, default=Field.ALL)
    operator = models.CharField(
        _("Match"), max_length=10, choices=Operator.choices, default=Operator.CONTAINS
    )
    value = models.CharField(_("Value"), max_length=320, blank=True)
    forward_to = models.EmailField(_("Forward to address"), blank=True)
    move_to = models.ForeignKey(
        Folder,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("Move to folder"),
    )
    mark_read = models.BooleanField(_("Mark as read"), default=False)
    flag = models.BooleanField(_("Flag"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["mailbox", "position", "id"]

    def __str__(self) -> str:
        return self.name


class RuleRun(models.Model):
    """One rule applied to one message: the claim (unique) and the outcome shown to the user."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="runs")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField(_("error"), blank=True)
    # The Sent copy a PEC forward produced: its receipts must never feed the rules again.
    produced = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["rule", "message"], name="rule_run_once")]

    def __str__(self) -> str:
        return f"{self.rule_id}/{self.message_id}: {self.status}"


class LoginEvent(models.Model):
    """A login or failed login attempt, for the Security page."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="login_events"
    )
    success = models.BooleanField(default=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["user", "-at"], name="login_event_user_at")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.at:%Y-%m-%d %H:%M} {'ok' if self.success else 'failed'}"
