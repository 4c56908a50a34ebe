from django.urls import path

from . import views

app_name = "contacts"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.contact_new, name="new"),
    path("<int:contact_id>/", views.contact_detail, name="detail"),
    path("<int:contact_id>/edit/", views.contact_edit, name="edit"),
    path("<int:contact_id>/delete/", views.contact_delete, name="delete"),
    path("<int:contact_id>/favourite/", views.contact_favourite, name="favourite"),
    path("<int:contact_id>/vcard/", views.contact_vcard, name="vcard"),
    path("groups/", views.groups, name="groups"),
    path("groups/new/", views.group_create, name="group_create"),
    path("groups/<int:group_id>/rename/", views.group_rename, name="group_rename"),
    path("groups/<int:group_id>/delete/", views.group_delete, name="group_delete"),
    path("import/", views.import_upload, name="import"),
    path("import/preview/", views.import_preview, name="import_preview"),
    path("export/", views.export, name="export"),
    path("autocomplete/", views.autocomplete, name="autocomplete"),
    path("add-from-address/", views.add_from_address, name="add_from_address"),
]
