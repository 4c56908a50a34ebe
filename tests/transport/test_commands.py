"""The transport's ``pec`` subcommands for operators."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command


def test_it_relays_the_outbox_from_the_command_line(db):
    out = StringIO()
    call_command("pec", "outbox-relay", stdout=out)
    assert out.getvalue().strip() == "published 0, retried 0, dispatched 0, reprocessed 0"


def test_it_sweeps_deadlines_from_the_command_line(db):
    out = StringIO()
    call_command("pec", "deadlines-sweep", stdout=out)
    assert out.getvalue().strip() == "emitted 0 notice(s)"
