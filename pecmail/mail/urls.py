from django.urls import path

from .views import compose, folders, listing, read

app_name = "mail"

urlpatterns = [
    path("", listing.index, name="index"),
    path("folders/<int:folder_id>/", listing.folder, name="folder"),
    path("folders/<int:folder_id>/bulk/", listing.bulk, name="bulk"),
    path("folders/new/", folders.folder_create, name="folder_create"),
    path("folders/<int:folder_id>/rename/", folders.folder_rename, name="folder_rename"),
    path("folders/<int:folder_id>/delete/", folders.folder_delete, name="folder_delete"),
    path("trash/empty/", listing.trash_empty, name="trash_empty"),
    path("receipts/toggle/", listing.receipts_toggle, name="receipts_toggle"),
    path("<int:message_id>/", read.message_read, name="read"),
    path("<int:message_id>/body/", read.message_body, name="body"),
    path("<int:message_id>/deliveries/", read.message_deliveries, name="deliveries"),
    path("<int:message_id>/raw/", read.message_raw, name="raw"),
    path("<int:message_id>/attachments/<int:index>/", read.message_attachment, name="attachment"),
    path("<int:message_id>/move/", read.message_move, name="move"),
    path("<int:message_id>/delete/", read.message_delete, name="delete"),
    path("<int:message_id>/mark/", read.message_mark, name="mark"),
    path("<int:message_id>/reply/", compose.reply, name="reply"),
    path("<int:message_id>/reply-all/", compose.reply, {"everyone": True}, name="reply_all"),
    path("<int:message_id>/forward/", compose.forward, name="forward"),
    path("compose/", compose.compose, name="compose"),
    path("drafts/<int:draft_id>/", compose.draft_edit, name="draft"),
    path("drafts/<int:draft_id>/attachments/", compose.draft_attachments, name="draft_attachments"),
    path(
        "drafts/<int:draft_id>/attachments/<int:attachment_id>/remove/",
        compose.draft_attachment_remove,
        name="draft_attachment_remove",
    ),
    path("drafts/<int:draft_id>/discard/", compose.draft_discard, name="draft_discard"),
]
