from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TransportConfig(AppConfig):
    name = "pecmail.transport"
    label = "transport"
    verbose_name = _("Transport")

    def ready(self) -> None:
        from pecmail.mail.pipeline import envelope_accepted

        # MAIL-CORE fires this inside the transaction accepting a submission with remote recipients.
        envelope_accepted.connect(_on_envelope_accepted, dispatch_uid="transport.envelope_dispatch")


def _on_envelope_accepted(
    sender: object,
    *,
    message_id: int,
    remote_recipients: list[str],
    message: object = None,
    envelope: bytes | None = None,
    deliveries: list | None = None,
    **kwargs: object,
) -> None:
    from .dispatch import envelope_dispatch

    envelope_dispatch(message_id=message_id, sent=message, raw=envelope, created=deliveries)
