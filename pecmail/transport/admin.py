"""Read-only views of the transport queues for operators: state is changed by the tasks only."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import DeliveryDeadline, InboundMessage, OutboundMessage, OutboxItem


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "received_at", "mail_from", "kind", "state", "peer", "tls"]
    list_filter = ["state", "kind", "tls"]
    search_fields = ["mail_from", "pec_id", "raw_sha256"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[InboundMessage]:
        return super().get_queryset(request).defer("raw")  # spooled bytes: not for listing


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "domain",
        "kind",
        "state",
        "attempts",
        "next_attempt_at",
        "last_reply",
    ]
    list_filter = ["state", "kind"]
    search_fields = ["domain", "pec_id", "mail_from"]


@admin.register(OutboxItem)
class OutboxItemAdmin(ReadOnlyAdmin):
    list_display = ["id", "task_name", "created_at", "published_at", "attempts"]
    list_filter = ["task_name"]


@admin.register(DeliveryDeadline)
class DeliveryDeadlineAdmin(ReadOnlyAdmin):
    list_display = ["delivery", "dispatched_at", "warn_at", "warned_at", "expire_at", "expired_at"]
