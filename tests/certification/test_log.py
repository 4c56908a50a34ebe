import datetime as dt
import threading

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from pecmail.certification import log
from pecmail.certification.models import AppendOnlyError, ProviderLogEntry, ProviderLogHead

T0 = dt.datetime(2026, 1, 10, 9, 0, tzinfo=dt.UTC)


def append(n: int = 1, *, at: dt.datetime = T0, **kwargs):
    return [
        log.log_append(
            event=ProviderLogEntry.Event.ACCEPTANCE,
            identifier=f"pecmail.{i}@pec.example.test",
            msgid=f"<client-{i}@example.test>",
            sender="alice@pec.example.test",
            recipients=["bob@pec.example.test", "carol@example.test"],
            subject=f"Fattura {i} — àè",
            related_ids=[f"ricevuta-{i}@pec.example.test"],
            provider="pecmail sviluppo",
            details={"tipo_ricevuta": "completa", "n": i},
            at=at + dt.timedelta(minutes=i),
            **kwargs,
        )
        for i in range(n)
    ]


def test_it_names_the_table_the_tampering_tests_use():
    assert ProviderLogEntry._meta.db_table == "certification_providerlogentry"


def sql(statement: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_it_chains_the_rows(db):
    rows = append(3)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == log.GENESIS
    assert rows[1].prev_hash == rows[0].hash
    assert rows[2].prev_hash == rows[1].hash
    stored = ProviderLogEntry.objects.get(seq=2)
    assert log.entry_hash(stored) == stored.hash
    assert stored.details == {"n": 1, "tipo_ricevuta": "completa"}
    assert stored.recipients == ["bob@pec.example.test", "carol@example.test"]
    report = log.log_verify()
    assert report.ok is True
    assert report.rows == 3


def test_a_deferred_block_appends_its_events_at_its_end_under_one_lock_of_the_head(db):
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    ProviderLogHead.objects.create(pk=log.HEAD_ID, hash=log.GENESIS, anchor_prev_hash=log.GENESIS)
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), log.log_deferred():
        assert append(2) == [None, None]
        assert ProviderLogEntry.objects.count() == 0  # nothing written yet, the head not locked
        assert not [q for q in queries if "providerloghead" in q["sql"]]
        with log.log_deferred():  # a nested block joins the outer one
            append(1, at=T0 + dt.timedelta(hours=1))
        with transaction.atomic():
            append(1, at=T0 + dt.timedelta(hours=2))
    head = [q["sql"] for q in queries if "providerloghead" in q["sql"]]
    assert len(head) == 2  # one locking read, one update: for all four rows
    rows = list(ProviderLogEntry.objects.order_by("seq"))
    assert [r.at for r in rows] == [
        T0,
        T0 + dt.timedelta(minutes=1),
        T0 + dt.timedelta(hours=1),
        T0 + dt.timedelta(hours=2),
    ]
    assert log.log_verify().ok and log.log_verify().rows == 4


def test_a_deferred_event_goes_with_a_rolled_back_savepoint_and_a_failed_block_appends_nothing(db):
    from django.db import transaction

    with transaction.atomic(), log.log_deferred():
        append(1)
        try:
            with transaction.atomic():
                log.log_append(event="rolled-back", identifier="x")
                raise ValueError
        except ValueError:
            pass
        log.log_append(event="kept", identifier="y")
    assert list(ProviderLogEntry.objects.order_by("seq").values_list("event", flat=True)) == [
        ProviderLogEntry.Event.ACCEPTANCE,
        "kept",
    ]
    with pytest.raises(ValueError), transaction.atomic(), log.log_deferred():
        log.log_append(event="never", identifier="z")
        raise ValueError
    assert ProviderLogEntry.objects.count() == 2 and log.log_verify().ok
    log.log_append(event="after", identifier="w")  # and the next append is immediate again
    assert ProviderLogEntry.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_deferred_block_needs_a_transaction():
    with pytest.raises(RuntimeError, match="inside transaction.atomic"), log.log_deferred():
        pass


