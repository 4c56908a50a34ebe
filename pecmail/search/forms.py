"""The Search tab's form: the query, the message filters, the order and the page cursor."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pecmail.mail.models import Folder, Message

from .backends import ORDER_DATE, ORDER_RELEVANCE, MessageFilters
from .query import clean_query


class SearchForm(forms.Form):
    PRIORITIES = [("", _("Any priority")), ("high", _("High priority")), ("normal", _("Normal priority"))]
    ORDERS = [(ORDER_DATE, _("Newest first")), (ORDER_RELEVANCE, _("Most relevant first"))]

    # No max_length: a longer query is cut to MAX_QUERY_CHARS by clean_q, not refused.
    q = forms.CharField(label=_("Search for"), required=False, strip=True)
    folder = forms.ModelChoiceField(
        label=_("Folder"), queryset=Folder.objects.none(), required=False, empty_label=_("All folders")
    )
    date_from = forms.DateField(
        label=_("From date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    sender = forms.CharField(label=_("From"), required=False, max_length=320)
    recipient = forms.CharField(label=_("To or Cc"), required=False, max_length=320)
    subject = forms.CharField(label=_("Subject"), required=False, max_length=500)
    has_attachment = forms.BooleanField(label=_("Has attachments"), required=False)
    flagged = forms.BooleanField(label=_("Flagged"), required=False)
    unread = forms.BooleanField(label=_("Unread"), required=False)
    kind = forms.ChoiceField(label=_("PEC kind"), required=False)
    priority = forms.ChoiceField(label=_("Priority"), required=False, choices=PRIORITIES)
    order = forms.ChoiceField(label=_("Order"), required=False, choices=ORDERS)
    cursor = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def __init__(self, *args: object, folders: object = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["folder"].queryset = folders if folders is not None else Folder.objects.none()  # type: ignore[attr-defined]
        self.fields["folder"].label_from_instance = lambda f: (  # type: ignore[attr-defined]
            f"{f.mailbox.address} / {f.display_name}" if self._several_mailboxes else f.display_name
        )
        self._several_mailboxes = len({f.mailbox_id for f in self.fields["folder"].queryset}) > 1  # type: ignore[attr-defined]
        self.fields["kind"].choices = [("", _("Any kind")), *Message.Kind.choices]  # type: ignore[attr-defined]

    def clean_q(self) -> str:
        return clean_query(self.cleaned_data.get("q") or "")

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("The end date is before the start date."))
        return data

    @property
    def has_criteria(self) -> bool:
        return bool(self.cleaned_data.get("q")) or not self.filters().is_empty()

    def filters(self) -> MessageFilters:
        data = self.cleaned_data
        tz = timezone.get_current_timezone()

        def day_start(day: object) -> datetime | None:
            # A date in the user's time zone starts at its local midnight.
            return timezone.make_aware(datetime.combine(day, time.min), tz) if day else None  # type: ignore[arg-type]

        date_to = day_start(data.get("date_to"))
        folder = data.get("folder")
        return MessageFilters(
            folder_id=folder.pk if folder else None,
            date_from=day_start(data.get("date_from")),
            date_to=date_to + timedelta(days=1) if date_to else None,
            sender=(data.get("sender") or "").strip(),
            recipient=(data.get("recipient") or "").strip(),
            subject=(data.get("subject") or "").strip(),
            has_attachment=bool(data.get("has_attachment")),
            flagged=bool(data.get("flagged")),
            unread=bool(data.get("unread")),
            kind=data.get("kind") or "",
            priority=data.get("priority") or "",
        )
