"""Reads of the Tasks tab, always scoped to the user."""

from __future__ import annotations

import datetime as dt

from django.db.models import F, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from pecmail.accounts.models import User

from . import formats
from .models import Task, TaskList

VIEWS = ("today", "overdue", "upcoming", "all", "done")


def task_get(*, user: User, task_id: int) -> Task:
    try:
        return Task.objects.select_related("task_list", "message").get(pk=task_id, owner=user)
    except Task.DoesNotExist:
        raise Http404 from None


def task_list_get(*, user: User, list_id: int) -> TaskList:
    try:
        return TaskList.objects.get(pk=list_id, owner=user)
    except TaskList.DoesNotExist:
        raise Http404 from None


def task_lists(*, user: User) -> QuerySet[TaskList]:
    return TaskList.objects.filter(owner=user).order_by("name")


def today() -> dt.date:
    return timezone.localdate()


def task_view(*, user: User, view: str, task_list: TaskList | None = None) -> QuerySet[Task]:
    """The tasks of one view: today, overdue, upcoming (after today), all open, or done."""
    tasks = Task.objects.filter(owner=user).select_related("task_list")
    if task_list is not None:
        tasks = tasks.filter(task_list=task_list)
    day = today()
    open_tasks = tasks.exclude(status=Task.Status.DONE)
    if view == "today":
        return open_tasks.filter(due_date=day).order_by(F("due_time").asc(nulls_first=True), "priority", "pk")
    if view == "overdue":
        return open_tasks.filter(due_date__lt=day).order_by("due_date", "due_time", "priority", "pk")
    if view == "upcoming":
        return open_tasks.filter(due_date__gt=day).order_by("due_date", "due_time", "priority", "pk")
    if view == "done":
        return tasks.filter(status=Task.Status.DONE).order_by("-completed_at", "-pk")
    return open_tasks.order_by(F("due_date").asc(nulls_last=True), "due_time", "priority", "pk")


def view_counts(*, user: User) -> dict[str, int]:
    day = today()
    open_tasks = Task.objects.filter(owner=user).exclude(status=Task.Status.DONE)
    return {
        "today": open_tasks.filter(due_date=day).count(),
        "overdue": open_tasks.filter(due_date__lt=day).count(),
    }


def task_to_record(task: Task) -> formats.Record:
    record = formats.empty_record()
    record.update(
        uid=task.uid,
        title=task.title,
        notes=task.notes,
        due_date=task.due_date.isoformat() if task.due_date else None,
        due_time=task.due_time.isoformat() if task.due_time else None,
        priority=task.priority,
        status=task.status,
        completed_at=task.completed_at.astimezone(dt.UTC).isoformat() if task.completed_at else None,
        list=task.task_list.name if task.task_list else "",
    )
    return record


def task_records(*, user: User, task_list: TaskList | None = None) -> list[formats.Record]:
    tasks = Task.objects.filter(owner=user).select_related("task_list").order_by("pk")
    if task_list is not None:
        tasks = tasks.filter(task_list=task_list)
    return [task_to_record(t) for t in tasks]


def task_search(*, user: User, query: str, limit: int = 50) -> list[Task]:
    """The user's tasks whose title, notes or list name contain every word of ``query``."""
    tasks = Task.objects.filter(owner=user).select_related("task_list")
    words = query.split()
    if not words:
        return []
    for word in words:
        tasks = tasks.filter(
            Q(title__icontains=word) | Q(notes__icontains=word) | Q(task_list__name__icontains=word)
        )
    # Open tasks (no completion date) first.
    order = [F("completed_at").asc(nulls_first=True), F("due_date").asc(nulls_last=True), "pk"]
    return list(tasks.order_by(*order)[:limit])
