"""Forms of the Tasks tab: they validate; services write."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from pecmail.accounts.models import User

from . import formats
from .models import Task, TaskList


def import_max_bytes() -> int:
    return int(getattr(settings, "TODOS_IMPORT_MAX_BYTES", 2 * 1024 * 1024))


def reply_days() -> int:
    """Days from delivery to the default deadline of a task made from a message."""
    return int(getattr(settings, "TODOS_REPLY_DAYS", 10))


class TaskForm(forms.ModelForm):
    class Meta:
        model = Task
        fields = ["title", "due_date", "due_time", "priority", "status", "task_list", "notes"]
        widgets = {
            "due_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "due_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "notes": forms.Textarea(attrs={"rows": 5}),
        }

    def __init__(self, *args: Any, owner: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["task_list"].queryset = TaskList.objects.filter(owner=owner)
        self.fields["task_list"].empty_label = _("No list")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("due_time") and not data.get("due_date"):
            self.add_error("due_date", _("A time needs a date."))
        return data


class QuickAddForm(forms.Form):
    title = forms.CharField(label=_("New task"), max_length=500)
    due_date = forms.DateField(
        label=_("Due"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    task_list = forms.ModelChoiceField(
        label=pgettext_lazy("task list", "List"), queryset=TaskList.objects.none(), required=False
    )

    def __init__(self, *args: Any, owner: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["task_list"].queryset = TaskList.objects.filter(owner=owner)
        self.fields["task_list"].empty_label = _("No list")


class ListForm(forms.Form):
    name = forms.CharField(label=_("List name"), max_length=100)


class ImportForm(forms.Form):
    file = forms.FileField(label=_("iCalendar file (.ics) with tasks"))

    def clean_file(self) -> formats.Parsed:
        upload = self.cleaned_data["file"]
        limit = import_max_bytes()
        if upload.size > limit:
            raise forms.ValidationError(
                _("This file is too large (%(size)s): the limit is %(limit)s.")
                % {"size": filesizeformat(upload.size), "limit": filesizeformat(limit)}
            )
        try:
            parsed = formats.ics_parse(upload.read(limit + 1), zone=timezone.get_current_timezone())
        except formats.FormatError as error:
            raise forms.ValidationError(str(error)) from error
        if not parsed.records and not parsed.skipped:
            raise forms.ValidationError(_("This file contains no tasks."))
        return parsed
