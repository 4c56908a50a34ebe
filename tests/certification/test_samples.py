"""The real provider messages (copied from shared/pec/samples) classify as their README says."""

import datetime as dt
import email.utils
import re
from pathlib import Path

import pytest

from pecmail.certification import classify, testing
from pecmail.certification.trust import TrustStore

SAMPLES = Path(__file__).resolve().parent / "samples"

REAL = {
    "aruba-2018-accettazione.eml": ("accettazione", None),
    "aruba-2018-avvenuta-consegna-completa.eml": ("avvenuta-consegna", "completa"),
    "aruba-2014-accettazione.eml": ("accettazione", None),
    "aruba-2014-avvenuta-consegna-completa.eml": ("avvenuta-consegna", "completa"),
    "aruba-2014-posta-certificata-1.eml": ("posta-certificata", "completa"),
    "aruba-2014-posta-certificata-2.eml": ("posta-certificata", "completa"),
    "sogei-2018-posta-certificata-breve.eml": ("posta-certificata", "breve"),
    "sogei-2018-posta-certificata-sdi-notice.eml": ("posta-certificata", "breve"),
    "namirial-2024-posta-certificata-esterno.eml": ("posta-certificata", "completa"),
}


def read(kind: str, name: str) -> bytes:
    return (SAMPLES / kind / name).read_bytes()


def own_date(raw: bytes) -> dt.datetime:
    """The message's Date header: the samples' certificates were valid then, not now."""
    match = re.search(rb"^Date: (.*)$", raw, re.MULTILINE)
    return email.utils.parsedate_to_datetime(match.group(1).decode().strip())


@pytest.fixture(scope="module")
def trust() -> TrustStore:
    return testing.real_providers_trust_store()


def test_the_fixture_folder_holds_every_sample():
    assert sorted(p.name for p in (SAMPLES / "real").glob("*.eml")) == sorted(REAL)
    assert len(list((SAMPLES / "tampered").glob("*.eml"))) == 3
    assert len(list((SAMPLES / "anonymised").glob("*.eml"))) == 2


@pytest.mark.parametrize("name", sorted(REAL))
def test_it_classifies_every_real_sample_as_valid_trusted_pec(name, trust):
    raw = read("real", name)
    result = classify.classify(raw, trust=trust, at=own_date(raw))
    kind, receipt_type = REAL[name]
    assert result.problems == []
    assert result.kind == kind
    assert result.receipt_type == receipt_type
    assert result.valid is True
    assert result.signature.trusted is True
    assert result.daticert.tipo == kind
    assert result.pec_id == result.daticert.identificativo
    assert result.pec_id in result.referenced_ids
    if kind == "posta-certificata":
        assert result.postacert is not None
        assert f"<{result.pec_id}>" == result.message_id


def test_the_namirial_envelope_lists_seven_ordinary_recipients(trust):
    raw = read("real", "namirial-2024-posta-certificata-esterno.eml")
    result = classify.classify(raw, trust=trust, at=own_date(raw))
    assert [r.tipo for r in result.daticert.destinatari] == ["esterno"] * 7


def test_the_real_receipts_link_to_the_client_message_id(trust):
    raw = read("real", "aruba-2018-avvenuta-consegna-completa.eml")
    result = classify.classify(raw, trust=trust, at=own_date(raw))
    assert result.client_msgid.startswith("<1542123565.921546936035156")
    assert result.daticert.consegna == "l.battistini@pec.it"


@pytest.mark.parametrize("name", sorted(REAL))
def test_a_real_sample_is_not_trusted_by_an_empty_index(name):
    raw = read("real", name)
    result = classify.classify(raw, trust=TrustStore(), at=own_date(raw))
    assert result.signature.valid is True
    assert result.valid is False


def test_a_real_sample_is_not_trusted_today_because_its_certificate_expired(trust):
    raw = read("real", "aruba-2018-accettazione.eml")
    result = classify.classify(raw, trust=trust, at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert result.valid is False
    assert any("expired" in p for p in result.problems)


@pytest.mark.parametrize("name", sorted(p.name for p in (SAMPLES / "tampered").glob("*.eml")))
def test_every_tampered_sample_is_invalid(name, trust):
    raw = read("tampered", name)
    result = classify.classify(raw, trust=trust, at=own_date(raw))
    assert result.kind == "posta-certificata"
    assert result.valid is False
    assert result.problems != []
    assert classify.classify(raw).valid is False


def test_the_tampered_sample_without_daticert_says_so(trust):
    raw = read("tampered", "sogei-2018-posta-certificata-no-daticert.eml")
    result = classify.classify(raw, trust=trust, at=own_date(raw))
    assert "daticert.xml is missing" in result.problems


def test_the_anonymised_acceptance_parses_as_far_as_it_goes(trust):
    raw = read("anonymised", "aruba-2024-accettazione.eml")
    result = classify.classify(raw, trust=trust, at=own_date(raw))
    assert result.kind == "accettazione"
    assert result.valid is False
    assert result.daticert.tipo == "accettazione"
    assert result.pec_id.startswith("opec210312.")


def test_the_anonymised_delivery_error_reports_its_broken_daticert(trust):
    raw = read("anonymised", "aruba-2024-errore-consegna.eml")
    result = classify.classify(raw, trust=trust, at=own_date(raw))
    assert result.kind == "errore-consegna"
    assert result.valid is False
    assert any(p.startswith("daticert.xml:") and "DTD" in p for p in result.problems)
    # Read leniently for diagnostics, never as valid certification data.
    assert result.daticert.errore == "no-dest"
    assert result.daticert.errore_esteso == "5.1.1 - FAKE Pec S.p.A. - indirizzo non valido"
