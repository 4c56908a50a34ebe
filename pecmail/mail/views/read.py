"""Reading a message: the page, the sandboxed body frame, attachments and the raw .eml."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email
import email.policy
import re
import unicodedata
from dataclasses import dataclass

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from pecmail.lib.http import AuthenticatedHttpRequest

from .. import selectors, services
from ..forms import MoveForm
from ..models import Delivery, Folder, Message
from ..parsing import ParsedMessage, attachment_bytes, message_parts
from ..sanitize import frame_document, linkify_text, sanitize_html
from ..storage import RawMissing, raw_get
from ._common import sidebar

# Served with their own type (still as attachments): formats no browser runs as code.
SAFE_DOWNLOAD_TYPES = {
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
    "text/csv",
    "application/zip",
    "application/pkcs7-mime",
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/msword",
    "application/vnd.ms-excel",
}
# The message frame: nothing may load or run; remote images only once the user asked.
FRAME_CSP = (
    "default-src 'none'; img-src data:{remote}; style-src 'unsafe-inline'; font-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
# A downloaded file opened in a tab still may not run anything.
DOWNLOAD_CSP = "default-src 'none'; sandbox"


def _raw(message: Message) -> bytes:
    try:
        return raw_get(message.raw_sha256)
    except RawMissing as exc:
        raise Http404("raw message missing") from exc


def _safe_filename(name: str, fallback: str) -> str:
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    # No control or bidi-override characters (they disguise "exe.pdf" as "fdp.exe").
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip(" .")[:200]
    return name or fallback


@dataclass
class DeliveryRow:
    """One recipient of a sent message and the receipt behind each step it went through."""

    delivery: Delivery
    steps: list[tuple[str, Message]]


STEP_KINDS = (
    Message.Kind.TAKE_CHARGE,
    Message.Kind.TIMEOUT,
    Message.Kind.DELIVERY,
    Message.Kind.DELIVERY_ERROR,
    Message.Kind.VIRUS_DETECTION,
)


def delivery_rows(deliveries: list[Delivery], receipts: list[Message]) -> list[DeliveryRow]:
    """Each recipient with its steps in time order: acceptance, take-charge, warnings, the outcome."""
    acceptance = next((r for r in receipts if r.kind == Message.Kind.ACCEPTANCE), None)
    rows = []
    for delivery in deliveries:
        steps: list[tuple[str, Message]] = []
        if acceptance is not None:
            steps.append((acceptance.get_kind_display(), acceptance))
        for receipt in receipts:
            if receipt.kind in STEP_KINDS and receipt.recipient.lower() == delivery.recipient.lower():
                steps.append((receipt.get_kind_display(), receipt))
        if delivery.receipt is not None and all(r.pk != delivery.receipt_id for _label, r in steps):
            steps.append((delivery.receipt.get_kind_display(), delivery.receipt))
        rows.append(DeliveryRow(delivery=delivery, steps=steps))
    return rows


def delivery_context(message: Message) -> dict:
    """The delivery section of a sent message; ``settled`` once nothing more is awaited.

    Until then the page asks ``mail:deliveries`` again now and then, so receipts show up
    without a reload: acceptance comes within seconds, delivery receipts from other
    providers within minutes, and a recipient can stay waiting for up to 24 hours.
    """
    if message.kind != Message.Kind.SUBMITTED:
        return {"deliveries": [], "receipts": [], "settled": True, "delivery_state": ""}
    receipts = selectors.receipts_for(message=message)
    deliveries = delivery_rows(selectors.deliveries_for(message=message), receipts)
    settled = message.submission_state != Message.Submission.PENDING and all(
        row.delivery.state != Delivery.State.QUEUED for row in deliveries
    )
    # What the section shows, in short: the page replaces the section only when this changes.
    state = "|".join(
        [
            message.submission_state,
            ",".join(
                f"{row.delivery.pk}:{row.delivery.state}:{row.delivery.receipt_id}" for row in deliveries
            ),
            ",".join(str(receipt.pk) for receipt in receipts),
        ]
    )
    return {"deliveries": deliveries, "receipts": receipts, "settled": settled, "delivery_state": state}


def _shown(message: Message, parsed: ParsedMessage) -> ParsedMessage:
    """What the reader sees: a PEC's original (postacert.eml), but a receipt's own text."""
    return parsed if message.is_receipt else parsed.display


def _daticert(message: Message) -> dict:
    """The certified data of daticert.xml as stored by the pipeline, with ``data`` as a datetime."""
    daticert = dict((message.certified_data or {}).get("daticert") or {})
    if daticert.get("data"):
        # An unreadable date is shown as it was written.
        with contextlib.suppress(TypeError, ValueError):
            daticert["data"] = dt.datetime.fromisoformat(daticert["data"])
    return daticert


@dataclass(frozen=True)
class Sender:
    """Who wrote a message, for "add sender to contacts"."""

    address: str
    name: str


def original_sender(message: Message, shown: ParsedMessage, daticert: dict) -> Sender | None:
    """The person behind ``message``: for a PEC the original sender (daticert's ``mittente``,
    the From of the inner postacert.eml), never the provider's posta-certificata@ envelope.

    None for receipts (the provider wrote them) and for the user's own sent copies.
    """
    if message.is_receipt or message.kind == Message.Kind.SUBMITTED:
        return None
    address = str(daticert.get("mittente") or shown.from_address or message.from_address or "").strip()
    if not address:
        return None
    # The display name only when it belongs to that address (an envelope's is "Per conto di: …").
    name = shown.from_name if shown.from_address.strip().lower() == address.lower() else ""
    return Sender(address=address, name=" ".join(name.split()))


def reader_context(request: AuthenticatedHttpRequest, message: Message) -> dict:
    """Everything the reading pane shows for ``message`` (opening it marks it read)."""
    if not message.seen:
        services.message_mark(messages=[message], seen=True)
        message.seen = True
    parsed = message_parts(_raw(message))
    shown = _shown(message, parsed)
    show_images = request.GET.get("images") == "1"
    daticert = _daticert(message)
    return {
        "message": message,
        "shown": shown,
        "sender": original_sender(message, shown, daticert),
        "text_html": linkify_text(shown.text) if shown.text else "",
        "has_html": bool(shown.html),
        "attachments": shown.attachments,
        "envelope_attachments": parsed.attachments if shown is not parsed else [],
        "daticert": daticert,
        **delivery_context(message),
        "move_form": MoveForm(mailbox=message.mailbox),
        "show_images": show_images,
        "images_url": "?" + urlencode({**request.GET.dict(), "images": "1"}),
        # Counted here too, so the "show images" offer appears only when something was withheld.
        "blocked_images": 0 if show_images or not shown.html else sanitize_html(shown.html).blocked_images,
        "is_sent": message.kind == Message.Kind.SUBMITTED,
    }


@require_GET
@login_required
def message_read(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    message = selectors.message_get(user=request.user, message_id=message_id)
    context = {
        "tab": "mail",
        "folder": message.folder,
        **sidebar(mailbox=message.mailbox),
        **reader_context(request, message),
    }
    return render(request, "mail/read.html", context)


@require_GET
@login_required
def message_deliveries(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    """The delivery section of one of the user's sent messages, alone (the page polls it)."""
    message = selectors.message_get(user=request.user, message_id=message_id)
    if message.kind != Message.Kind.SUBMITTED:
        raise Http404
    context = {"message": message, **delivery_context(message)}
    response = render(request, "mail/_deliveries.html", context)
    response["X-Delivery-State"] = context["delivery_state"]
    # The page stops asking once this is absent.
    if not context["settled"]:
        response["X-Poll"] = "continue"
    return response


