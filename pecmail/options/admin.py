from django.contrib import admin

from .models import LoginEvent, NotificationAddress, Preferences, Rule, RuleRun


@admin.register(Preferences)
class PreferencesAdmin(admin.ModelAdmin):
    list_display = ("user", "language", "time_zone", "page_size", "receipt_type", "receipts", "updated_at")
    search_fields = ("user__email",)


@admin.register(NotificationAddress)
class NotificationAddressAdmin(admin.ModelAdmin):
    list_display = ("address", "user", "confirmed_at", "created_at")
    search_fields = ("address", "user__email")


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ("name", "mailbox", "position", "active", "field", "operator", "value", "forward_to")
    list_filter = ("active", "field")
    search_fields = ("name", "mailbox__address", "forward_to")


@admin.register(RuleRun)
class RuleRunAdmin(admin.ModelAdmin):
    list_display = ("rule", "message", "status", "created_at", "finished_at")
    list_filter = ("status",)
    raw_id_fields = ("rule", "message", "produced")


@admin.register(LoginEvent)
class LoginEventAdmin(admin.ModelAdmin):
    list_display = ("user", "success", "ip", "at")
    list_filter = ("success",)
    search_fields = ("user__email", "ip")
    raw_id_fields = ("user",)
