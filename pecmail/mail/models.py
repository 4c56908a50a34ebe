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
    # The bytes of its messages up to the last fold; pecmail.mail.usage adds what changed since.
    used_bytes = models.BigIntegerField(_("space used (bytes)"), default=0, editable=False)
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


class MailboxUsageChange(models.Model):
    """A change in a mailbox's space, written by database triggers on ``mail_message``.

    Insert-only, so that filing a message never waits on a lock of its mailbox's row; the
    ``mail.usage_fold`` task adds them into ``Mailbox.used_bytes`` and deletes them
    (``pecmail.mail.usage``). No foreign key: the rows of a deleted mailbox are dropped when
    folded.
    """

    mailbox_id = models.BigIntegerField(db_index=True)
    bytes = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.mailbox_id}: {self.bytes:+d}"


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


class Message(models.Model):
    """One message in one mailbox folder: parsed metadata, flags and a pointer to its raw bytes.

    The raw bytes live byte-exact in Django default storage (``storage.raw_get(raw_sha256)``);
    nothing here is ever serialised back into a message.
    """

    class Kind(models.TextChoices):
        ORDINARY = "ordinary", _("Ordinary message")
        CERTIFIED = "posta-certificata", _("Certified message")
        ANOMALY = "anomalia", _("Anomaly")
        ACCEPTANCE = "accettazione", _("Acceptance receipt")
        NON_ACCEPTANCE = "non-accettazione", _("Non-acceptance notice")
        TAKE_CHARGE = "presa-in-carico", _("Take-charge receipt")
        DELIVERY = "avvenuta-consegna", _("Delivery receipt")
        DELIVERY_ERROR = "errore-consegna", _("Non-delivery notice")
        TIMEOUT = "preavviso-errore-consegna", _("Delivery delay warning")
        VIRUS_DETECTION = "rilevazione-virus", _("Virus detection notice")
        SUBMITTED = "submitted", _("Sent message")

    class ReceiptType(models.TextChoices):
        NONE = "", _("None")
        COMPLETE = "completa", _("Complete")
        SHORT = "breve", _("Short")
        SYNTHETIC = "sintetica", _("Synthetic")

    class Submission(models.TextChoices):
        """Where a Sent copy is in the pipeline (empty for every other message)."""

        NONE = "", _("Not a submission")
        PENDING = "pending", _("Waiting for acceptance")
        ACCEPTED = "accepted", _("Accepted")
        REFUSED = "refused", _("Not accepted")

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="messages")
    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="messages")
    raw_sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(_("size"), default=0)
    subject = models.TextField(_("subject"), blank=True)
    from_address = models.CharField(_("from"), max_length=320, blank=True)
    from_name = models.CharField(max_length=320, blank=True)
    to_addresses = models.JSONField(default=list, blank=True)
    cc_addresses = models.JSONField(default=list, blank=True)
    date = models.DateTimeField(_("date"))
    message_id = models.CharField(max_length=998, blank=True)
    pec_id = models.CharField(max_length=255, blank=True, db_index=True)
    client_msgid = models.CharField(max_length=998, blank=True)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices, default=Kind.ORDINARY)
    receipt_type = models.CharField(max_length=10, choices=ReceiptType.choices, blank=True, default="")
    seen = models.BooleanField(_("read"), default=False)
    flagged = models.BooleanField(_("flagged"), default=False)
    priority_high = models.BooleanField(_("high priority"), default=False)
    confidential = models.BooleanField(_("confidential"), default=False)
    attachment_count = models.PositiveIntegerField(default=0)
    has_html = models.BooleanField(default=False)
    preview = models.CharField(max_length=200, blank=True)
    signature_valid = models.BooleanField(null=True, blank=True)
    signer_provider = models.CharField(max_length=200, blank=True)
    certified_data = models.JSONField(default=dict, blank=True)
    # For a receipt or notice: the user's sent message it certifies (the UI folds it there).
    related = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="receipts"
    )
    # For a per-recipient receipt: the recipient it is about ("" for acceptance and the like).
    recipient = models.CharField(max_length=320, blank=True)
    # The 12 h and 24 h timeout notices share kind and recipient (both X-Ricevuta:
    # preavviso-errore-consegna, SPEC §3.4): "12h" / "24h" keeps them apart in the constraint
    # below. Empty for every other message.
    notice_stage = models.CharField(max_length=8, blank=True, default="")
    # Sent copies only: the submission as the client asked for it, and the pipeline's state.
    rcpt_addresses = models.JSONField(null=True, blank=True)
    bcc_addresses = models.JSONField(default=list, blank=True)
    submission_state = models.CharField(
        max_length=10, choices=Submission.choices, blank=True, default=Submission.NONE
    )
    envelope_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        indexes = [
            models.Index(fields=["folder", "-date", "-id"], name="message_folder_keyset"),
            # The sidebar's unread counts read only unseen rows: a partial index keeps them cheap
            # in a folder of 100,000 messages.
            models.Index(fields=["folder"], condition=models.Q(seen=False), name="message_folder_unread"),
            # The submissions waiting for acceptance, which a burst accepts in one transaction
            # (pipeline.message_accept): a few rows at any time among millions of messages.
            models.Index(
                fields=["id"],
                condition=models.Q(submission_state="pending"),
                name="message_pending_submission",
            ),
        ]
        constraints = [
            # One acceptance per submission, one receipt per message × recipient × kind
            # (× stage, for the two timeout notices).
            models.UniqueConstraint(
                fields=["related", "kind", "recipient", "notice_stage"],
                condition=models.Q(related__isnull=False),
                name="message_one_receipt_per_kind",
            ),
            # One delivery of a certified message per recipient mailbox.
            models.UniqueConstraint(
                fields=["mailbox", "pec_id"],
                condition=models.Q(kind="posta-certificata") & ~models.Q(pec_id=""),
                name="message_one_delivery_per_mailbox",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox.address}: {self.subject or '(no subject)'}"

    @property
    def is_receipt(self) -> bool:
        return self.kind not in (self.Kind.ORDINARY, self.Kind.CERTIFIED, self.Kind.SUBMITTED)

    def get_kind_display(self) -> str:
        # The final 24 h timeout notice shares its kind with the 12 h warning but says the
        # message was not delivered: every list, badge and reader labels it as such.
        if self.kind == self.Kind.TIMEOUT and self.notice_stage == "24h":
            return str(_("Non-delivery notice (time limit exceeded)"))
        return self._get_FIELD_display(self._meta.get_field("kind"))


class Delivery(models.Model):
    """One recipient of a sent message, and how far its delivery got."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Accepted, waiting")
        DELIVERED = "delivered", _("Delivered")
        ERROR = "error", _("Not delivered")
        TIMEOUT = "timeout", _("Timed out")

    class Header(models.TextChoices):
        TO = "to", _("To")
        CC = "cc", _("Cc")

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    recipient = models.CharField(_("recipient"), max_length=320)
    header = models.CharField(max_length=2, choices=Header.choices, default=Header.TO)
    certified = models.BooleanField(_("certified"), default=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.QUEUED)
    taken_in_charge_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    receipt = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["id"]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(fields=["message", "recipient"], name="delivery_one_per_recipient"),
        ]

    def __str__(self) -> str:
        return f"{self.recipient}: {self.state}"


class Draft(models.Model):
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="drafts")
    to = models.TextField(_("To"), blank=True)
    cc = models.TextField(_("Cc"), blank=True)
    subject = models.TextField(_("Subject"), blank=True)
    body_html = models.TextField(blank=True)
    body_text = models.TextField(blank=True)
    is_html = models.BooleanField(default=True)
    priority_high = models.BooleanField(_("Priority"), default=False)
    confidential = models.BooleanField(_("Confidential"), default=False)
    receipt_type = models.CharField(
        _("Receipt type"),
        max_length=10,
        choices=[c for c in Message.ReceiptType.choices if c[0]],
        default=Message.ReceiptType.COMPLETE,
    )
    in_reply_to = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    forward_of = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = _("draft")
        verbose_name_plural = _("drafts")

    def __str__(self) -> str:
        return self.subject or str(_("(no subject)"))


class DraftAttachment(models.Model):
    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="drafts/")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.filename
