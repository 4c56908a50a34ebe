"""Create, rename and delete the user's own folders (system folders are fixed)."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from pecmail.lib.http import AuthenticatedHttpRequest

from .. import selectors, services
from ..forms import FolderForm
from ..models import Folder
from ._common import sidebar


def _user_folder(request: AuthenticatedHttpRequest, folder_id: int) -> Folder:
    folder = selectors.folder_get(user=request.user, folder_id=folder_id)
    if folder.role != Folder.Role.USER:
        # Inbox, Sent, Drafts and Trash cannot be renamed or deleted: as if there were no such folder.
        raise Http404("system folder")
    return folder


def _form_page(request: AuthenticatedHttpRequest, form: FolderForm, folder: Folder | None) -> HttpResponse:
    context = {
        "tab": "mail",
        "form": form,
        "folder": folder,
        **sidebar(mailbox=form.mailbox),
    }
    return render(request, "mail/folder_form.html", context, status=422)


@require_POST
@login_required
def folder_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    mailbox = selectors.mailbox_for_user(user=request.user)
    form = FolderForm(request.POST, mailbox=mailbox)
    if not form.is_valid():
        return _form_page(request, form, None)
    try:
        folder = services.folder_create(mailbox=mailbox, name=form.cleaned_data["name"])
    except ValidationError as exc:
        form.add_error("name", exc)
        return _form_page(request, form, None)
    flash.success(request, _("Folder created."))
    return redirect("mail:folder", folder.pk)


@require_POST
@login_required
def folder_rename(request: AuthenticatedHttpRequest, folder_id: int) -> HttpResponse:
    folder = _user_folder(request, folder_id)
    form = FolderForm(request.POST, mailbox=folder.mailbox, folder=folder)
    if not form.is_valid():
        return _form_page(request, form, folder)
    try:
        services.folder_rename(folder=folder, name=form.cleaned_data["name"])
    except ValidationError as exc:
        form.add_error("name", exc)
        return _form_page(request, form, folder)
    flash.success(request, _("Folder renamed."))
    return redirect("mail:folder", folder.pk)


@require_POST
@login_required
def folder_delete(request: AuthenticatedHttpRequest, folder_id: int) -> HttpResponse:
    folder = _user_folder(request, folder_id)
    services.folder_delete(folder=folder)
    flash.success(request, _("Folder deleted."))
    return redirect("mail:index")
