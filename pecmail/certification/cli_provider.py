"""``pec`` subcommands for the provider identity, the provider log and the providers index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError

from pecmail.certification import pki


def register(subparsers: Any, command: Any) -> None:
    p = subparsers.add_parser("init-provider", help="Create the test CA and the provider certificate (once).")
    p.add_argument("--domain", default=None, help="Provider mail domain (default: settings.PEC_DOMAIN).")
    p.add_argument("--name", default=None, help="Provider name (default: settings.PEC_PROVIDER_NAME).")
    p.add_argument("--dir", default=None, help="Write the files here instead of the configured paths.")
    p.set_defaults(handler=init_provider_command)


def init_provider_command(command: Any, options: dict[str, Any]) -> None:
    domain = (options.get("domain") or settings.PEC_DOMAIN).strip().lower()
    name = options.get("name") or settings.PEC_PROVIDER_NAME
    if not domain:
        raise CommandError("--domain is required")
    if options.get("dir"):
        paths = pki.IdentityPaths.in_directory(Path(options["dir"]))
    else:
        paths = pki.settings_paths()
    created = pki.init_provider(domain=domain, name=name, paths=paths)
    if created:
        command.stdout.write(f"Created the provider identity for {domain} ({name}):")
    else:
        command.stdout.write("The provider identity already exists; nothing changed:")
    command.stdout.write(f"  signing key:  {paths.key}")
    command.stdout.write(f"  certificate:  {paths.cert}")
    command.stdout.write(f"  trust anchor: {paths.ca_cert}")
    if not options.get("dir"):
        _register_self(command, paths=paths, domain=domain, name=name)


def _register_self(command: Any, *, paths: pki.IdentityPaths, domain: str, name: str) -> None:
    try:
        from pecmail.certification import index
    except ImportError:
        return
    identity = pki.read_identity(
        key_path=paths.key, cert_path=paths.cert, ca_path=paths.ca_cert, domain=domain, name=name
    )
    if index.provider_register_self(identity=identity):
        command.stdout.write(f"  listed {name} in the local providers index")
