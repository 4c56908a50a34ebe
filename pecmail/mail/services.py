"""Writes of the Messages tab."""

from __future__ import annotations

import email.message
import email.policy
import email.utils
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import validate_email
from django.db import router, transaction
from django.db.models.signals import post_save
from django.utils import timezone
from django.utils.translation import gettext as _

from pecmail.accounts.models import User
from pecmail.certification import mimebytes
from pecmail.lib.prepared import PreparedRead
from pecmail.lib.rows import rows_insert

from . import parsing, storage
from .models import Draft, DraftAttachment, Folder, Mailbox, Message


@transaction.atomic
def mailbox_create(*, address: str, password: str | None, display_name: str = "") -> Mailbox:
    """Create a mailbox, its owner (who logs in with the address) and its system folders.

    Raises ValidationError if the address is invalid or already taken.
    """
    address = address.strip().lower()
    validate_email(address)
    if Mailbox.objects.filter(address=address).exists() or User.objects.filter(email=address).exists():
        raise ValidationError(f"{address} already exists.")
    first, _sep, last = display_name.partition(" ")
    owner = User.objects.create_user(email=address, password=password, first_name=first, last_name=last)
    mailbox = Mailbox.objects.create(address=address, owner=owner, display_name=display_name)
    folders_ensure(mailbox=mailbox)
    return mailbox


def folders_ensure(*, mailbox: Mailbox) -> None:
    """Create the system folders a mailbox lacks (Inbox, Sent, Drafts, Trash)."""
    for role in Folder.SYSTEM_ROLES:
        Folder.objects.get_or_create(mailbox=mailbox, role=role, defaults={"name": str(role.label)})


# --- Storing messages -------------------------------------------------------------------

# Kinds whose list row shows the carried message (postacert.eml); the others are about themselves.
DISPLAY_INNER_KINDS = (
    Message.Kind.CERTIFIED,
    Message.Kind.ANOMALY,
    Message.Kind.ORDINARY,
    Message.Kind.SUBMITTED,
)


# Every message filed and every submission reads one: compiled once (``PreparedRead``).
_FOLDER = PreparedRead(lambda mailbox_id, role: Folder.objects.filter(mailbox_id=mailbox_id, role=role))


def folder_of(mailbox: Mailbox, role: str) -> Folder:
    """One of the mailbox's system folders (every mailbox has each: ``Folder.DoesNotExist`` if not)."""
    folder = _FOLDER.first(mailbox.pk, role)
    if folder is None:
        raise Folder.DoesNotExist(f"mailbox {mailbox.pk} has no {role} folder")
    return folder


def message_store(
    *,
    mailbox: Mailbox,
    raw: bytes,
    kind: str | None = None,
    folder: Folder | None = None,
    related: Message | None = None,
    recipient: str = "",
    classification: Any = None,
    **fields: Any,
) -> Message:
    """Store ``raw`` byte-exact and file a Message for it (Inbox unless ``folder``).

    Display metadata comes from the message itself, or from its postacert.eml for a PEC
    envelope. ``classification`` (a certification.classify.Classification) fills the PEC
    kind, identifiers, signature verdict and certified data when given. ``fields`` override
    any parsed value. Raises IntegrityError when a unique constraint says it is a duplicate.
    """
    sha256 = storage.raw_put(raw)
    parsed = parsing.message_parts(raw)
    shown = parsed.display
    if parsed.from_address:
        outer_senders = [(parsed.from_name, parsed.from_address)]
    else:  # the walk gave up on the body: read the header block alone
        outer_senders = parsing.addresses(parsing.parse_bytes(raw[: mimebytes.header_end(raw)]), "From")
    values: dict[str, Any] = {
        "subject": shown.subject[:10000],
        "from_name": (shown.from_name or (outer_senders[0][0] if outer_senders else ""))[:320],
        "from_address": (shown.from_address or (outer_senders[0][1] if outer_senders else ""))[:320],
        "to_addresses": shown.to or parsed.to,
        "cc_addresses": shown.cc or parsed.cc,
        "date": parsed.date or shown.date or timezone.now(),
        "message_id": parsed.message_id[:998],
        "priority_high": shown.priority_high,
        "confidential": shown.confidential,
        "attachment_count": len(shown.attachments),
        "has_html": shown.html is not None,
        "preview": parsing.preview_of(shown),
        "kind": kind or Message.Kind.ORDINARY,
    }
    if classification is not None:
        values.update(_classification_fields(classification))
        if kind:
            values["kind"] = kind
    if values["kind"] not in DISPLAY_INNER_KINDS:
        # A receipt is about the envelope, not about its own text/daticert/p7s parts.
        values["subject"] = parsed.subject[:10000]
        values["from_name"] = (outer_senders[0][0] if outer_senders else "")[:320]
        values["from_address"] = (outer_senders[0][1] if outer_senders else "")[:320]
        values["attachment_count"] = len(parsed.attachments)
        values["preview"] = parsing.preview_of(parsed)
        values["has_html"] = parsed.html is not None
    values.update(fields)
    if folder is None:
        folder = folder_of(mailbox, Folder.Role.INBOX)
    message = Message(
        mailbox=mailbox,
        folder=folder,
        raw_sha256=sha256,
        size=len(raw),
        related=related,
        recipient=recipient,
        **values,
    )
    # The search index (post_save) reads the text from this walk instead of parsing the bytes again.
    message._parsed_raw = (sha256, parsed)
    # What save(force_insert=True) does, through an INSERT compiled once (``rows_insert``):
    # every message filed on every path comes here. Message has no pre_save receivers and no
    # save() of its own; the post_save receivers (the search index) run as after a save.
    using = router.db_for_write(Message)
    with transaction.mark_for_rollback_on_error(using=using):
        rows_insert([message], using=using)
    post_save.send(sender=Message, instance=message, created=True, update_fields=None, raw=False, using=using)
    if folder.role == Folder.Role.INBOX and message.kind != Message.Kind.SUBMITTED:
        from .pipeline import message_delivered

        message_delivered.send(sender=Message, message_id=message.pk, kind=message.kind)
    return message


