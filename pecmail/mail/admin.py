from django.contrib import admin

from .models import Delivery, Draft, DraftAttachment, Folder, Mailbox, Message


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    list_display = ("address", "display_name", "owner", "accept_ordinary_mail", "created_at")
    search_fields = ("address", "display_name")


@admin.register(Folder)
class FolderAdmin(admin.ModelAdmin):
    list_display = ("name", "role", "mailbox")
    list_filter = ("role",)


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fk_name = "message"
    extra = 0
    can_delete = False
    readonly_fields = (
        "recipient",
        "header",
        "certified",
        "state",
        "taken_in_charge_at",
        "delivered_at",
        "error",
        "receipt",
    )


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Read-only: messages and their raw bytes are evidence, changed only by the pipeline."""

    list_display = ("subject", "kind", "mailbox", "folder", "date", "pec_id", "submission_state")
    list_filter = ("kind", "submission_state", "folder__role")
    search_fields = ("subject", "pec_id", "message_id", "from_address", "mailbox__address")
    list_select_related = ("mailbox", "folder")
    raw_id_fields = ("mailbox", "folder", "related")
    inlines = [DeliveryInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("recipient", "state", "certified", "header", "message", "delivered_at")
    list_filter = ("state", "certified")
    search_fields = ("recipient", "message__pec_id")
    raw_id_fields = ("message", "receipt")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class DraftAttachmentInline(admin.TabularInline):
    model = DraftAttachment
    extra = 0


@admin.register(Draft)
class DraftAdmin(admin.ModelAdmin):
    list_display = ("subject", "mailbox", "updated_at")
    raw_id_fields = ("mailbox", "in_reply_to", "forward_of")
    inlines = [DraftAttachmentInline]
