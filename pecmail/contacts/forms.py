"""Forms of the Contacts tab: they validate; services write."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import URLValidator
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from pecmail.accounts.models import User

from . import formats
from .models import Contact, ContactAddress, ContactGroup, ContactPhone


def import_max_bytes() -> int:
    return int(getattr(settings, "CONTACTS_IMPORT_MAX_BYTES", 2 * 1024 * 1024))


class ContactForm(forms.ModelForm):
    website = forms.URLField(
        label=_("Website"),
        required=False,
        max_length=500,
        assume_scheme="https",
        # Only web links: a javascript: or data: URL must never become a link.
        validators=[URLValidator(schemes=["http", "https"])],
    )
    groups = forms.ModelMultipleChoiceField(
        label=_("Groups"),
        queryset=ContactGroup.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Contact
        fields = [
            "first_name",
            "last_name",
            "company",
            "job_title",
            "vat_number",
            "tax_code",
            "street",
            "postal_code",
            "city",
            "region",
            "country",
            "website",
            "notes",
            "favourite",
            "groups",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args: Any, owner: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = ContactGroup.objects.filter(owner=owner)


class AddressForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=ContactAddress.Kind.choices)
    address = forms.EmailField(label=_("Address"), required=False, max_length=254)


class PhoneForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=ContactPhone.Kind.choices)
    number = forms.CharField(label=_("Number"), required=False, max_length=50)


AddressFormSet = forms.formset_factory(AddressForm, extra=1, max_num=50, absolute_max=50)
PhoneFormSet = forms.formset_factory(PhoneForm, extra=1, max_num=50, absolute_max=50)


def formset_rows(formset: forms.BaseFormSet, key: str) -> list[dict[str, str]]:
    """The filled rows of a valid formset."""
    return [
        {"kind": f.cleaned_data["kind"], key: f.cleaned_data[key].strip()}
        for f in formset.forms
        if f.cleaned_data.get(key, "").strip()
    ]


class ImportForm(forms.Form):
    file = forms.FileField(label=_("vCard (.vcf) or CSV file (Outlook, Gmail)"))

    def clean_file(self) -> formats.Parsed:
        upload = self.cleaned_data["file"]
        limit = import_max_bytes()
        if upload.size > limit:
            raise forms.ValidationError(
                _("This file is too large (%(size)s): the limit is %(limit)s.")
                % {"size": filesizeformat(upload.size), "limit": filesizeformat(limit)}
            )
        data = upload.read(limit + 1)
        name = (upload.name or "").lower()
        try:
            if name.endswith((".vcf", ".vcard")) or b"BEGIN:VCARD" in data[:4096].upper():
                parsed = formats.vcard_parse(data)
            else:
                parsed = formats.csv_parse(data)
        except formats.FormatError as error:
            raise forms.ValidationError(str(error)) from error
        if not parsed.records and not parsed.skipped:
            raise forms.ValidationError(_("This file contains no contacts."))
        return parsed


class ExportForm(forms.Form):
    FORMATS = [
        ("vcard3", _("vCard 3.0 (.vcf)")),
        ("vcard4", _("vCard 4.0 (.vcf)")),
        ("outlook", _("CSV for Outlook")),
        ("gmail", _("CSV for Gmail / Google Contacts")),
    ]
    format = forms.ChoiceField(label=_("Format"), choices=FORMATS)
    group = forms.ModelChoiceField(
        label=_("Group"), queryset=ContactGroup.objects.none(), required=False, empty_label=_("All contacts")
    )

    def __init__(self, *args: Any, owner: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = ContactGroup.objects.filter(owner=owner)


class GroupForm(forms.Form):
    name = forms.CharField(label=_("Group name"), max_length=100)


class AddFromAddressForm(forms.Form):
    address = forms.EmailField(max_length=254)
    name = forms.CharField(max_length=200, required=False)
