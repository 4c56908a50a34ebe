"""``manage.py pec SUBCOMMAND``: the provider's command line.

Subcommands live beside the code they drive: every installed pecmail app may have a
``pec_commands`` module whose ``register(subparsers, command)`` adds its subcommands,
each parser carrying ``handler=callable(command, options)`` via ``set_defaults``.
"""

from __future__ import annotations

import importlib
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "PEC provider operations (init-provider, samples, verify, log-verify, smtpd, …)."

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="subcommand", required=True, parser_class=type(parser))
        for config in apps.get_app_configs():
            if not config.name.startswith("pecmail."):
                continue
            try:
                module = importlib.import_module(f"{config.name}.pec_commands")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.pec_commands":
                    raise
                continue
            module.register(subparsers, self)

    def handle(self, *args: Any, **options: Any) -> Any:
        return options["handler"](self, options)
