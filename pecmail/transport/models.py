"""Transport state: what came in over SMTP, what must go out, work to publish, deadlines.

Raw bytes live in ``pecmail.mail.storage`` (addressed by SHA-256); rows here hold state
and the claims that make every task safe to run twice.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OutboxItem(models.Model):
    """A Celery task to publish, written in the same transaction as the work it continues.

    A crash between commit and publish leaves the row unpublished; the relay publishes it
    later. Tasks are idempotent, so publishing twice is harmless.
    """

    task_name = models.CharField(max_length=200)
    kwargs = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    published_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.task_name}({self.kwargs})"


class InboundMessage(models.Model):
    """One SMTP transaction accepted by ``pec smtpd`` (the 250 was sent after this row committed).

    ``raw`` spools the received bytes: they commit in the same transaction as this row, its
    log row and its outbox row, so nothing is half-stored. Processing copies them into
    content-addressed storage (``storage.raw_put``, under ``raw_sha256``) and empties ``raw``
    in the transaction that marks the row processed. Rows of older releases have ``raw``
    empty and their bytes in storage already.
    """

    class State(models.TextChoices):
        RECEIVED = "received", _("received")
        PROCESSED = "processed", _("processed")

    raw_sha256 = models.CharField(max_length=64)
    raw = models.BinaryField(null=True, editable=False)
    size = models.PositiveBigIntegerField(default=0)
    mail_from = models.CharField(max_length=320, blank=True)
    rcpt_tos = models.JSONField(default=list)
    peer = models.CharField(max_length=100, blank=True)
    helo = models.CharField(max_length=255, blank=True)
    tls = models.BooleanField(default=False)
    received_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RECEIVED)
    kind = models.CharField(max_length=32, blank=True)
    pec_id = models.CharField(max_length=255, blank=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The rows still to process, oldest first: what an inbound task takes along in its
            # batch and what the retry sweep looks for. Processed rows, nearly all of them, stay out.
            models.Index(
                fields=["id"],
                condition=models.Q(state="received"),
                name="inbound_received",
            ),
        ]

    def __str__(self) -> str:
        return f"inbound {self.pk} from {self.mail_from}"


class TakeCharge(models.Model):
    """The ricevuta di presa in carico this provider issued for one incoming envelope."""

    pec_id = models.CharField(max_length=255)
    sender_provider = models.CharField(max_length=255)
    inbound = models.ForeignKey(InboundMessage, on_delete=models.PROTECT, related_name="+")
    recipients = models.JSONField(default=list)
    message_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # One take-charge per SMTP transaction; recipients are claimed in InboundDelivery, so a
            # peer resending an envelope gets none and one splitting it gets one per new part.
            models.UniqueConstraint(fields=["inbound"], name="takecharge_one_per_transaction"),
        ]

    def __str__(self) -> str:
        return f"take-charge {self.pec_id}"


class InboundDelivery(models.Model):
    """One recipient of an incoming envelope: delivered once, answered once."""

    class Outcome(models.TextChoices):
        PENDING = "pending", _("taken in charge")
        DELIVERED = "delivered", _("delivered")
        NO_DEST = "no-dest", _("unknown mailbox")
        VIRUS = "virus", _("virus")
        REFUSED = "refused", _("refused")

    pec_id = models.CharField(max_length=255)
    recipient = models.CharField(max_length=320)
    inbound = models.ForeignKey(InboundMessage, on_delete=models.PROTECT, related_name="deliveries")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    message_id = models.BigIntegerField(null=True, blank=True)
    notice_message_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pec_id", "recipient"], name="inbounddelivery_one_per_recipient"),
        ]

    def __str__(self) -> str:
        return f"{self.recipient} {self.outcome}"


class OutboundMessage(models.Model):
    """Bytes to hand to one remote domain over SMTP, with the recipients there."""

    class State(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    raw_sha256 = models.CharField(max_length=64)
    mail_from = models.CharField(max_length=320)
    recipients = models.JSONField(default=list)
    domain = models.CharField(max_length=255)
    kind = models.CharField(max_length=32, blank=True)
    pec_id = models.CharField(max_length=255, blank=True, db_index=True)
    sent_message_id = models.BigIntegerField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_reply = models.TextField(blank=True)
    # recipient → {"code": int, "reply": str}: the final answer for each recipient settled so far.
    results = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            # One copy of one message per domain, however often dispatch runs.
            models.UniqueConstraint(fields=["raw_sha256", "domain"], name="outbound_one_per_domain"),
        ]

    def __str__(self) -> str:
        return f"outbound {self.pk} to {self.domain}"


class DeliveryDeadline(models.Model):
    """The 12 h and 24 h deadlines of one certified recipient sent to another provider (SPEC §2.5).

    Each notice is claimed by setting its ``*_sent_at`` with a conditional UPDATE, so two
    sweepers emit it once.
    """

    delivery = models.OneToOneField("mail.Delivery", on_delete=models.CASCADE, related_name="deadline")
    dispatched_at = models.DateTimeField()
    warn_at = models.DateTimeField(db_index=True)
    expire_at = models.DateTimeField(db_index=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"deadlines of delivery {self.delivery_id}"