def test_it_stores_hostile_text(db):
    entry = log.log_append(event="ricezione", identifier="x", subject="nul\x00byte", details={"raw": "\x00"})
    assert ProviderLogEntry.objects.get(pk=entry.pk).subject == "nul\ufffdbyte"
    assert log.log_verify().ok is True


def test_it_refuses_updates_and_deletes_through_the_orm(db):
    entry = append(1)[0]
    entry.subject = "changed"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        ProviderLogEntry.objects.filter(pk=entry.pk).update(subject="changed")
    with pytest.raises(AppendOnlyError):
        ProviderLogEntry.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        ProviderLogEntry.objects.bulk_create([ProviderLogEntry(seq=9)])
    assert log.log_verify().ok is True


def test_it_reports_an_altered_row(db):
    append(5)
    sql("UPDATE certification_providerlogentry SET subject = %s WHERE seq = 3", ["Fattura 2 — pagata"])
    report = log.log_verify()
    assert report.ok is False
    assert (report.bad_seq, report.problem) == (3, "altered")


def test_it_reports_an_altered_row_whose_hash_was_recomputed(db):
    append(5)
    forged = ProviderLogEntry.objects.get(seq=3)
    forged.subject = "Fattura 2 — pagata"
    sql(
        "UPDATE certification_providerlogentry SET subject = %s, hash = %s WHERE seq = 3",
        [forged.subject, log.entry_hash(forged)],
    )
    report = log.log_verify()
    # Row 3 is self-consistent now, but row 4 still points at the original.
    assert (report.bad_seq, report.problem) == (4, "inserted")


def test_it_reports_a_deleted_row(db):
    append(5)
    sql("DELETE FROM certification_providerlogentry WHERE seq = 2")
    report = log.log_verify()
    assert (report.bad_seq, report.problem) == (3, "deleted")


def test_it_reports_deleted_rows_at_the_end(db):
    append(5)
    sql("DELETE FROM certification_providerlogentry WHERE seq >= 4")
    report = log.log_verify()
    assert (report.bad_seq, report.problem) == (4, "deleted")


def test_it_reports_an_inserted_row(db):
    rows = append(3)
    forged = ProviderLogEntry(
        seq=4, at=T0, event="accettazione", identifier="forged@pec.example.test", prev_hash=rows[-1].hash
    )
    forged.hash = log.entry_hash(forged)
    sql(
        "INSERT INTO certification_providerlogentry (seq, at, event, identifier, msgid, sender, recipients, subject, related_ids,"
        " provider, details_json, prev_hash, hash) VALUES (%s, %s, %s, %s, '', '', '[]', '', '[]', '', '{}', %s, %s)",
        [4, T0, "accettazione", "forged@pec.example.test", forged.prev_hash, forged.hash],
    )
    report = log.log_verify()
    assert (report.bad_seq, report.problem) == (4, "inserted")


def test_it_verifies_an_empty_log(db):
    assert log.log_verify().ok is True


