"""``manage.py search reindex``: rebuild the message search index, with a progress bar."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from pecmail.search import services


class Command(BaseCommand):
    help = "Maintain the message search index."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        reindex = commands.add_parser("reindex", help="Rebuild the index from every stored message.")
        reindex.add_argument("--batch-size", type=int, default=services.BATCH_SIZE)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "reindex":
            self._reindex(batch_size=options["batch_size"])

    def _reindex(self, *, batch_size: int) -> None:
        width = 30

        def progress(done: int, total: int) -> None:
            filled = width * done // total if total else width
            bar = "#" * filled + "-" * (width - filled)
            percent = 100 * done // total if total else 100
            self.stdout.write(f"\r[{bar}] {done}/{total} messages ({percent}%)", ending="")
            self.stdout.flush()

        count = services.index_rebuild(batch_size=batch_size, progress=progress)
        if count:
            self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Indexed {count} messages."))
