import datetime as dt
import json
import random

import pytest

from pecmail.certification import classify, envelopes, smime, testing, texts
from pecmail.certification.envelopes import Transaction

WHEN = dt.datetime(2025, 3, 1, 9, 15, 2, tzinfo=dt.UTC)
ORIGINAL = (
    b"From: mario@pec.example.test\r\nTo: anna@pec.altro.test\r\nSubject: Prova\r\n"
    b"Message-ID: <c1@client>\r\n\r\nTesto.\r\n"
)


@pytest.fixture(scope="module")
def identity():
    return testing.make_identity("pec.example.test", "Example PEC S.p.A.")


@pytest.fixture(scope="module")
def trust(identity):
    return testing.trust_store_for(identity)


@pytest.fixture(scope="module")
def tx():
    return Transaction.from_message(ORIGINAL, pec_id="pecmail.1.abc@pec.example.test", when=WHEN)


@pytest.fixture(scope="module")
def envelope(tx, identity) -> bytes:
    return envelopes.build_transport_envelope(tx, ORIGINAL, identity=identity).raw


def test_it_classifies_ordinary_mail_as_ordinary(trust):
    result = classify.classify(ORIGINAL, trust=trust)
    assert result.kind == "ordinary"
    assert result.valid is False
    assert result.signature.signed is False


def test_it_reads_header_names_case_insensitively(tx, identity, trust):
    raw = envelopes.build_acceptance(tx, identity=identity).raw.replace(b"X-Ricevuta: ", b"x-ricevuta: ")
    result = classify.classify(raw, trust=trust, at=WHEN)
    assert result.kind == "accettazione"
    assert result.valid is True


def test_x_ricevuta_wins_over_x_trasporto(tx, identity, trust):
    raw = envelopes.build_acceptance(tx, identity=identity).raw
    raw = raw.replace(
        b"X-Ricevuta: accettazione\r\n", b"X-Trasporto: posta-certificata\r\nX-Ricevuta: accettazione\r\n"
    )
    assert classify.classify(raw, trust=trust, at=WHEN).kind == "accettazione"


def test_it_never_classifies_by_subject(trust):
    raw = b"From: a@b.test\r\nSubject: ACCETTAZIONE: x\r\n\r\nbody\r\n"
    assert classify.classify(raw, trust=trust).kind == "ordinary"


def test_it_flags_a_daticert_that_contradicts_the_header(tx, identity, trust):
    # X-Ricevuta sits outside the signed entity: relabelling keeps the signature valid.
    raw = envelopes.build_acceptance(tx, identity=identity).raw.replace(
        b"X-Ricevuta: accettazione", b"X-Ricevuta: avvenuta-consegna"
    )
    result = classify.classify(raw, trust=trust, at=WHEN)
    assert result.signature.valid is True
    assert result.valid is False
    assert any("does not match the header" in p for p in result.problems)


def test_it_flags_a_virus_notice_without_x_verificasicurezza(tx, identity, trust):
    raw = envelopes.build_non_acceptance(tx, identity=identity, reason="Eicar", virus=True).raw
    raw = raw.replace(b"X-VerificaSicurezza: errore\r\n", b"")
    result = classify.classify(raw, trust=trust, at=WHEN)
    assert result.valid is False
    assert any("X-VerificaSicurezza" in p for p in result.problems)


def test_it_refuses_an_unknown_x_ricevuta(tx, identity, trust):
    raw = envelopes.build_acceptance(tx, identity=identity).raw.replace(
        b"X-Ricevuta: accettazione", b"X-Ricevuta: mancata-consegna"
    )
    result = classify.classify(raw, trust=trust, at=WHEN)
    assert result.kind == "malformed"
    assert result.valid is False


def test_it_refuses_an_envelope_without_postacert(tx, identity, trust):
    d = envelopes._daticert(tx, identity, "posta-certificata", ricevuta="completa")
    body = texts.render("posta-certificata", envelopes._facts(tx))
    entity = envelopes._entity(body, envelopes.daticert.build(d), None)
    raw = smime.build_signed_message([("X-Trasporto", "posta-certificata")], entity, identity)
    result = classify.classify(raw, trust=trust, at=WHEN)
    assert result.valid is False
    assert "postacert.eml is missing from the transport envelope" in result.problems


