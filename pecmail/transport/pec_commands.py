"""``manage.py pec`` subcommands of the transport app: smtpd, outbox-relay, deadlines-sweep."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any, command: Any) -> None:
    p = subparsers.add_parser("smtpd", help="Serve incoming SMTP (transport envelopes and receipts).")
    p.add_argument("--bind", default=None, help="host:port (default: settings.PEC_SMTP_BIND).")
    p.add_argument("--max-size", type=int, default=None, help="Largest message in bytes (SIZE).")
    p.add_argument("--max-recipients", type=int, default=None, help="Most RCPT TO per transaction.")
    p.add_argument(
        "--processes",
        type=int,
        default=None,
        help="SMTP worker processes sharing the socket, plus one writer when more than one (default: settings.PEC_SMTP_PROCESSES; 0 there = one per CPU, at most 4).",
    )
    p.set_defaults(handler=smtpd_command)

    p = subparsers.add_parser(
        "outbox-relay",
        help="Publish what a crash left behind: outbox rows, overdue SMTP retries, lost dispatches, unprocessed mail.",
    )
    p.set_defaults(handler=outbox_relay_command)

    p = subparsers.add_parser("deadlines-sweep", help="Emit due 12 h / 24 h delivery notices now.")
    p.set_defaults(handler=deadlines_sweep_command)


def smtpd_command(command: Any, options: dict[str, Any]) -> None:
    from django.conf import settings

    from pecmail.transport import smtpd

    smtpd.serve(
        bind=options.get("bind") or settings.PEC_SMTP_BIND,
        max_size=options.get("max_size"),
        max_recipients=options.get("max_recipients"),
        processes=options.get("processes"),
    )


def outbox_relay_command(command: Any, options: dict[str, Any]) -> None:
    from pecmail.transport.tasks import outbox_relay

    counts = outbox_relay()
    command.stdout.write(", ".join(f"{name} {n}" for name, n in counts.items()))


def deadlines_sweep_command(command: Any, options: dict[str, Any]) -> None:
    from pecmail.transport.deadlines import deadlines_sweep

    command.stdout.write(f"emitted {deadlines_sweep()} notice(s)")