def _classification_fields(classification: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    kind = getattr(classification, "kind", "") or ""
    if kind in Message.Kind.values:
        values["kind"] = kind
    elif kind == "malformed":
        values["kind"] = Message.Kind.ORDINARY
    if getattr(classification, "receipt_type", None):
        values["receipt_type"] = classification.receipt_type
    if getattr(classification, "pec_id", None):
        values["pec_id"] = classification.pec_id[:255]
    if getattr(classification, "client_msgid", None):
        values["client_msgid"] = classification.client_msgid[:998]
    signature = getattr(classification, "signature", None)
    if signature is not None and getattr(signature, "signed", False):
        values["signature_valid"] = bool(signature.valid and signature.trusted)
        provider = getattr(signature, "provider", None)
        values["signer_provider"] = (provider.name if provider is not None else "")[:200]
    try:
        values["certified_data"] = classification.to_json()
    except Exception:  # noqa: BLE001 - display data only; the raw bytes stay the evidence
        values["certified_data"] = {}
    return values


# --- Composing and submitting -----------------------------------------------------------


def original_build(
    *,
    mailbox: Mailbox,
    to: list[str],
    cc: list[str],
    subject: str,
    body_text: str,
    body_html: str | None,
    attachments: list[tuple[str, str, bytes]],
    priority_high: bool = False,
    confidential: bool = False,
    receipt_type: str = "completa",
    in_reply_to: Message | None = None,
    when: datetime | None = None,
    extra_headers: dict[str, str] | None = None,
) -> tuple[bytes, str]:
    """The RFC 5322 original message as the client submits it, and its client Message-ID."""
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = mailbox.from_header
    if to:
        msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(timezone.localtime(when or timezone.now()))
    domain = mailbox.address.rpartition("@")[2] or settings.PEC_DOMAIN
    message_id = email.utils.make_msgid(domain=domain)
    msg["Message-ID"] = message_id
    if in_reply_to is not None and in_reply_to.message_id:
        msg["In-Reply-To"] = f"<{in_reply_to.message_id}>"
        msg["References"] = f"<{in_reply_to.message_id}>"
    if priority_high:
        msg["Importance"] = "high"
        msg["X-Priority"] = "1 (Highest)"
    if confidential:
        msg["Sensitivity"] = "Company-Confidential"
    msg["X-TipoRicevuta"] = receipt_type or "completa"
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    msg.set_content(body_text or "")
    if body_html is not None:
        msg.add_alternative(body_html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, _sep, subtype = (content_type or "").partition("/")
        if not maintype or not subtype or maintype in ("multipart", "message", "text"):
            # Texts and nested messages travel as opaque bytes: their exact content is evidence.
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=email.policy.SMTP), message_id.strip("<>")


def _clean_addresses(values: list[str] | tuple[str, ...] | None) -> list[str]:
    result: list[str] = []
    for value in values or ():
        address = value.strip().lower()
        if address and address not in result:
            result.append(address)
    return result


@transaction.atomic
def message_submit(
    *,
    mailbox: Mailbox,
    to: list[str],
    cc: list[str],
    subject: str,
    body_text: str,
    body_html: str | None,
    attachments: list[tuple[str, str, bytes]],
    priority_high: bool = False,
    confidential: bool = False,
    receipt_type: str = "completa",
    bcc: list[str] | tuple[str, ...] = (),
    rcpt: list[str] | None = None,
    in_reply_to: Message | None = None,
    extra_headers: dict[str, str] | None = None,
) -> Message:
    """Store the original in Sent (kind SUBMITTED) and hand it to the pipeline after commit.

    The formal checks run in ``pipeline.message_accept``: a refused submission still leaves
    this Sent copy, with an avviso di non accettazione linked to it.
    """
    to, cc = _clean_addresses(to), _clean_addresses(cc)
    if receipt_type not in ("completa", "breve", "sintetica"):
        receipt_type = "completa"
    raw, client_msgid = original_build(
        mailbox=mailbox,
        to=to,
        cc=cc,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        attachments=attachments,
        priority_high=priority_high,
        confidential=confidential,
        receipt_type=receipt_type,
        in_reply_to=in_reply_to,
        extra_headers=extra_headers,
    )
    sent = message_store(
        mailbox=mailbox,
        raw=raw,
        kind=Message.Kind.SUBMITTED,
        folder=folder_of(mailbox, Folder.Role.SENT),
        seen=True,
        client_msgid=client_msgid,
        receipt_type=receipt_type,
        to_addresses=to,
        cc_addresses=cc,
        rcpt_addresses=_clean_addresses(rcpt) if rcpt is not None else None,
        bcc_addresses=_clean_addresses(bcc),
        submission_state=Message.Submission.PENDING,
    )
    from . import tasks

    tasks.message_accept.delay_on_commit(sent.pk)
    return sent


# --- Drafts -----------------------------------------------------------------------------


def split_addresses(text: str) -> list[str]:
    """Addresses typed in a To/Cc field ("a@x, Name <b@y>; c@z"), lower-cased, in order."""
    pairs = email.utils.getaddresses([text.replace(";", ",")])
    return _clean_addresses([address for _name, address in pairs if address])


@transaction.atomic
def draft_save(
    *,
    mailbox: Mailbox,
    draft: Draft | None = None,
    to: str = "",
    cc: str = "",
    subject: str = "",
    body_html: str = "",
    body_text: str = "",
    is_html: bool = True,
    priority_high: bool = False,
    confidential: bool = False,
    receipt_type: str = "completa",
    in_reply_to: Message | None = None,
    forward_of: Message | None = None,
    attachments: list[UploadedFile] | tuple[UploadedFile, ...] = (),
) -> Draft:
    """Create or update a draft and add ``attachments`` to it (existing ones are kept)."""
    if draft is not None and draft.mailbox_id != mailbox.pk:
        raise ValidationError(_("This draft belongs to another mailbox."))
    for related in (in_reply_to, forward_of):
        if related is not None and related.mailbox_id != mailbox.pk:
            raise ValidationError(_("That message belongs to another mailbox."))
    if receipt_type not in ("completa", "breve", "sintetica"):
        raise ValidationError(_("Unknown receipt type."))
    draft = draft or Draft(mailbox=mailbox)
    draft.to, draft.cc, draft.subject = to, cc, subject
    draft.body_html, draft.body_text, draft.is_html = body_html, body_text, is_html
    draft.priority_high, draft.confidential, draft.receipt_type = priority_high, confidential, receipt_type
    if in_reply_to is not None:
        draft.in_reply_to = in_reply_to
    if forward_of is not None:
        draft.forward_of = forward_of
    draft.save()
    for upload in attachments:
        draft_attachment_add(draft=draft, upload=upload)
    return draft


def draft_attachment_add(*, draft: Draft, upload: UploadedFile) -> DraftAttachment:
    filename = parsing.safe_filename(upload.name or "attachment") or "attachment"
    attachment = DraftAttachment(
        draft=draft,
        filename=filename[:255],
        content_type=(getattr(upload, "content_type", None) or "application/octet-stream")[:255],
        size=upload.size or 0,
    )
    attachment.file.save(filename, upload, save=False)
    attachment.save()
    return attachment


def draft_attachment_remove(*, attachment: DraftAttachment) -> None:
    attachment.file.delete(save=False)
    attachment.delete()


def draft_delete(*, draft: Draft) -> None:
    for attachment in draft.attachments.all():
        attachment.file.delete(save=False)
    draft.delete()


@transaction.atomic
def draft_send(*, draft: Draft) -> Message:
    """Submit the draft (forwarding attaches the original's raw bytes as .eml) and delete it."""
    attachments: list[tuple[str, str, bytes]] = []
    for attachment in draft.attachments.all():
        with attachment.file.open("rb") as handle:
            attachments.append((attachment.filename, attachment.content_type, handle.read()))
    if draft.forward_of is not None:
        original = draft.forward_of
        name = parsing.safe_filename(original.subject or "message")[:80] or "message"
        attachments.append((f"{name}.eml", "application/octet-stream", storage.raw_get(original.raw_sha256)))
    body_html = draft.body_html if draft.is_html else None
    body_text = draft.body_text or (parsing.html_to_text(draft.body_html) if draft.is_html else "")
    sent = message_submit(
        mailbox=draft.mailbox,
        to=split_addresses(draft.to),
        cc=split_addresses(draft.cc),
        subject=draft.subject,
        body_text=body_text,
        body_html=body_html,
        attachments=attachments,
        priority_high=draft.priority_high,
        confidential=draft.confidential,
        receipt_type=draft.receipt_type,
        in_reply_to=draft.in_reply_to,
    )
    draft_delete(draft=draft)
    return sent


# --- Organising -------------------------------------------------------------------------


def message_move(*, message: Message, folder: Folder) -> Message:
    if folder.mailbox_id != message.mailbox_id:
        raise ValidationError(_("That folder belongs to another mailbox."))
    Message.objects.filter(pk=message.pk).update(folder=folder)
    message.folder = folder
    return message


def message_delete(*, message: Message) -> None:
    """Move to Trash; a message already in Trash is deleted (its raw bytes stay as evidence)."""
    trash = Folder.objects.get(mailbox_id=message.mailbox_id, role=Folder.Role.TRASH)
    if message.folder_id == trash.pk:
        message.delete()
    else:
        message_move(message=message, folder=trash)


def trash_empty(*, mailbox: Mailbox) -> int:
    """Delete every message in the mailbox's Trash; returns how many."""
    _total, detail = Message.objects.filter(mailbox=mailbox, folder__role=Folder.Role.TRASH).delete()
    return detail.get(Message._meta.label, 0)


def message_mark(
    *, messages: Iterable[Message], seen: bool | None = None, flagged: bool | None = None
) -> int:
    """Set the seen and/or flagged flags of ``messages``; returns how many rows changed."""
    changes: dict[str, bool] = {}
    if seen is not None:
        changes["seen"] = seen
    if flagged is not None:
        changes["flagged"] = flagged
    ids = [m.pk for m in messages]
    if not changes or not ids:
        return 0
    count = Message.objects.filter(pk__in=ids).update(**changes)
    for message in messages:
        for name, value in changes.items():
            setattr(message, name, value)
    return count


# --- Folders ----------------------------------------------------------------------------


def _folder_name_clean(*, mailbox: Mailbox, name: str, exclude: Folder | None = None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError(_("A folder needs a name."))
    if len(name) > 100:
        raise ValidationError(_("Folder names are at most 100 characters."))
    if "/" in name:
        raise ValidationError(_("Folder names cannot contain “/”."))
    taken = Folder.objects.filter(mailbox=mailbox, name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    system_names = {str(role.label).lower() for role in Folder.SYSTEM_ROLES}
    system_names |= {role.value for role in Folder.SYSTEM_ROLES}
    if taken.exists() or name.lower() in system_names:
        raise ValidationError(_("A folder with this name already exists."))
    return name


def folder_create(*, mailbox: Mailbox, name: str) -> Folder:
    name = _folder_name_clean(mailbox=mailbox, name=name)
    return Folder.objects.create(mailbox=mailbox, name=name, role=Folder.Role.USER)


def folder_rename(*, folder: Folder, name: str) -> Folder:
    if folder.role != Folder.Role.USER:
        raise ValidationError(_("System folders cannot be renamed."))
    folder.name = _folder_name_clean(mailbox=folder.mailbox, name=name, exclude=folder)
    folder.save(update_fields=["name"])
    return folder


@transaction.atomic
def folder_delete(*, folder: Folder) -> None:
    """Delete a user folder; its messages go to Trash first."""
    if folder.role != Folder.Role.USER:
        raise ValidationError(_("System folders cannot be deleted."))
    trash = Folder.objects.get(mailbox_id=folder.mailbox_id, role=Folder.Role.TRASH)
    Message.objects.filter(folder=folder).update(folder=trash)
    folder.delete()
