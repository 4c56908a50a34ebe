"""Pages of the Options tab: general parameters, notifications, message rules, security."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django.views.i18n import set_language

from pecmail.lib.http import AuthenticatedHttpRequest
from pecmail.mail.selectors import mailbox_for_user

from . import selectors, services, tasks
from .forms import GeneralForm, NotificationAddressForm, RuleForm


@require_POST
def language_switch(request: HttpRequest) -> HttpResponse:
    """The footer's language switch: for a signed-in user it also becomes the saved preference.

    Without this the next login would bring back the language saved in Options.
    """
    response = set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        services.preferences_update(user=request.user, language=language)
    return response


def _page(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    return render(request, template, {"tab": "options", **context}, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    mailbox = mailbox_for_user(user=request.user)
    prefs = selectors.preferences_for(request.user)
    if request.method == "GET":
        form = GeneralForm(initial=GeneralForm.initial_for(mailbox=mailbox, prefs=prefs))
        return _page(
            request, "options/general.html", {"form": form, "section": "general", "mailbox": mailbox}
        )
    form = GeneralForm(request.POST)
    if not form.is_valid():
        return _page(
            request,
            "options/general.html",
            {"form": form, "section": "general", "mailbox": mailbox},
            status=422,
        )
    prefs = services.general_update(mailbox=mailbox, data=form.cleaned_data)
    services.session_preferences_apply(request=request, prefs=prefs)
    messages.success(request, _("Options saved."))
    response = redirect("options:index")
    if prefs.language:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            prefs.language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        )
    return response


# --- Notifications ----------------------------------------------------------------------


def _notifications_page(
    request: AuthenticatedHttpRequest, form: NotificationAddressForm, status: int = 200
) -> HttpResponse:
    return _page(
        request,
        "options/notifications.html",
        {
            "section": "notifications",
            "form": form,
            "addresses": selectors.notification_address_list(user=request.user),
            "site_url": settings.SITE_URL,
        },
        status=status,
    )


@require_http_methods(["GET"])
@login_required
def notifications(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _notifications_page(request, NotificationAddressForm())


@require_POST
@login_required
def notification_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = NotificationAddressForm(request.POST)
    if form.is_valid():
        try:
            entry = services.notification_address_add(user=request.user, address=form.cleaned_data["address"])
        except ValidationError as exc:
            form.add_error("address", exc)
        else:
            messages.success(
                request, _("A confirmation link was sent to %(address)s.") % {"address": entry.address}
            )
            return redirect("options:notifications")
    return _notifications_page(request, form, status=422)


@require_POST
@login_required
def notification_delete(request: AuthenticatedHttpRequest, address_id: int) -> HttpResponse:
    entry = selectors.notification_address_get(user=request.user, address_id=address_id)
    services.notification_address_delete(entry=entry)
    messages.success(request, _("%(address)s will receive no more notices.") % {"address": entry.address})
    return redirect("options:notifications")


@require_POST
@login_required
def notification_test(request: AuthenticatedHttpRequest, address_id: int) -> HttpResponse:
    entry = selectors.notification_address_get(user=request.user, address_id=address_id)
    if not entry.confirmed:
        messages.error(request, _("Confirm the address first: open the link sent to it."))
    else:
        tasks.notice_test_send.delay_on_commit(entry.pk)
        messages.success(
            request, _("A test notice is on its way to %(address)s.") % {"address": entry.address}
        )
    return redirect("options:notifications")


@require_POST
@login_required
def notification_resend(request: AuthenticatedHttpRequest, address_id: int) -> HttpResponse:
    entry = selectors.notification_address_get(user=request.user, address_id=address_id)
    if not entry.confirmed:
        tasks.notification_confirmation_send.delay_on_commit(entry.pk)
        messages.success(
            request, _("A new confirmation link was sent to %(address)s.") % {"address": entry.address}
        )
    return redirect("options:notifications")


@require_http_methods(["GET", "POST"])
def notification_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The link mailed to the address: GET shows a button, the POST confirms (no change on GET)."""
    try:
        entry = services.notification_token_read(token)
    except ValidationError as exc:
        return _page(request, "options/confirm.html", {"error": exc.messages[0]}, status=400)
    if request.method == "POST":
        entry = services.notification_address_confirm(token=token)
        return _page(request, "options/confirm.html", {"entry": entry, "done": True})
    return _page(request, "options/confirm.html", {"entry": entry, "done": entry.confirmed})


