from django.urls import path

from . import views

app_name = "todos"

urlpatterns = [
    path("", views.index, name="index"),
    path("overdue/", views.index, {"view": "overdue"}, name="overdue"),
    path("upcoming/", views.index, {"view": "upcoming"}, name="upcoming"),
    path("all/", views.index, {"view": "all"}, name="all"),
    path("done/", views.index, {"view": "done"}, name="done"),
    path("quick-add/", views.quick_add, name="quick_add"),
    path("new/", views.task_new, name="new"),
    path("<int:task_id>/edit/", views.task_edit, name="edit"),
    path("<int:task_id>/toggle/", views.task_toggle, name="toggle"),
    path("<int:task_id>/delete/", views.task_delete, name="delete"),
    path("from-message/<int:message_id>/", views.create_from_message, name="create_from_message"),
    path("lists/", views.lists, name="lists"),
    path("lists/new/", views.list_create, name="list_create"),
    path("lists/<int:list_id>/rename/", views.list_rename, name="list_rename"),
    path("lists/<int:list_id>/delete/", views.list_delete, name="list_delete"),
    path("import/", views.import_upload, name="import"),
    path("import/preview/", views.import_preview, name="import_preview"),
    path("export/", views.export, name="export"),
]
