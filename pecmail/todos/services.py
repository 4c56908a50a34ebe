"""Writes of the Tasks tab."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from pecmail.accounts.models import User

from . import formats
from .models import Task, TaskList

EDITABLE = ("title", "notes", "due_date", "due_time", "priority", "status", "task_list")


def _apply_status(task: Task, status: str) -> None:
    """Keep completed_at in step with the status: set on completion, cleared on reopening."""
    if status == Task.Status.DONE and task.completed_at is None:
        task.completed_at = timezone.now()
    elif status != Task.Status.DONE:
        task.completed_at = None
    task.status = status


def task_create(*, owner: User, fields: dict[str, Any], message: Any = None) -> Task:
    task = Task(owner=owner, message=message)
    for name in EDITABLE:
        if name in fields:
            setattr(task, name, fields[name])
    if task.task_list is not None and task.task_list.owner_id != owner.pk:
        raise ValueError("task list of another user")
    _apply_status(task, fields.get("status") or Task.Status.TODO)
    if task.due_date is None:
        task.due_time = None
    task.save()
    return task


def task_update(*, task: Task, fields: dict[str, Any]) -> Task:
    for name in EDITABLE:
        if name in fields and name != "status":
            setattr(task, name, fields[name])
    if task.task_list is not None and task.task_list.owner_id != task.owner_id:
        raise ValueError("task list of another user")
    if "status" in fields:
        _apply_status(task, fields["status"])
    if task.due_date is None:
        task.due_time = None
    task.save()
    return task


def task_toggle_done(*, task: Task) -> Task:
    """Tick a task done, or reopen a done one."""
    _apply_status(task, Task.Status.TODO if task.is_done else Task.Status.DONE)
    task.save(update_fields=["status", "completed_at", "updated_at"])
    return task


def task_delete(*, task: Task) -> None:
    task.delete()


def task_list_create(*, owner: User, name: str) -> TaskList:
    task_list, _created = TaskList.objects.get_or_create(owner=owner, name=name.strip()[:100])
    return task_list


def task_list_rename(*, task_list: TaskList, name: str) -> TaskList:
    task_list.name = name.strip()[:100]
    task_list.save(update_fields=["name"])
    return task_list


def task_list_delete(*, task_list: TaskList) -> None:
    """Delete the list; its tasks stay, without a list."""
    task_list.delete()


def due_from_message(*, delivered: dt.datetime, days: int) -> dt.date:
    """A reply deadline: ``days`` calendar days after the delivery date, in the user's zone."""
    return timezone.localtime(delivered).date() + dt.timedelta(days=days)


# --- import --------------------------------------------------------------------------


@dataclass
class ImportPlan:
    to_create: list[formats.Record] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"to_create": self.to_create, "skipped": self.skipped}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportPlan:
        return cls(to_create=list(data["to_create"]), skipped=[tuple(s) for s in data["skipped"]])  # type: ignore[misc]


def tasks_import_plan(*, owner: User, parsed: formats.Parsed) -> ImportPlan:
    """What to create; a task whose UID the user already has is a duplicate."""
    plan = ImportPlan(skipped=list(parsed.skipped))
    known = set(Task.objects.filter(owner=owner).values_list("uid", flat=True))
    for record in parsed.records:
        if record["uid"] in known:
            plan.skipped.append((record["title"], _("it is already in your tasks")))
            continue
        plan.to_create.append(record)
    return plan


@transaction.atomic
def tasks_import(*, owner: User, plan: ImportPlan) -> list[Task]:
    """Create every task of a confirmed plan, all or nothing; UIDs that appeared since are skipped."""
    known = set(Task.objects.filter(owner=owner).values_list("uid", flat=True))
    lists = {t.name: t for t in TaskList.objects.filter(owner=owner)}
    created = []
    for record in plan.to_create:
        if record["uid"] in known:
            continue
        name = record["list"]
        if name and name not in lists:
            lists[name] = TaskList.objects.create(owner=owner, name=name)
        task = Task(
            owner=owner,
            uid=record["uid"],
            title=record["title"],
            notes=record["notes"],
            due_date=dt.date.fromisoformat(record["due_date"]) if record["due_date"] else None,
            due_time=dt.time.fromisoformat(record["due_time"]) if record["due_time"] else None,
            priority=record["priority"],
            status=record["status"],
            completed_at=dt.datetime.fromisoformat(record["completed_at"])
            if record["completed_at"]
            else None,
            task_list=lists[name] if name else None,
        )
        if task.is_done and task.completed_at is None:
            task.completed_at = timezone.now()
        task.save()
        known.add(task.uid)
        created.append(task)
    return created
