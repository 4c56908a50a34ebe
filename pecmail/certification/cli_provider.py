"""``pec`` subcommands for the provider identity, the provider log and the providers index."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from django.conf import settings
from django.core.management.base import CommandError

from pecmail.certification import index, log, pki
from pecmail.certification.trust import certificate_sha1


def register(subparsers: Any, command: Any) -> None:
    p = subparsers.add_parser("init-provider", help="Create the test CA and the provider certificate (once).")
    p.add_argument("--domain", default=None, help="Provider mail domain (default: settings.PEC_DOMAIN).")
    p.add_argument("--name", default=None, help="Provider name (default: settings.PEC_PROVIDER_NAME).")
    p.add_argument("--dir", default=None, help="Write the files here instead of the configured paths.")
    p.set_defaults(handler=init_provider_command)

    p = subparsers.add_parser(
        "rollover", help="Signing key rollover: prepare the next key, later activate it."
    )
    p.add_argument("phase", choices=["prepare", "activate"])
    p.set_defaults(handler=rollover_command)

    p = subparsers.add_parser("log-verify", help="Check the provider log's hash chain; exit 1 if broken.")
    p.set_defaults(handler=log_verify_command)
    p = subparsers.add_parser("log-sweep", help="Remove provider log rows older than the 30-month retention.")
    p.add_argument("--now", default=None, help="Pretend it is this ISO 8601 time (for audits of the cutoff).")
    p.set_defaults(handler=log_sweep_command)

    p = subparsers.add_parser(
        "log-export", help="Write one day of the provider log, signed (.p7m) or as JSON lines."
    )
    p.add_argument("--date", required=True, help="The day (YYYY-MM-DD, local time).")
    p.add_argument("--out", required=True, help="Output file.")
    p.add_argument("--sign", action="store_true", help="Sign with the provider key (DER .p7m, SPEC §7.3).")
    p.set_defaults(handler=log_export_command)

    p = subparsers.add_parser("index", help="The local copy of the providers index (LDIF import/export).")
    actions = p.add_subparsers(dest="index_action", required=True, parser_class=type(p))
    imp = actions.add_parser("import", help="Load providers from an LDIF file.")
    imp.add_argument("file", help="LDIF file ('-' for standard input).")
    imp.add_argument(
        "--replace", action="store_true", help="Remove the providers missing from the file (daily full copy)."
    )
    imp.add_argument(
        "--signer-cert",
        action="append",
        default=[],
        help="PEM certificate of the index publisher, for a signed .p7m file (repeatable).",
    )
    imp.set_defaults(handler=index_import_command)
    exp = actions.add_parser("export", help="Write the index as LDIF.")
    exp.add_argument("--out", default="-", help="Output file (default: standard output).")
    exp.add_argument("--self", dest="only_self", action="store_true", help="Only this provider's own entry.")
    exp.add_argument(
        "--sign", action="store_true", help="Write a DER .p7m signed with the provider key (SPEC §8)."
    )
    exp.set_defaults(handler=index_export_command)
    lst = actions.add_parser("list", help="List providers, domains and certificates.")
    lst.set_defaults(handler=index_list_command)


def init_provider_command(command: Any, options: dict[str, Any]) -> None:
    domain = (options.get("domain") or settings.PEC_DOMAIN).strip().lower()
    name = options.get("name") or settings.PEC_PROVIDER_NAME
    if not domain:
        raise CommandError("--domain is required")
    if options.get("dir"):
        paths = pki.IdentityPaths.in_directory(Path(options["dir"]))
    else:
        paths = pki.settings_paths()
    try:
        created = pki.init_provider(domain=domain, name=name, paths=paths)
    except pki.IdentityError as exc:
        raise CommandError(str(exc)) from exc
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
    identity = pki.read_identity(
        key_path=paths.key, cert_path=paths.cert, ca_path=paths.ca_cert, domain=domain, name=name
    )
    if index.provider_register_self(identity=identity):
        command.stdout.write(f"  listed {name} in the local providers index")


def index_import_command(command: Any, options: dict[str, Any]) -> None:
    try:
        data = sys.stdin.buffer.read() if options["file"] == "-" else Path(options["file"]).read_bytes()
        signers = [
            c
            for path in options["signer_cert"]
            for c in x509.load_pem_x509_certificates(Path(path).read_bytes())
        ]
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    if index.is_signed_ldif(data):
        report = index.ldif_import_signed(data, signer_certificates=signers, replace=options["replace"])
    else:
        report = index.ldif_import(data, replace=options["replace"])
    for label, names in (
        ("created", report.created),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
        ("removed", report.removed),
    ):
        for name in names:
            command.stdout.write(f"{label}: {name}")
    for error in report.errors:
        command.stderr.write(f"error: {error}")
    if not report.ok:
        raise CommandError(f"{len(report.errors)} entries could not be imported")


def index_export_command(command: Any, options: dict[str, Any]) -> None:
    if options["sign"]:
        if options["out"] == "-":
            raise CommandError("--sign writes DER: give --out FILE")
        try:
            identity = pki.load_identity()
        except pki.IdentityError as exc:
            raise CommandError(str(exc)) from exc
        Path(options["out"]).write_bytes(
            index.ldif_export_signed(identity=identity, only_self=options["only_self"])
        )
        command.stdout.write(f"wrote {options['out']} (signed by {identity.service_address})")
        return
    text = index.ldif_export(only_self=options["only_self"])
    if options["out"] == "-":
        command.stdout.write(text, ending="")
    else:
        Path(options["out"]).write_text(text, encoding="utf-8")
        command.stdout.write(f"wrote {options['out']}")


def index_list_command(command: Any, options: dict[str, Any]) -> None:
    for provider in index.provider_list():
        marker = " [self]" if provider.is_self else ""
        command.stdout.write(f"{provider}{marker} <{provider.mail_receipt}>")
        for domain in provider.domains.all():
            command.stdout.write(f"  domain {domain.domain}")
        for cert in provider.certificates.all():
            until = cert.not_after.date().isoformat() if cert.not_after else "?"
            command.stdout.write(f"  certificate {cert.sha1} until {until} {cert.subject}")


def log_verify_command(command: Any, options: dict[str, Any]) -> None:
    report = log.log_verify()
    if report.ok:
        span = f" (#{report.first_seq}–#{report.last_seq})" if report.rows else ""
        command.stdout.write(f"OK: {report.message}{span}")
        return
    command.stderr.write(f"BROKEN at row #{report.bad_seq}: {report.problem}: {report.message}")
    raise CommandError(f"the provider log chain is broken at row #{report.bad_seq} ({report.problem})")


def log_sweep_command(command: Any, options: dict[str, Any]) -> None:
    now = None
    if options.get("now"):
        try:
            now = dt.datetime.fromisoformat(options["now"])
        except ValueError as exc:
            raise CommandError(f"--now: {exc}") from exc
        if now.tzinfo is None:
            raise CommandError("--now needs a UTC offset")
    cutoff = log.retention_cutoff(now)
    removed = log.log_sweep(now)
    command.stdout.write(f"removed {removed} provider log rows older than {cutoff.isoformat()}")


def log_export_command(command: Any, options: dict[str, Any]) -> None:
    try:
        day = dt.date.fromisoformat(options["date"])
    except ValueError as exc:
        raise CommandError(f"--date: {exc}") from exc
    data = log.log_export(day=day)
    if options["sign"]:
        from pecmail.certification import smime

        try:
            data = smime.sign_attached(data, pki.load_identity())
        except pki.IdentityError as exc:
            raise CommandError(str(exc)) from exc
    Path(options["out"]).write_bytes(data)
    command.stdout.write(f"wrote {options['out']}")


def rollover_command(command: Any, options: dict[str, Any]) -> None:
    paths = pki.settings_paths()
    domain, name = settings.PEC_DOMAIN, settings.PEC_PROVIDER_NAME
    try:
        if options["phase"] == "prepare":
            created, cert = pki.rollover_prepare(domain=domain, name=name, paths=paths)
            next_identity = pki.read_identity(
                key_path=paths.next_key,
                cert_path=paths.next_cert,
                ca_path=paths.ca_cert,
                domain=domain,
                name=name,
            )
            index.provider_register_self(identity=next_identity)
            state = "Created" if created else "Already prepared:"
            command.stdout.write(
                f"{state} the next certificate {certificate_sha1(cert)} ({paths.next_cert})."
            )
            command.stdout.write(
                "It is listed in the local index: publish it (pec index export --self --sign) and "
                "run `pec rollover activate` once the peers have it."
            )
        else:
            cert = pki.rollover_activate(paths=paths)
            index.provider_register_self(identity=pki.load_identity())
            command.stdout.write(
                f"Now signing with {certificate_sha1(cert)}; the old certificate stays listed."
            )
    except pki.IdentityError as exc:
        raise CommandError(str(exc)) from exc
