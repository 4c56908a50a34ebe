"""Writing a PEC: new, reply, reply-all, forward, drafts (autosaved), attachments, send."""

from __future__ import annotations

from html import escape

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pecmail.lib.http import AuthenticatedHttpRequest

from .. import selectors, services
from ..forms import ComposeForm
from ..models import Draft, Folder, Mailbox, Message
from ..parsing import html_to_text, message_parts
from ..sanitize import sanitize_html
from ..storage import RawMissing, raw_get
from ._common import (
    default_receipt_type_for,
    optional_url,
    sidebar,
    signature_for,
    system_folder,
)


def quill_available() -> bool:
    """True when ``make frontend`` vendored the rich-text editor; else compose is a textarea."""
    return finders.find("vendor/quill/quill.js") is not None


def _from_display(mailbox: Mailbox) -> str:
    """The sender as a person reads it; ``Mailbox.from_header`` is RFC 2047-encoded for the wire."""
    return f"{mailbox.display_name} <{mailbox.address}>" if mailbox.display_name else mailbox.address


def _wants_json(request: AuthenticatedHttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _page(
    request: AuthenticatedHttpRequest,
    *,
    mailbox: Mailbox,
    form: ComposeForm,
    draft: Draft | None,
    reply_to: Message | None = None,
    forward_of: Message | None = None,
    status: int = 200,
) -> HttpResponse:
    attachments = list(draft.attachments.all()) if draft is not None else []
    forward_of = forward_of or (draft.forward_of if draft is not None else None)
    context = {
        "tab": "mail",
        "mailbox": mailbox,
        "from_display": _from_display(mailbox),
        **sidebar(mailbox=mailbox),
        "folder": system_folder(mailbox=mailbox, role=Folder.Role.DRAFTS),
        "form": form,
        "draft": draft,
        "attachments": attachments,
        "attachments_size": sum(a.size for a in attachments) + (forward_of.size if forward_of else 0),
        "forward_of": forward_of,
        "reply_to": reply_to or (draft.in_reply_to if draft is not None else None),
        "max_total_size": getattr(settings, "PEC_MAX_TOTAL_SIZE", 100 * 1024 * 1024),
        "autocomplete_url": optional_url("contacts:autocomplete"),
        "quill_available": quill_available(),
        "action_url": reverse("mail:draft", args=[draft.pk])
        if draft is not None
        else reverse("mail:compose"),
    }
    return render(request, "mail/compose.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def compose(request: AuthenticatedHttpRequest) -> HttpResponse:
    mailbox = selectors.mailbox_for_user(user=request.user)
    if request.method == "POST":
        return _save(request, mailbox=mailbox, draft=None)
    sig_html, sig_text = _signature(mailbox)
    initial = {
        "to": request.GET.get("to", ""),
        "receipt_type": default_receipt_type_for(request.user),
        "body_html": sig_html,
        "body_text": sig_text,
    }
    return _page(request, mailbox=mailbox, form=ComposeForm(initial=initial), draft=None)


@require_http_methods(["GET", "POST"])
@login_required
def draft_edit(request: AuthenticatedHttpRequest, draft_id: int) -> HttpResponse:
    draft = selectors.draft_get(user=request.user, draft_id=draft_id)
    if request.method == "POST":
        return _save(request, mailbox=draft.mailbox, draft=draft)
    initial = {
        "to": draft.to,
        "cc": draft.cc,
        "subject": draft.subject,
        "body_format": "html" if draft.is_html else "text",
        "body_html": draft.body_html,
        "body_text": draft.body_text,
        "priority_high": draft.priority_high,
        "confidential": draft.confidential,
        "receipt_type": draft.receipt_type,
        "in_reply_to": draft.in_reply_to_id,
        "forward_of": draft.forward_of_id,
    }
    return _page(request, mailbox=draft.mailbox, form=ComposeForm(initial=initial), draft=draft)


def _related(request: AuthenticatedHttpRequest, value: int | None) -> Message | None:
    return selectors.message_get(user=request.user, message_id=value) if value else None


def _save(request: AuthenticatedHttpRequest, *, mailbox: Mailbox, draft: Draft | None) -> HttpResponse:
    """Save the draft whatever happens (nothing typed is lost), then send it if asked and valid."""
    sending = request.POST.get("action") == "send"
    uploads = request.FILES.getlist("attach")
    existing = sum(a.size for a in draft.attachments.all()) if draft is not None else 0
    form = ComposeForm(
        request.POST, sending=sending, attachments_size=existing + sum(u.size or 0 for u in uploads)
    )
    form.is_valid()
    data = form.cleaned_data
    in_reply_to = _related(request, data.get("in_reply_to"))
    forward_of = _related(request, data.get("forward_of"))
    body_html = form.data.get("body_html", "")
    # The editor's HTML passes the same allow-list as incoming mail before it is kept.
    body_html = sanitize_html(body_html, show_remote_images=True).html if body_html else ""
    # Without the editor (no JavaScript, or Quill not installed) only the textarea was filled.
    is_html = form.data.get("body_format", "html") == "html" and bool(body_html.strip())
    try:
        draft = services.draft_save(
            mailbox=mailbox,
            draft=draft,
            # The raw text as typed: an address being corrected is kept in the draft.
            to=form.data.get("to", "")[:10000],
            cc=form.data.get("cc", "")[:10000],
            subject=(form.data.get("subject", "") or "")[:998],
            body_html=body_html,
            body_text=form.data.get("body_text", ""),
            is_html=is_html,
            priority_high=bool(data.get("priority_high")),
            confidential=bool(data.get("confidential")),
            receipt_type=data.get("receipt_type") or Message.ReceiptType.COMPLETE,
            in_reply_to=in_reply_to,
            forward_of=forward_of,
            attachments=uploads,
        )
    except ValidationError as exc:
        form.add_error(None, exc)
    if form.errors and (sending or not draft):
        if _wants_json(request):
            return JsonResponse({"errors": form.errors.get_json_data(), **_draft_json(draft)}, status=422)
        return _page(request, mailbox=mailbox, form=form, draft=draft, status=422)
    if sending and draft is not None:
        sent = services.draft_send(draft=draft)
        flash.success(request, _("Message sent: the receipts will appear here."))
        return redirect("mail:read", sent.pk)
    if _wants_json(request):
        return JsonResponse(_draft_json(draft))
    flash.success(request, _("Draft saved."))
    return redirect("mail:draft", draft.pk)


def _draft_json(draft: Draft | None) -> dict:
    if draft is None:
        return {}
    return {
        "draft": draft.pk,
        "url": reverse("mail:draft", args=[draft.pk]),
        "attachments_url": reverse("mail:draft_attachments", args=[draft.pk]),
        "saved": date_format(timezone.localtime(draft.updated_at), "TIME_FORMAT"),
        "attachments": [_attachment_json(a) for a in draft.attachments.all()],
    }


def _attachment_json(attachment) -> dict:
    return {
        "id": attachment.pk,
        "filename": attachment.filename,
        "size": attachment.size,
        "content_type": attachment.content_type,
        "remove_url": reverse("mail:draft_attachment_remove", args=[attachment.draft_id, attachment.pk]),
    }


@require_POST
@login_required
def draft_attachments(request: AuthenticatedHttpRequest, draft_id: int) -> HttpResponse:
    """Add the uploaded files (XHR with progress, or a plain form post) to a draft."""
    draft = selectors.draft_get(user=request.user, draft_id=draft_id)
    uploads = request.FILES.getlist("attach")
    if not uploads:
        return JsonResponse({"error": _("Choose at least one file.")}, status=422)
    for upload in uploads:
        services.draft_attachment_add(draft=draft, upload=upload)
    if _wants_json(request):
        return JsonResponse(_draft_json(draft))
    return redirect("mail:draft", draft.pk)


@require_POST
@login_required
def draft_attachment_remove(
    request: AuthenticatedHttpRequest, draft_id: int, attachment_id: int
) -> HttpResponse:
    draft = selectors.draft_get(user=request.user, draft_id=draft_id)
    attachment = draft.attachments.filter(pk=attachment_id).first()
    if attachment is None:
        return HttpResponse(status=404)
    services.draft_attachment_remove(attachment=attachment)
    if _wants_json(request):
        return JsonResponse(_draft_json(draft))
    return redirect("mail:draft", draft.pk)


@require_POST
@login_required
def draft_discard(request: AuthenticatedHttpRequest, draft_id: int) -> HttpResponse:
    draft = selectors.draft_get(user=request.user, draft_id=draft_id)
    mailbox = draft.mailbox
    services.draft_delete(draft=draft)
    flash.success(request, _("Draft discarded."))
    return redirect("mail:folder", system_folder(mailbox=mailbox, role=Folder.Role.DRAFTS).pk)


# --- Reply, reply all, forward -----------------------------------------------------------


def _original(message: Message) -> tuple[str, str, str, list[str], list[str]]:
    """(subject, sender, text, to, cc) of what the user sees: the postacert.eml of a PEC."""
    try:
        shown = message_parts(raw_get(message.raw_sha256)).display
    except RawMissing:
        return (
            message.subject,
            message.from_address,
            message.preview,
            message.to_addresses,
            message.cc_addresses,
        )
    certified = message.certified_data or {}
    sender = certified.get("mittente") or shown.from_address or message.from_address
    return shown.subject or message.subject, sender, shown.text, shown.to, shown.cc


def _signature(mailbox: Mailbox) -> tuple[str, str]:
    """The Options signature as (HTML, text) to start a new body with; ("", "") when none."""
    signature, is_html = signature_for(mailbox)
    if not signature.strip():
        return "", ""
    if is_html:
        html = sanitize_html(signature, show_remote_images=True).html
        return f"<p><br></p><p>-- </p>{html}", "\n\n-- \n" + html_to_text(html)
    lines = "<br>".join(escape(line) for line in signature.splitlines())
    return f"<p><br></p><p>-- <br>{lines}</p>", f"\n\n-- \n{signature}"


def _prefixed(prefix: str, subject: str) -> str:
    return subject if subject.lower().startswith(prefix.lower()) else f"{prefix} {subject}".strip()


def _quote_html(sender: str, when, text: str) -> str:
    header = _("On %(date)s, %(sender)s wrote:") % {
        "date": date_format(timezone.localtime(when), "DATETIME_FORMAT"),
        "sender": sender,
    }
    lines = "<br>".join(escape(line) for line in text.splitlines())
    return f"<p><br></p><p>{escape(header)}</p><blockquote>{lines}</blockquote>"


def _quote_text(sender: str, when, text: str) -> str:
    header = _("On %(date)s, %(sender)s wrote:") % {
        "date": date_format(timezone.localtime(when), "DATETIME_FORMAT"),
        "sender": sender,
    }
    return "\n\n" + header + "\n" + "\n".join(f"> {line}" for line in text.splitlines())


@require_GET
@login_required
def reply(request: AuthenticatedHttpRequest, message_id: int, everyone: bool = False) -> HttpResponse:
    message = selectors.message_get(user=request.user, message_id=message_id)
    mailbox = message.mailbox
    subject, sender, text, to, cc = _original(message)
    recipients = [sender]
    copies: list[str] = []
    if everyone:
        own = mailbox.address.lower()
        recipients += [a for a in to if a.lower() not in (own, sender.lower())]
        copies = [a for a in cc if a.lower() != own and a not in recipients]
    initial = {
        "to": ", ".join(recipients),
        "cc": ", ".join(copies),
        "subject": _prefixed("Re:", subject),
        "body_format": "html",
        "body_html": _signature(mailbox)[0] + _quote_html(sender, message.date, text),
        "body_text": _signature(mailbox)[1] + _quote_text(sender, message.date, text),
        "receipt_type": default_receipt_type_for(request.user),
        "in_reply_to": message.pk,
    }
    return _page(request, mailbox=mailbox, form=ComposeForm(initial=initial), draft=None, reply_to=message)


@require_GET
@login_required
def forward(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    message = selectors.message_get(user=request.user, message_id=message_id)
    subject, _sender, _text, _to, _cc = _original(message)
    initial = {
        "subject": _prefixed("Fwd:", subject),
        "body_format": "html",
        "body_html": _signature(message.mailbox)[0],
        "body_text": _signature(message.mailbox)[1],
        "receipt_type": default_receipt_type_for(request.user),
        "forward_of": message.pk,
    }
    return _page(
        request, mailbox=message.mailbox, form=ComposeForm(initial=initial), draft=None, forward_of=message
    )