INLINE_IMAGE_TYPES = {"image/png", "image/gif", "image/jpeg", "image/webp"}
INLINE_IMAGE_MAX = 2 * 1024 * 1024
INLINE_IMAGE_COUNT = 20


def _cid_images(raw: bytes) -> dict[str, str]:
    """Content-ID → data: URL of the message's own inline images, so the frame loads nothing."""
    found: dict[str, str] = {}
    try:
        for part in email.message_from_bytes(raw, policy=email.policy.compat32).walk():
            if len(found) >= INLINE_IMAGE_COUNT:
                break
            cid = (part.get("Content-ID") or "").strip().strip("<>")
            if not cid or part.get_content_type() not in INLINE_IMAGE_TYPES:
                continue
            data = part.get_payload(decode=True)
            if isinstance(data, bytes) and 0 < len(data) <= INLINE_IMAGE_MAX:
                found[cid] = f"data:{part.get_content_type()};base64,{base64.b64encode(data).decode()}"
    except Exception:  # noqa: BLE001 - inline images are a nicety; a broken message still shows
        return found
    return found


@require_GET
@login_required
def message_body(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    """The sanitised HTML body alone, for the reading pane's sandboxed frame."""
    message = selectors.message_get(user=request.user, message_id=message_id)
    raw = _raw(message)
    shown = _shown(message, message_parts(raw))
    show_images = request.GET.get("images") == "1"
    sanitized = sanitize_html(shown.html or "", show_remote_images=show_images, cid_images=_cid_images(raw))
    response = HttpResponse(frame_document(sanitized.html), content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = FRAME_CSP.format(remote=" https: http:" if show_images else "")
    # Only this view may be framed, and only by the app itself.
    response["X-Frame-Options"] = "SAMEORIGIN"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@login_required
def message_raw(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    message = selectors.message_get(user=request.user, message_id=message_id)
    response = HttpResponse(_raw(message), content_type="message/rfc822")
    name = _safe_filename(message.subject, "message")[:80] + ".eml"
    response["Content-Disposition"] = content_disposition_header(True, name)
    response["Content-Security-Policy"] = DOWNLOAD_CSP
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@login_required
def message_attachment(request: AuthenticatedHttpRequest, message_id: int, index: int) -> HttpResponse:
    message = selectors.message_get(user=request.user, message_id=message_id)
    try:
        filename, content_type, data = attachment_bytes(_raw(message), index)
    except KeyError as exc:
        raise Http404("no such attachment") from exc
    content_type = (content_type or "").lower()
    served_type = content_type if content_type in SAFE_DOWNLOAD_TYPES else "application/octet-stream"
    response = HttpResponse(data, content_type=served_type)
    response["Content-Disposition"] = content_disposition_header(True, _safe_filename(filename, "attachment"))
    response["Content-Security-Policy"] = DOWNLOAD_CSP
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@login_required
def message_move(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    message = selectors.message_get(user=request.user, message_id=message_id)
    form = MoveForm(request.POST, mailbox=message.mailbox)
    if not form.is_valid():
        flash.error(request, _("Choose a folder."))
        return redirect("mail:read", message.pk)
    origin = message.folder_id
    services.message_move(message=message, folder=form.cleaned_data["folder"])
    flash.success(request, _("Message moved."))
    return redirect("mail:folder", origin)


@require_POST
@login_required
def message_delete(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    message = selectors.message_get(user=request.user, message_id=message_id)
    origin = message.folder_id
    in_trash = message.folder.role == Folder.Role.TRASH
    services.message_delete(message=message)
    flash.success(request, _("Message deleted.") if in_trash else _("Message moved to the Trash."))
    return redirect("mail:folder", origin)


@require_POST
@login_required
def message_mark(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    """Flag/unflag or mark unread one message (the reading pane's buttons)."""
    message = selectors.message_get(user=request.user, message_id=message_id)
    what = request.POST.get("mark")
    if what == "unread":
        services.message_mark(messages=[message], seen=False)
        return redirect("mail:folder", message.folder_id)
    if what in ("flag", "unflag"):
        services.message_mark(messages=[message], flagged=what == "flag")
        return redirect(reverse("mail:read", args=[message.pk]))
    return HttpResponse(_("Unknown action."), status=422)
