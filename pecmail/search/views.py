"""The Search tab: one GET page, the form and the results grouped by kind."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from pecmail.lib.http import AuthenticatedHttpRequest
from pecmail.mail.models import Folder

from . import selectors
from .forms import SearchForm


@require_GET
@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    folders = (
        Folder.objects.filter(mailbox_id__in=selectors.user_mailbox_ids(user=request.user))
        .select_related("mailbox")
        .order_by("mailbox_id", "id")
    )
    form = SearchForm(request.GET or None, folders=folders)
    results = None
    if form.is_bound and form.is_valid() and form.has_criteria:
        results = selectors.search_all(
            user=request.user,
            text=form.cleaned_data["q"],
            filters=form.filters(),
            order=form.cleaned_data.get("order") or "",
            cursor=form.cleaned_data.get("cursor") or "",
        )
    next_query = ""
    if results is not None and results.messages.next_cursor:
        params = request.GET.copy()
        params["cursor"] = results.messages.next_cursor
        next_query = params.urlencode()
    filters_open = form.is_bound and any(
        request.GET.get(name) for name in form.fields if name not in ("q", "cursor", "order")
    )
    status = 422 if form.is_bound and not form.is_valid() else 200
    return render(
        request,
        "search/index.html",
        {
            "tab": "search",
            "form": form,
            "results": results,
            "next_query": next_query,
            "filters_open": filters_open,
            "is_next_page": bool(request.GET.get("cursor")),
        },
        status=status,
    )
