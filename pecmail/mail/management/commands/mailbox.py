"""``manage.py mailbox create ADDRESS``: the provider creates mailboxes (no public sign-up)."""

from __future__ import annotations

import getpass
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pecmail.mail import services
from pecmail.mail.models import Mailbox


class Command(BaseCommand):
    help = "Manage PEC mailboxes."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a mailbox and its login.")
        create.add_argument("address")
        create.add_argument("--name", default="", help="Display name shown in From.")
        create.add_argument(
            "--password", help="Password (asked for when omitted and a terminal is attached)."
        )
        create.add_argument("--random-password", action="store_true", help="Generate and print a password.")
        sub.add_parser("list", help="List mailboxes.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            for mailbox in Mailbox.objects.select_related("owner"):
                self.stdout.write(f"{mailbox.address}\t{mailbox.display_name}")
            return
        password = options["password"]
        if options["random_password"]:
            password = secrets.token_urlsafe(12)
        elif password is None:
            password = getpass.getpass(f"Password for {options['address']}: ")
        try:
            mailbox = services.mailbox_create(
                address=options["address"], password=password, display_name=options["name"]
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(f"Created {mailbox.address}"))
        if options["random_password"]:
            self.stdout.write(f"Password: {password}")
