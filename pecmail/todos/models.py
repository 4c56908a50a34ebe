"""The Tasks tab's store: tasks and the lists they are sorted into."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class TaskList(models.Model):
    """A list (category) of tasks, e.g. "Studio" or "Scadenze PEC"."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="task_lists")
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="tasklist_unique_name")]
        verbose_name = _("list")
        verbose_name_plural = _("lists")

    def __str__(self) -> str:
        return self.name


def new_uid() -> str:
    return f"{uuid.uuid4()}@pecmail"


class Task(models.Model):
    # Values are iCalendar's STATUS tokens for VTODO, lower-cased.
    class Status(models.TextChoices):
        TODO = "needs-action", _("To do")
        IN_PROGRESS = "in-process", _("In progress")
        DONE = "completed", pgettext_lazy("task status", "Done")

    # Values are iCalendar PRIORITY numbers (1 highest … 9 lowest), so ascending order is urgency.
    class Priority(models.IntegerChoices):
        HIGH = 1, _("High")
        NORMAL = 5, _("Normal")
        LOW = 9, _("Low")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks")
    task_list = models.ForeignKey(
        TaskList,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
        verbose_name=_("list"),
    )
    title = models.CharField(_("title"), max_length=500)
    notes = models.TextField(_("notes"), blank=True)
    due_date = models.DateField(_("due date"), null=True, blank=True)
    due_time = models.TimeField(_("due time"), null=True, blank=True)
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=Priority.choices, default=Priority.NORMAL
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.TODO)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    # The PEC message the task came from; the task outlives the message.
    message = models.ForeignKey(
        "mail.Message",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
        verbose_name=_("message"),
    )
    uid = models.CharField(max_length=255, default=new_uid, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due_date", "due_time", "priority", "pk"]
        constraints = [models.UniqueConstraint(fields=["owner", "uid"], name="task_unique_uid")]
        indexes = [models.Index(fields=["owner", "status", "due_date"])]
        verbose_name = _("task")
        verbose_name_plural = _("tasks")

    def __str__(self) -> str:
        return self.title

    @property
    def is_done(self) -> bool:
        return self.status == self.Status.DONE