# --- Rules ------------------------------------------------------------------------------


def _rules_page(request: AuthenticatedHttpRequest, form: RuleForm, status: int = 200) -> HttpResponse:
    mailbox = mailbox_for_user(user=request.user)
    return _page(
        request,
        "options/rules.html",
        {
            "section": "rules",
            "rules": selectors.rule_list(mailbox=mailbox),
            "runs": selectors.rule_runs_recent(mailbox=mailbox),
            "failed": selectors.rule_runs_failed(mailbox=mailbox),
            "form": form,
        },
        status=status,
    )


@require_http_methods(["GET"])
@login_required
def rules(request: AuthenticatedHttpRequest) -> HttpResponse:
    mailbox = mailbox_for_user(user=request.user)
    return _rules_page(request, RuleForm(mailbox=mailbox))


@require_POST
@login_required
def rule_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    mailbox = mailbox_for_user(user=request.user)
    form = RuleForm(request.POST, mailbox=mailbox)
    if form.is_valid():
        try:
            rule = services.rule_create(mailbox=mailbox, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Rule “%(name)s” added.") % {"name": rule.name})
            return redirect("options:rules")
    return _rules_page(request, form, status=422)


@require_http_methods(["GET", "POST"])
@login_required
def rule_edit(request: AuthenticatedHttpRequest, rule_id: int) -> HttpResponse:
    rule = selectors.rule_get(user=request.user, rule_id=rule_id)
    form = RuleForm(request.POST or None, instance=rule, mailbox=rule.mailbox)
    if request.method == "POST" and form.is_valid():
        try:
            services.rule_update(rule=rule, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Rule “%(name)s” saved.") % {"name": rule.name})
            return redirect("options:rules")
    status = 422 if request.method == "POST" else 200
    return _page(
        request, "options/rule_edit.html", {"section": "rules", "form": form, "rule": rule}, status=status
    )


@require_POST
@login_required
def rule_delete(request: AuthenticatedHttpRequest, rule_id: int) -> HttpResponse:
    rule = selectors.rule_get(user=request.user, rule_id=rule_id)
    services.rule_delete(rule=rule)
    messages.success(request, _("Rule “%(name)s” deleted.") % {"name": rule.name})
    return redirect("options:rules")


@require_POST
@login_required
def rule_move(request: AuthenticatedHttpRequest, rule_id: int) -> HttpResponse:
    rule = selectors.rule_get(user=request.user, rule_id=rule_id)
    services.rule_move(rule=rule, up=request.POST.get("direction") == "up")
    return redirect("options:rules")


@require_POST
@login_required
def rule_toggle(request: AuthenticatedHttpRequest, rule_id: int) -> HttpResponse:
    rule = selectors.rule_get(user=request.user, rule_id=rule_id)
    services.rule_update(rule=rule, active=not rule.active)
    return redirect("options:rules")


# --- Security ---------------------------------------------------------------------------


@require_http_methods(["GET"])
@login_required
def security(request: AuthenticatedHttpRequest) -> HttpResponse:
    from allauth.usersessions.models import UserSession

    sessions = sorted(
        UserSession.objects.purge_and_list(request.user), key=lambda s: s.created_at, reverse=True
    )
    return _page(
        request,
        "options/security.html",
        {
            "section": "security",
            "sessions": sessions,
            "logins": selectors.login_events_recent(user=request.user),
        },
    )
