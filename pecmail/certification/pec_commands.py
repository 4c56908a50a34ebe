"""``manage.py pec`` subcommands of the certification app.

Two modules provide them: ``cli_provider`` (identity, log, providers index) and
``cli_formats`` (samples, verify). Each is registered on its own so that one can be
developed or absent without breaking the other.
"""

from __future__ import annotations

import importlib
from typing import Any


def register(subparsers: Any, command: Any) -> None:
    from pecmail.certification import cli_provider

    cli_provider.register(subparsers, command)
    try:
        cli_formats = importlib.import_module("pecmail.certification.cli_formats")
    except ModuleNotFoundError as exc:
        # Only the module's own absence is tolerated; a broken import inside it must surface.
        if exc.name != "pecmail.certification.cli_formats":
            raise
        return
    cli_formats.register(subparsers, command)
