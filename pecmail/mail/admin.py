from django.contrib import admin

from .models import Folder, Mailbox


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    list_display = ("address", "display_name", "owner", "accept_ordinary_mail", "created_at")
    search_fields = ("address", "display_name")


@admin.register(Folder)
class FolderAdmin(admin.ModelAdmin):
    list_display = ("name", "role", "mailbox")
    list_filter = ("role",)
