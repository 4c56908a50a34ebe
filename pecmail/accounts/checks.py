"""Production guards: demo mailboxes with the public demo password must not go live."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.db import DatabaseError

DEMO_LOCALS = ("alice", "bob", "carol")


def demo_addresses() -> list[str]:
    return [f"{local}@{settings.PEC_DOMAIN}" for local in DEMO_LOCALS]


def demo_mailboxes_present() -> list[str]:
    """Addresses of demo mailboxes that still log in with the (public) demo password."""
    from pecmail.accounts.models import User

    found = []
    for user in User.objects.filter(email__in=demo_addresses(), is_active=True):
        if user.check_password(settings.PEC_DEMO_PASSWORD):
            found.append(user.email)
    return sorted(found)


@checks.register()
def check_no_demo_data_in_production(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.DEBUG:
        return []
    try:
        found = demo_mailboxes_present()
    except DatabaseError:
        # No database yet (first `migrate`): there is no demo data either.
        return []
    if not found:
        return []
    return [
        checks.Error(
            f"DEBUG is off but demo mailboxes with the public demo password exist: {', '.join(found)}.",
            hint="Deactivate them in the admin or give them new passwords (manage.py changepassword ADDRESS).",
            id="pecmail.E001",
        )
    ]


def refuse_demo_data_in_production() -> None:
    """Called by the WSGI/ASGI entry points: gunicorn does not run system checks itself."""
    from django.core.exceptions import ImproperlyConfigured

    errors = check_no_demo_data_in_production()
    if errors:
        raise ImproperlyConfigured(f"{errors[0].msg} {errors[0].hint}")
