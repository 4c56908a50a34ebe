"""The providers index (SPEC §8) and the append-only provider log (SPEC §7.3)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class Provider(models.Model):
    """One PEC provider (or one secondary environment of it) of the Indice dei gestori."""

    name = models.CharField(_("provider name"), max_length=200)
    unit = models.CharField(_("provider unit"), max_length=200, blank=True, default="")
    mail_receipt = models.CharField(_("service mailbox"), max_length=254)
    description = models.TextField(_("description"), blank=True, default="")
    ldif_location_url = models.CharField(_("LDIF location URL"), max_length=500, blank=True, default="")
    is_self = models.BooleanField(_("this provider"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "unit"]
        verbose_name = _("PEC provider")
        verbose_name_plural = _("PEC providers")
        constraints = [
            models.UniqueConstraint(fields=["name", "unit"], name="certification_provider_name_unit"),
            models.UniqueConstraint(
                fields=["is_self"], condition=models.Q(is_self=True), name="certification_provider_one_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name


class ProviderCertificate(models.Model):
    """A signing certificate of a provider; several may be active at once (key rollover)."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="certificates")
    der = models.BinaryField(_("certificate (DER)"))
    sha1 = models.CharField(_("SHA-1 (hex)"), max_length=40, unique=True)
    subject = models.CharField(_("subject"), max_length=500, blank=True, default="")
    not_before = models.DateTimeField(_("valid from"), null=True)
    not_after = models.DateTimeField(_("valid until"), null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider_id", "not_before"]
        verbose_name = _("provider certificate")
        verbose_name_plural = _("provider certificates")

    def __str__(self) -> str:
        return self.sha1


class ProviderDomain(models.Model):
    """A mail domain managed by a provider (``managedDomains``), stored lower-case."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(_("domain"), max_length=253, unique=True)

    class Meta:
        ordering = ["domain"]
        verbose_name = _("managed domain")
        verbose_name_plural = _("managed domains")

    def __str__(self) -> str:
        return self.domain


def _index_changed(**kwargs: Any) -> None:
    from pecmail.certification.index import trust_store_invalidate

    trust_store_invalidate()


# Admin edits must refresh the cached trust store too, not only the index services: hence signals,
# used for that cache and nothing else.
for _model in (Provider, ProviderCertificate, ProviderDomain):
    post_save.connect(_index_changed, sender=_model, dispatch_uid=f"pec-index-save-{_model.__name__}")
    post_delete.connect(_index_changed, sender=_model, dispatch_uid=f"pec-index-delete-{_model.__name__}")


class AppendOnlyError(Exception):
    """The provider log is append-only: rows are never changed or removed (except by retention)."""


class ProviderLogQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("the provider log is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("the provider log is append-only; retention goes through log_sweep")

    def bulk_create(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("append provider log rows with pecmail.certification.log.log_append")

    def bulk_update(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("the provider log is append-only")

    def chain_insert(self, entries: list[Any]) -> list[Any]:
        """Insert already chained rows (``pecmail.certification.log.log_append_many`` only)."""
        from pecmail.lib.rows import rows_insert

        return rows_insert(entries, using=self.db)

    def chain_insert_sql(self, entries: list[Any], *, returning: bool) -> tuple[str, list[Any]]:
        """``chain_insert``'s statement, to run within a larger one (``log.log_append_statements``)."""
        from pecmail.lib.rows import rows_insert_sql

        return rows_insert_sql(entries, returning=returning, using=self.db)

    def retention_delete(self) -> tuple[int, dict[str, int]]:
        """Delete rows for the retention sweep only (``pecmail.certification.log.log_sweep``)."""
        return super().delete()


class ProviderLogEntry(models.Model):
    """One event of the provider log (SPEC §7.3), hash-chained to the row before it."""

    # The recommended event tokens (the field takes any token: other apps may log their own).
    class Event(models.TextChoices):
        ACCEPTANCE = "accettazione", _("acceptance")
        NON_ACCEPTANCE = "non-accettazione", _("non-acceptance")
        NON_ACCEPTANCE_VIRUS = "non-accettazione-virus", _("non-acceptance for virus")
        TRANSPORT = "busta-trasporto", _("transport envelope")
        RECEPTION = "ricezione", _("reception from another provider")
        TAKE_CHARGE = "presa-in-carico", _("take-charge receipt")
        DELIVERY = "avvenuta-consegna", _("delivery receipt")
        DELIVERY_ERROR = "errore-consegna", _("delivery error")
        DELIVERY_ERROR_VIRUS = "errore-consegna-virus", _("delivery error for virus")
        TIMEOUT_12H = "preavviso-errore-consegna", _("12-hour delivery warning")
        TIMEOUT_24H = "errore-consegna-24h", _("24-hour delivery error")
        VIRUS_DETECTION = "rilevazione-virus", _("virus detection")
        ANOMALY = "busta-anomalia", _("anomaly envelope")
        RECEIPT_RECEIVED = "ricevuta-ricevuta", _("receipt received from another provider")
        SMTP_SENT = "smtp-sent", _("handed over to the next SMTP server")
        SMTP_REFUSED = "smtp-refused", _("refused by the next SMTP server")
        SMTP_GAVE_UP = "smtp-gave-up", _("SMTP delivery abandoned")

    seq = models.BigIntegerField(_("sequence number"), unique=True)
    at = models.DateTimeField(_("time"), db_index=True)
    event = models.CharField(_("event"), max_length=64)
    identifier = models.CharField(_("PEC identifier"), max_length=255, db_index=True)
    msgid = models.CharField(_("original message id"), max_length=998, blank=True, default="")
    sender = models.CharField(_("sender"), max_length=254, blank=True, default="")
    recipients = models.JSONField(_("recipients"), default=list)
    subject = models.TextField(_("subject"), blank=True, default="")
    related_ids = models.JSONField(_("related message ids"), default=list)
    provider = models.CharField(_("sending provider"), max_length=200, blank=True, default="")
    # Canonical JSON text (not a JSONField): hashed exactly as stored, whatever the database does to JSON.
    details_json = models.TextField(_("details"), default="{}")
    prev_hash = models.CharField(_("previous row hash"), max_length=64, unique=True)
    hash = models.CharField(_("row hash"), max_length=64, unique=True)

    objects = ProviderLogQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        verbose_name = _("provider log entry")
        verbose_name_plural = _("provider log")

    def __str__(self) -> str:
        return f"#{self.seq} {self.event} {self.identifier}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("the provider log is append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("the provider log is append-only; retention goes through log_sweep")

    @property
    def details(self) -> dict[str, Any]:
        import json

        return json.loads(self.details_json)


class ProviderLogHead(models.Model):
    """The single row that serialises appends and remembers the chain's two ends.

    ``seq``/``hash`` are the last row's; ``anchor_seq``/``anchor_prev_hash`` are what the first
    kept row must carry after a retention sweep (seq 1 and the genesis hash before any sweep).
    """

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)
    anchor_seq = models.BigIntegerField(default=1)
    anchor_prev_hash = models.CharField(max_length=64)
    swept_at = models.DateTimeField(null=True)

    class Meta:
        verbose_name = _("provider log head")

    def __str__(self) -> str:
        return f"log head #{self.seq}"
