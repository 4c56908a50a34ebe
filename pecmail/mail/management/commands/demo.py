"""``manage.py demo setup``: the development provider and demo mailboxes for ``make run``.

Idempotent: existing mailboxes and the existing provider identity are kept as they are.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pecmail.mail import services
from pecmail.mail.models import Mailbox

DEMO_MAILBOXES = [
    ("alice", "Alice Rossi"),
    ("bob", "Bob Bianchi"),
    ("carol", "Carol Verdi"),
]


class Command(BaseCommand):
    help = "Set up the development provider and the demo mailboxes (DEBUG only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["setup"])

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("Demo data is for development only: refusing with DEBUG off.")
        call_command(
            "pec", "init-provider", "--domain", settings.PEC_DOMAIN, "--name", settings.PEC_PROVIDER_NAME
        )
        password = settings.PEC_DEMO_PASSWORD
        lines = []
        for local, name in DEMO_MAILBOXES:
            address = f"{local}@{settings.PEC_DOMAIN}"
            if not Mailbox.objects.filter(address=address).exists():
                services.mailbox_create(address=address, password=password, display_name=name)
                lines.append(f"  {address:<28} password: {password}")
            else:
                lines.append(f"  {address:<28} (exists; password unchanged)")
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo mailboxes:"))
        for line in lines:
            self.stdout.write(line)
        self.stdout.write("")
