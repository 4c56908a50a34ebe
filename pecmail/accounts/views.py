from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


def email_management_disabled(request: HttpRequest) -> HttpResponse:
    """The login address is the PEC mailbox itself: it cannot be changed or added to."""
    raise Http404
