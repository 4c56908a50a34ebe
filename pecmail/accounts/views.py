from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


def email_management_disabled(request: HttpRequest) -> HttpResponse:
    """The login address is the PEC mailbox itself: it cannot be changed or added to."""
    raise Http404


def email_verification_disabled(request: HttpRequest, key: str = "") -> HttpResponse:
    """No address is ever verified by e-mail (the provider creates the mailboxes), so no such page."""
    raise Http404
