"""Views of the Tasks tab: fetch with permission, one service call, a response."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pecmail.lib.http import AuthenticatedHttpRequest
from pecmail.mail import selectors as mail_selectors

from . import formats, selectors, services
from .forms import ImportForm, ListForm, QuickAddForm, TaskForm, import_max_bytes, reply_days
from .models import Task

IMPORT_SESSION_KEY = "todos_import_plan"


def _safe_next(request: AuthenticatedHttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@require_GET
@login_required
def index(request: AuthenticatedHttpRequest, view: str = "today") -> HttpResponse:
    if view not in selectors.VIEWS:
        raise Http404
    user = request.user
    task_list = None
    if request.GET.get("list", "").isdigit():
        task_list = selectors.task_list_get(user=user, list_id=int(request.GET["list"]))
    quick_initial = {"due_date": selectors.today() if view == "today" else None, "task_list": task_list}
    return render(
        request,
        "todos/index.html",
        {
            "tab": "todos",
            "view": view,
            "tasks": selectors.task_view(user=user, view=view, task_list=task_list)[:500],
            "task_list": task_list,
            "lists": selectors.task_lists(user=user),
            "counts": selectors.view_counts(user=user),
            "quick_form": QuickAddForm(owner=user, initial=quick_initial),
            "today": selectors.today(),
        },
    )


@require_POST
@login_required
def quick_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = QuickAddForm(request.POST, owner=request.user)
    if not form.is_valid():
        messages.error(request, _("Write a title for the task."))
        return redirect(_safe_next(request, reverse("todos:index")))
    services.task_create(owner=request.user, fields=form.cleaned_data)
    messages.success(request, _("Task added."))
    return redirect(_safe_next(request, reverse("todos:index")))


def _task_form_page(request: AuthenticatedHttpRequest, task: Task | None) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        form = TaskForm(request.POST, instance=task, owner=user)
        if form.is_valid():
            if task is None:
                services.task_create(owner=user, fields=form.cleaned_data)
            else:
                services.task_update(task=task, fields=form.cleaned_data)
            messages.success(request, _("Task saved."))
            return redirect(_safe_next(request, reverse("todos:all")))
        status = 422
    else:
        form = TaskForm(instance=task, owner=user, initial={"due_date": request.GET.get("due") or None})
        status = 200
    return render(
        request,
        "todos/form.html",
        {"tab": "todos", "form": form, "task": task, "linked_message": task.message if task else None},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@login_required
def task_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _task_form_page(request, None)


@require_http_methods(["GET", "POST"])
@login_required
def task_edit(request: AuthenticatedHttpRequest, task_id: int) -> HttpResponse:
    task = selectors.task_get(user=request.user, task_id=task_id)
    return _task_form_page(request, task)


@require_POST
@login_required
def task_toggle(request: AuthenticatedHttpRequest, task_id: int) -> HttpResponse:
    task = selectors.task_get(user=request.user, task_id=task_id)
    services.task_toggle_done(task=task)
    return redirect(_safe_next(request, reverse("todos:index")))


@require_POST
@login_required
def task_delete(request: AuthenticatedHttpRequest, task_id: int) -> HttpResponse:
    task = selectors.task_get(user=request.user, task_id=task_id)
    services.task_delete(task=task)
    messages.success(request, _("Task deleted."))
    return redirect(_safe_next(request, reverse("todos:index")))


@require_http_methods(["GET", "POST"])
@login_required
def create_from_message(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    """A task prefilled from a PEC message: its subject, and a deadline counted from delivery."""
    user = request.user
    message = mail_selectors.message_get(user=user, message_id=message_id)
    if request.method == "POST":
        form = TaskForm(request.POST, owner=user)
        if form.is_valid():
            services.task_create(owner=user, fields=form.cleaned_data, message=message)
            messages.success(request, _("Task created from the message."))
            return redirect("todos:all")
        status = 422
    else:
        days = reply_days()
        subject = " ".join((message.subject or "").split())
        initial = {
            "title": _("Reply: %(subject)s") % {"subject": subject} if subject else _("Reply to the message"),
            "due_date": services.due_from_message(delivered=message.date, days=days),
            "notes": _("From %(sender)s, delivered on %(date)s.")
            % {
                "sender": message.from_address,
                "date": timezone.localtime(message.date).strftime("%d/%m/%Y %H:%M"),
            },
        }
        form = TaskForm(owner=user, initial=initial)
        status = 200
    return render(
        request,
        "todos/form.html",
        {
            "tab": "todos",
            "form": form,
            "task": None,
            "message": message,
            "linked_message": message,
            "reply_days": reply_days(),
        },
        status=status,
    )


@require_GET
@login_required
def lists(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(
        request,
        "todos/lists.html",
        {"tab": "todos", "lists": selectors.task_lists(user=request.user), "form": ListForm()},
    )


@require_POST
@login_required
def list_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ListForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "todos/lists.html",
            {"tab": "todos", "lists": selectors.task_lists(user=request.user), "form": form},
            status=422,
        )
    services.task_list_create(owner=request.user, name=form.cleaned_data["name"])
    return redirect("todos:lists")


@require_POST
@login_required
def list_rename(request: AuthenticatedHttpRequest, list_id: int) -> HttpResponse:
    task_list = selectors.task_list_get(user=request.user, list_id=list_id)
    form = ListForm(request.POST)
    if form.is_valid():
        name = form.cleaned_data["name"].strip()
        if selectors.task_lists(user=request.user).filter(name=name).exclude(pk=task_list.pk).exists():
            messages.error(request, _("A list with this name already exists."))
        else:
            services.task_list_rename(task_list=task_list, name=name)
    return redirect("todos:lists")


@require_POST
@login_required
def list_delete(request: AuthenticatedHttpRequest, list_id: int) -> HttpResponse:
    task_list = selectors.task_list_get(user=request.user, list_id=list_id)
    services.task_list_delete(task_list=task_list)
    messages.success(request, _("List deleted; its tasks are kept."))
    return redirect("todos:lists")


@require_http_methods(["GET", "POST"])
@login_required
def import_upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            plan = services.tasks_import_plan(owner=request.user, parsed=form.cleaned_data["file"])
            request.session[IMPORT_SESSION_KEY] = plan.as_json()
            return redirect("todos:import_preview")
        status = 422
    else:
        form = ImportForm()
        status = 200
    return render(
        request,
        "todos/import.html",
        {
            "tab": "todos",
            "form": form,
            "limit": import_max_bytes(),
            "lists": selectors.task_lists(user=request.user),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@login_required
def import_preview(request: AuthenticatedHttpRequest) -> HttpResponse:
    data = request.session.get(IMPORT_SESSION_KEY)
    if data is None:
        messages.info(request, _("There is no import waiting for confirmation."))
        return redirect("todos:import")
    plan = services.ImportPlan.from_json(data)
    if request.method == "POST":
        del request.session[IMPORT_SESSION_KEY]
        if request.POST.get("action") != "confirm":
            messages.info(request, _("Import cancelled: nothing was imported."))
            return redirect("todos:index")
        created = services.tasks_import(owner=request.user, plan=plan)
        messages.success(
            request,
            ngettext("%(count)s task imported.", "%(count)s tasks imported.", len(created))
            % {"count": len(created)},
        )
        return redirect("todos:all")
    return render(request, "todos/import_preview.html", {"tab": "todos", "plan": plan})


@require_GET
@login_required
def export(request: AuthenticatedHttpRequest) -> HttpResponse:
    task_list = None
    if request.GET.get("list", "").isdigit():
        task_list = selectors.task_list_get(user=request.user, list_id=int(request.GET["list"]))
    records = selectors.task_records(user=request.user, task_list=task_list)
    body = formats.ics_serialize(records, zone=timezone.get_current_timezone(), stamp=timezone.now())
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="tasks.ics"'
    return response
