"""Forms of the Options tab."""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from pecmail.mail.models import Folder, Mailbox

from .models import Preferences, Rule


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    names = sorted(
        n for n in zoneinfo.available_timezones() if "/" in n and not n.startswith(("Etc/", "SystemV/"))
    )
    return [("UTC", "UTC"), *((name, name.replace("_", " ")) for name in names)]


class GeneralForm(forms.Form):
    display_name = forms.CharField(
        label=_("Display name"),
        max_length=200,
        required=False,
        help_text=_("Shown in the From of the messages you send."),
    )
    accept_ordinary_mail = forms.TypedChoiceField(
        label=_("Mail from outside PEC"),
        choices=[
            ("1", _("Accept it, delivered inside an anomaly envelope")),
            ("0", _("Refuse it")),
        ],
        coerce=lambda value: value == "1",
        widget=forms.RadioSelect,
    )
    signature = forms.CharField(
        label=_("Signature"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    signature_is_html = forms.BooleanField(label=_("The signature is HTML"), required=False)
    language = forms.ChoiceField(label=_("Language"), required=False)
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False)
    page_size = forms.TypedChoiceField(
        label=_("Messages per page"), coerce=int, choices=[(n, str(n)) for n in Preferences.PAGE_SIZES]
    )
    receipt_type = forms.ChoiceField(
        label=_("Default receipt type"), choices=Preferences._meta.get_field("receipt_type").choices
    )
    reading_pane = forms.ChoiceField(label=_("Reading pane"), choices=Preferences.ReadingPane.choices)
    receipts = forms.ChoiceField(label=_("Receipts"), choices=Preferences.Receipts.choices)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [("", _("As the browser asks")), *settings.LANGUAGES]
        self.fields["time_zone"].choices = [
            ("", _("Server default (%(zone)s)") % {"zone": settings.TIME_ZONE}),
            *time_zone_choices(),
        ]

    @classmethod
    def initial_for(cls, *, mailbox: Mailbox, prefs: Preferences) -> dict[str, Any]:
        return {
            "display_name": mailbox.display_name,
            "accept_ordinary_mail": "1" if mailbox.accept_ordinary_mail else "0",
            "signature": prefs.signature,
            "signature_is_html": prefs.signature_is_html,
            "language": prefs.language,
            "time_zone": prefs.time_zone,
            "page_size": prefs.page_size,
            "receipt_type": prefs.receipt_type,
            "reading_pane": prefs.reading_pane,
            "receipts": prefs.receipts,
        }

    def clean_signature(self) -> str:
        return self.cleaned_data["signature"].strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("signature_is_html") and data.get("signature"):
            from pecmail.mail.sanitize import sanitize_html

            # Stored already safe: compose puts it into the body as it is.
            data["signature"] = sanitize_html(data["signature"], show_remote_images=True).html
        return data


class NotificationAddressForm(forms.Form):
    address = forms.EmailField(label=_("Ordinary e-mail address"), max_length=254)


class RuleForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = [
            "name",
            "field",
            "operator",
            "value",
            "forward_to",
            "move_to",
            "mark_read",
            "flag",
            "active",
        ]
        labels = {
            "name": _("Rule name"),
            "field": _("Select"),
            "operator": _("Match"),
            "value": _("Text"),
            "forward_to": _("Forward to address"),
            "move_to": _("Move to folder"),
            "mark_read": _("Mark as read"),
            "flag": _("Flag"),
            "active": _("Active"),
        }
        help_texts = {
            "value": _("For a PEC kind: e.g. posta-certificata, anomalia, avvenuta-consegna."),
            "forward_to": _(
                "A PEC address receives it as PEC; any other address as ordinary e-mail with the original attached."
            ),
        }

    def __init__(self, *args: Any, mailbox: Mailbox, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["move_to"].queryset = Folder.objects.filter(mailbox=mailbox).exclude(
            role__in=[Folder.Role.SENT, Folder.Role.DRAFTS]
        )
        self.fields["move_to"].empty_label = _("(do not move)")
        # The folder's own name in the user's language ("Posta in arrivo"), not "address/inbox".
        self.fields["move_to"].label_from_instance = lambda folder: folder.display_name
        self.fields["value"].required = False
