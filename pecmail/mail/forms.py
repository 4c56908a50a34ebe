"""Forms of the Messages tab: validation only, no business rule (services decide)."""

from __future__ import annotations

import email.utils

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import Folder, Mailbox, Message


def parse_address_list(value: str) -> list[str]:
    """Bare, lower-cased addresses of a To/Cc field ("a@x.it, Name <b@y.it>; c@z.it"), in order.

    Raises ValidationError naming every address that is not valid.
    """
    if not value or not value.strip():
        return []
    chunks = [c for c in value.replace(";", ",").replace("\n", ",").split(",") if c.strip()]
    found: list[str] = []
    invalid: list[str] = []
    for chunk in chunks:
        pairs = email.utils.getaddresses([chunk])
        address = pairs[0][1].strip().lower() if len(pairs) == 1 else ""
        try:
            validate_email(address)
        except ValidationError:
            invalid.append(chunk.strip())
            continue
        if address not in found:
            found.append(address)
    if invalid:
        raise ValidationError(
            _("Not a valid address: %(addresses)s"), code="invalid", params={"addresses": ", ".join(invalid)}
        )
    return found


class AddressListField(forms.CharField):
    widget = forms.TextInput

    def to_python(self, value: str | None) -> list[str]:  # type: ignore[override]
        return parse_address_list(super().to_python(value) or "")

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")


RECEIPT_CHOICES = [
    (Message.ReceiptType.COMPLETE.value, _("Complete")),
    (Message.ReceiptType.SHORT.value, _("Short")),
    (Message.ReceiptType.SYNTHETIC.value, _("Synthetic")),
]


class ComposeForm(forms.Form):
    """One PEC to write. There is deliberately no Bcc: PEC refuses blind recipients."""

    to = AddressListField(label=_("To"), required=False)
    cc = AddressListField(label=_("Cc"), required=False)
    subject = forms.CharField(label=_("Subject"), required=False, max_length=998)
    body_format = forms.ChoiceField(
        label=_("Format"),
        choices=[("html", _("Rich text (HTML)")), ("text", _("Plain text"))],
        initial="html",
        widget=forms.RadioSelect,
    )
    body_html = forms.CharField(required=False, widget=forms.HiddenInput, strip=False)
    body_text = forms.CharField(label=_("Message"), required=False, widget=forms.Textarea, strip=False)
    priority_high = forms.BooleanField(label=_("Priority"), required=False)
    confidential = forms.BooleanField(label=_("Confidential"), required=False)
    receipt_type = forms.ChoiceField(
        label=_("Receipt type"),
        choices=RECEIPT_CHOICES,
        initial=Message.ReceiptType.COMPLETE,
        widget=forms.RadioSelect,
    )
    in_reply_to = forms.IntegerField(required=False, widget=forms.HiddenInput)
    forward_of = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, sending: bool = False, attachments_size: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sending = sending
        self.attachments_size = attachments_size

    def clean(self) -> dict:
        data = super().clean()
        if not self.sending:
            return data
        to, cc = data.get("to") or [], data.get("cc") or []
        if "to" not in self.errors and not to:
            self.add_error("to", _("Add at least one recipient."))
        recipients = len(set(to) | set(cc))
        limit = getattr(settings, "PEC_MAX_RECIPIENTS", 500)
        if recipients > limit:
            self.add_error(
                None,
                ngettext(
                    "At most %(limit)d recipient is allowed.",
                    "At most %(limit)d recipients are allowed.",
                    limit,
                )
                % {"limit": limit},
            )
        body = data.get("body_html") if data.get("body_format") == "html" else data.get("body_text")
        estimate = (
            self.attachments_size * 4 // 3 + len((body or "").encode()) + len(data.get("subject") or "")
        )
        total_limit = getattr(settings, "PEC_MAX_TOTAL_SIZE", 100 * 1024 * 1024)
        if recipients and estimate * recipients > total_limit:
            self.add_error(
                None,
                _("The message is too large: its size times %(n)d recipients exceeds %(limit)s MB.")
                % {"n": recipients, "limit": total_limit // (1024 * 1024)},
            )
        return data


class FolderForm(forms.Form):
    """A folder name; whether it is free is the service's rule (``folder_create``/``folder_rename``)."""

    name = forms.CharField(label=_("Folder name"), max_length=100)

    def __init__(self, *args, mailbox: Mailbox, folder: Folder | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mailbox = mailbox
        self.folder = folder


class MoveForm(forms.Form):
    folder = forms.ModelChoiceField(label=_("Move to"), queryset=Folder.objects.none())

    def __init__(self, *args, mailbox: Mailbox, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Drafts hold drafts, not messages: nothing is moved there.
        self.fields["folder"].queryset = Folder.objects.filter(mailbox=mailbox).exclude(
            role=Folder.Role.DRAFTS
        )


class BulkForm(MoveForm):
    """An action on the messages ticked in a list (the ids are fetched through the selectors)."""

    ACTIONS = [
        ("move", _("Move")),
        ("delete", _("Delete")),
        ("read", _("Mark read")),
        ("unread", _("Mark unread")),
        ("flag", _("Flag")),
        ("unflag", _("Unflag")),
    ]
    action = forms.ChoiceField(choices=ACTIONS)

    def __init__(self, *args, mailbox: Mailbox, **kwargs) -> None:
        super().__init__(*args, mailbox=mailbox, **kwargs)
        self.fields["folder"].required = False

    def clean(self) -> dict:
        data = super().clean()
        if data.get("action") == "move" and not data.get("folder"):
            self.add_error("folder", _("Choose a folder."))
        return data
