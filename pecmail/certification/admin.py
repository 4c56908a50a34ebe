from django.contrib import admin
from django.http import HttpRequest

from .models import Provider, ProviderCertificate, ProviderDomain, ProviderLogEntry


class ProviderDomainInline(admin.TabularInline):
    model = ProviderDomain
    extra = 0


class ProviderCertificateInline(admin.TabularInline):
    model = ProviderCertificate
    extra = 0
    can_delete = True
    fields = ("sha1", "subject", "not_before", "not_after")
    readonly_fields = fields

    # Certificates enter through `pec index import` or init-provider, where their hash is checked.
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "unit", "mail_receipt", "is_self", "updated_at")
    list_filter = ("is_self",)
    search_fields = ("name", "mail_receipt", "domains__domain", "certificates__sha1")
    inlines = [ProviderDomainInline, ProviderCertificateInline]


@admin.register(ProviderLogEntry)
class ProviderLogEntryAdmin(admin.ModelAdmin):
    list_display = ("seq", "at", "event", "identifier", "sender", "subject")
    list_filter = ("event",)
    search_fields = ("identifier", "msgid", "sender", "subject")
    date_hierarchy = "at"

    # The log is append-only: the admin only reads it.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
