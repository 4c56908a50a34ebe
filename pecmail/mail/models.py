"""The Messages tab's store: mailboxes and folders (messages follow in this app)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Mailbox(models.Model):
    """One PEC address, owned by one user."""

    address = models.EmailField(_("address"), unique=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mailboxes")
    display_name = models.CharField(_("display name"), max_length=200, blank=True)
    quota_bytes = models.BigIntegerField(_("quota (bytes)"), default=2 * 1024**3)
    accept_ordinary_mail = models.BooleanField(
        _("accept mail from outside PEC"),
        default=True,
        help_text=_("Ordinary mail is delivered inside an anomaly envelope; otherwise it is refused."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["address"]
        verbose_name = _("mailbox")
        verbose_name_plural = _("mailboxes")

    def __str__(self) -> str:
        return self.address

    @property
    def from_header(self) -> str:
        from email.utils import formataddr

        return formataddr((self.display_name, self.address)) if self.display_name else self.address


class Folder(models.Model):
    class Role(models.TextChoices):
        INBOX = "inbox", _("Inbox")
        SENT = "sent", _("Sent")
        DRAFTS = "drafts", _("Drafts")
        TRASH = "trash", _("Trash")
        USER = "user", _("Folder")

    SYSTEM_ROLES = (Role.INBOX, Role.SENT, Role.DRAFTS, Role.TRASH)

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="folders")
    name = models.CharField(_("name"), max_length=100)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.USER)

    class Meta:
        ordering = ["mailbox", "role", "name"]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "name"], name="folder_unique_name"),
            models.UniqueConstraint(
                fields=["mailbox", "role"],
                condition=~models.Q(role="user"),
                name="folder_unique_system_role",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox.address}/{self.name}"

    @property
    def display_name(self) -> str:
        return str(self.Role(self.role).label) if self.role != self.Role.USER else self.name