def test_it_sweeps_only_rows_older_than_30_months(db, settings):
    settings.PEC_LOG_RETENTION_DAYS = 30
    old = append(3, at=dt.datetime(2023, 1, 1, tzinfo=dt.UTC))
    young = append(2, at=dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    now = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    # 30 months before now is 2024-05-27: the 2024-06 rows stay although the days setting is shorter.
    assert log.retention_cutoff(now) == dt.datetime(2024, 5, 27, tzinfo=dt.UTC)
    assert log.log_sweep(now) == 3
    assert list(ProviderLogEntry.objects.values_list("seq", flat=True)) == [4, 5]
    head = ProviderLogHead.objects.get()
    assert (head.anchor_seq, head.anchor_prev_hash) == (4, old[-1].hash)
    assert log.log_verify().ok is True
    assert log.log_sweep(now) == 0
    append(1, at=now)
    assert log.log_verify().ok is True
    assert young[0].seq == 4


def test_it_keeps_the_chain_verifiable_after_sweeping_everything(db):
    append(2, at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert log.log_sweep(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) == 2
    assert log.log_verify().ok is True
    append(1, at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    report = log.log_verify()
    assert report.ok is True
    assert report.first_seq == 3


def test_it_detects_a_row_deleted_before_the_anchor_is_moved(db):
    append(3, at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    append(2, at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    sql("DELETE FROM certification_providerlogentry WHERE seq <= 4")
    report = log.log_verify()
    assert (report.bad_seq, report.problem) == (5, "deleted")


def test_it_sweeps_with_the_clock(db, settings):
    settings.PEC_LOG_RETENTION_DAYS = 1
    append(1, at=dt.datetime(2023, 1, 1, tzinfo=dt.UTC))
    with time_machine.travel(dt.datetime(2025, 6, 30, tzinfo=dt.UTC), tick=False):
        assert log.log_sweep() == 0
    with time_machine.travel(dt.datetime(2025, 7, 2, tzinfo=dt.UTC), tick=False):
        assert log.log_sweep() == 1


def test_it_runs_log_verify_and_log_sweep_from_the_command_line(db, capsys):
    append(3)
    call_command("pec", "log-verify")
    assert "OK: 3 rows, chain intact (#1–#3)" in capsys.readouterr().out
    call_command("pec", "log-sweep", "--now", "2030-01-01T00:00:00+00:00")
    assert "removed 3 provider log rows" in capsys.readouterr().out
    append(2, at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    sql("UPDATE certification_providerlogentry SET sender = 'mallory@example.test' WHERE seq = 4")
    with pytest.raises(CommandError, match=r"broken at row #4 \(altered\)"):
        call_command("pec", "log-verify")


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs real concurrent connections (PostgreSQL)"
)
@pytest.mark.django_db(transaction=True)
def test_it_never_forks_the_chain_under_concurrent_writers():
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def writer(n: int) -> None:
        from pecmail.transport.services import InboundRequest, inbound_store_many

        try:
            barrier.wait()
            for i in range(10):
                if n % 2:  # as pec smtpd's writer appends: the head locked inside its own statement
                    inbound_store_many([InboundRequest(raw=f"{n}-{i}".encode(), mail_from="", rcpt_tos=[])])
                else:
                    log.log_append(event="ricezione", identifier=f"w{n}-{i}@pec.example.test")
        except BaseException as exc:  # noqa: BLE001 — surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ProviderLogEntry.objects.count() == 40
    assert log.log_verify().ok is True


def test_it_sweeps_from_the_beat_task(db, settings):
    settings.PEC_LOG_RETENTION_DAYS = 1
    from pecmail.celery import app
    from pecmail.certification.tasks import log_sweep

    append(2, at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert app.conf.beat_schedule["certification.log_sweep"]["task"] == "certification.log_sweep"
    assert log_sweep.delay().get() == 2
    assert log_sweep.delay().get() == 0
    assert log.log_verify().ok is True


def test_it_exports_a_signed_day_of_the_log(db, settings, tmp_path):
    import json

    from pecmail.certification import pki, smime
    from pecmail.certification.testing import trust_store_for

    settings.PEC_SIGNING_KEY = tmp_path / "provider.key"
    settings.PEC_SIGNING_CERT = tmp_path / "provider.pem"
    settings.PEC_CA_CERT = tmp_path / "ca.pem"
    pki.init_provider(domain=settings.PEC_DOMAIN, name="Acme", directory=tmp_path)
    rows = append(2)
    append(1, at=T0 + dt.timedelta(days=2))
    out = tmp_path / "log.p7m"
    call_command("pec", "log-export", "--date", T0.date().isoformat(), "--sign", "--out", str(out))
    result = smime.verify_attached(out.read_bytes(), trust=trust_store_for(pki.load_identity()))
    assert result.trusted is True
    lines = [json.loads(line) for line in result.signed_entity.decode().splitlines()]
    assert [line["hash"] for line in lines] == [r.hash for r in rows]
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    assert log.log_export(day=dt.date(2000, 1, 1)) == b""
