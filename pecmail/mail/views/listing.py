"""The message list of a folder, keyset-paginated, and the actions on ticked messages."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from pecmail.lib.http import AuthenticatedHttpRequest

from .. import selectors, services
from ..forms import BulkForm, FolderForm
from ..models import Draft, Folder, Message
from ._common import (
    attach_deliveries,
    cursor_decode,
    cursor_encode,
    draft_page,
    message_page,
    page_size_for,
    reading_pane_for,
    sidebar,
    system_folder,
)
from .read import reader_context

HIDE_RECEIPTS_COOKIE = "mail_hide_receipts"


@require_GET
@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    try:
        mailbox = selectors.mailbox_for_user(user=request.user)
    except Http404:
        # An account without a PEC address (an administrator, say) lands here after login.
        return render(request, "mail/no_mailbox.html", {"tab": "mail"})
    return _folder_page(request, system_folder(mailbox=mailbox, role=Folder.Role.INBOX))


@require_GET
@login_required
def folder(request: AuthenticatedHttpRequest, folder_id: int) -> HttpResponse:
    return _folder_page(request, selectors.folder_get(user=request.user, folder_id=folder_id))


def _folder_page(
    request: AuthenticatedHttpRequest, folder: Folder, *, status: int = 200, bulk_form=None
) -> HttpResponse:
    mailbox = folder.mailbox
    before = cursor_decode(request.GET.get("before"))
    size = page_size_for(request.user)
    pane = reading_pane_for(request.user)
    reader: dict = {}
    if request.GET.get("open") and pane != "off" and folder.role != Folder.Role.DRAFTS:
        opened = selectors.message_get(user=request.user, message_id=request.GET["open"])
        if opened.folder_id != folder.pk:
            raise Http404("not in this folder")
        # Before the rows are read, so the opened message is listed as read.
        reader = reader_context(request, opened)
    hide_receipts = _hide_receipts(request, folder)
    drafts: list[Draft] = []
    rows: list[Message] = []
    if folder.role == Folder.Role.DRAFTS:
        drafts = draft_page(mailbox=mailbox, before=before, limit=size + 1)
        page, more = drafts[:size], len(drafts) > size
        last = (page[-1].updated_at, page[-1].pk) if page and more else None
        drafts = page
    else:
        rows = message_page(folder=folder, before=before, limit=size + 1, hide_folded_receipts=hide_receipts)
        page, more = rows[:size], len(rows) > size
        last = (page[-1].date, page[-1].pk) if page and more else None
        rows = page
        if folder.role == Folder.Role.SENT:
            attach_deliveries(rows)
    older_url = ""
    if last is not None:
        older_url = f"{request.path}?{urlencode({'before': cursor_encode(*last)})}"
    kept = {"before": request.GET["before"]} if request.GET.get("before") else {}
    context = {
        **reader,
        "tab": "mail",
        "pane": pane,
        "open_prefix": f"{request.path}?{urlencode({**kept, 'open': ''})}",
        "mailbox": mailbox,
        "folder": folder,
        **sidebar(mailbox=mailbox),
        "rows": rows,
        "drafts": drafts,
        "older_url": older_url,
        "is_first_page": before is None,
        "hide_receipts": hide_receipts,
        "can_hide_receipts": folder.role == Folder.Role.INBOX,
        "bulk_form": bulk_form or BulkForm(mailbox=mailbox),
        "folder_form": FolderForm(mailbox=mailbox),
        "rename_form": FolderForm(mailbox=mailbox, folder=folder, initial={"name": folder.name}),
    }
    return render(request, "mail/list.html", context, status=status)


def _hide_receipts(request: AuthenticatedHttpRequest, folder: Folder) -> bool:
    # Receipts are always filed in the Inbox (the rules require it); folding is only a view.
    return folder.role == Folder.Role.INBOX and request.COOKIES.get(HIDE_RECEIPTS_COOKIE) == "1"


@require_POST
@login_required
def receipts_toggle(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Show or hide, in the Inbox, the receipts already folded under their sent message."""
    mailbox = selectors.mailbox_for_user(user=request.user)
    response = redirect("mail:folder", system_folder(mailbox=mailbox, role=Folder.Role.INBOX).pk)
    hide = request.POST.get("hide") == "1"
    response.set_cookie(
        HIDE_RECEIPTS_COOKIE, "1" if hide else "0", max_age=365 * 24 * 3600, samesite="Lax", httponly=True
    )
    return response


@require_POST
@login_required
def bulk(request: AuthenticatedHttpRequest, folder_id: int) -> HttpResponse:
    folder = selectors.folder_get(user=request.user, folder_id=folder_id)
    form = BulkForm(request.POST, mailbox=folder.mailbox)
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
    # Every id through the selector: another user's message is a 404, not a silent skip.
    chosen = [selectors.message_get(user=request.user, message_id=pk) for pk in ids]
    if not form.is_valid() or not chosen:
        if not chosen:
            form.add_error(None, _("Select at least one message."))
        return _folder_page(request, folder, status=422, bulk_form=form)
    action = form.cleaned_data["action"]
    if action == "move":
        for message in chosen:
            services.message_move(message=message, folder=form.cleaned_data["folder"])
    elif action == "delete":
        for message in chosen:
            services.message_delete(message=message)
    elif action in ("read", "unread"):
        services.message_mark(messages=chosen, seen=action == "read")
    else:
        services.message_mark(messages=chosen, flagged=action == "flag")
    flash.success(
        request,
        ngettext("%(n)d message updated.", "%(n)d messages updated.", len(chosen)) % {"n": len(chosen)},
    )
    return redirect(reverse("mail:folder", args=[folder.pk]))


@require_POST
@login_required
def trash_empty(request: AuthenticatedHttpRequest) -> HttpResponse:
    mailbox = selectors.mailbox_for_user(user=request.user)
    services.trash_empty(mailbox=mailbox)
    flash.success(request, _("Trash emptied."))
    return redirect("mail:folder", system_folder(mailbox=mailbox, role=Folder.Role.TRASH).pk)