def test_it_refuses_a_signer_outside_the_index(tx, trust):
    forged = testing.make_identity("pec.example.test", "Example PEC S.p.A.", ca_name="forger")
    raw = envelopes.build_acceptance(tx, identity=forged).raw
    result = classify.classify(raw, trust=trust, at=WHEN)
    assert result.signature.valid is True
    assert result.signature.trusted is False
    assert result.valid is False
    # Without an index only the signature itself is checked.
    assert classify.classify(raw, at=WHEN).valid is True


def test_it_refuses_one_changed_byte_in_the_signed_entity(envelope, trust):
    raw = envelope.replace(b"Testo.", b"Testa.")
    result = classify.classify(raw, trust=trust, at=WHEN)
    assert result.kind == "posta-certificata"
    assert result.valid is False


def test_it_serialises_to_json(envelope, trust):
    data = classify.classify(envelope, trust=trust, at=WHEN).to_json()
    text = json.dumps(data)
    assert data["type"] == "posta-certificata"
    assert data["signature_valid"] is True and data["trusted_signer"] is True
    assert data["daticert"]["identificativo"] == "pecmail.1.abc@pec.example.test"
    assert data["daticert"]["zona"] == "+0100"
    assert "pecmail.1.abc@pec.example.test" in text


def assert_safe(result: classify.Classification) -> None:
    assert result.kind in classify.KINDS
    assert result.valid is False
    json.dumps(result.to_json())


def test_it_survives_every_truncation_of_an_envelope(envelope, trust):
    for cut in range(0, len(envelope) - 40, 97):
        assert_safe(classify.classify(envelope[:cut], trust=trust, at=WHEN))


def test_it_survives_random_garbage_and_byte_flips(envelope, trust):
    rng = random.Random(6109)
    for _ in range(40):
        assert_safe(classify.classify(rng.randbytes(rng.randrange(0, 4000)), trust=trust))
    for _ in range(40):
        damaged = bytearray(envelope)
        for _ in range(5):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        result = classify.classify(bytes(damaged), trust=trust, at=WHEN)
        assert result.kind in classify.KINDS
        json.dumps(result.to_json())


def test_it_survives_deeply_nested_mime(trust):
    depth = 5000
    head = b"".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode() for i in range(depth)
    )
    raw = b"From: a@b.test\r\nX-Trasporto: posta-certificata\r\n" + head + b"\r\nx\r\n"
    result = classify.classify(raw, trust=trust)
    assert_safe(result)
    assert any("deeper" in p for p in result.problems)


def test_it_survives_many_parts(trust):
    parts = b"".join(b'--b\r\nContent-Type: text/plain; name="x.txt"\r\n\r\nx\r\n' for _ in range(5000))
    raw = (
        b'From: a@b.test\r\nX-Ricevuta: accettazione\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + parts
        + b"--b--\r\n"
    )
    assert_safe(classify.classify(raw, trust=trust))


def test_it_survives_a_hostile_daticert(tx, identity, trust):
    bomb = b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><postacert>&b;</postacert>'
    entity = envelopes._multipart("mixed", [envelopes._daticert_part(bomb)])
    raw = smime.build_signed_message([("X-Ricevuta", "accettazione")], entity, identity)
    result = classify.classify(raw, trust=trust, at=WHEN)
    assert result.valid is False
    assert any("DOCTYPE" in p for p in result.problems)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\r\n\r\n", b"no headers at all", b"\x00" * 100, b"X-Ricevuta: accettazione\r\n", "text"],
    ids=["empty", "blank", "no-colon", "nul", "header-only", "str"],
)
def test_it_survives_degenerate_input(raw, trust):
    assert_safe(classify.classify(raw, trust=trust))


def test_it_refuses_oversized_input_without_parsing(monkeypatch, envelope, trust):
    monkeypatch.setattr(classify, "MAX_MESSAGE_SIZE", 1000)
    result = classify.classify(envelope, trust=trust, at=WHEN)
    assert result.kind == "malformed"
    assert result.valid is False
