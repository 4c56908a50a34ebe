"""The hand-assembled CMS signer and the accept-only fast verification path agree with the full ones."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from pecmail.certification import smime
from pecmail.certification.testing import make_identity, trust_store_for

ENTITY = b'Content-Type: text/plain; charset="us-ascii"\r\n\r\nRicevuta di prova.\r\n' * 20


@pytest.fixture(scope="module")
def identity():
    return make_identity()


def _signing_time(der: bytes) -> dt.datetime:
    signer = cms.ContentInfo.load(der)["content"]["signer_infos"][0]
    return next(a for a in signer["signed_attrs"] if a["type"].native == "signing_time")["values"][0].native


def test_it_signs_byte_for_byte_like_the_cryptography_builder(identity):
    reference = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(ENTITY)
        .add_signer(identity.cert, identity.key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    )
    assert smime._sign_detached(ENTITY, identity, _signing_time(reference)) == reference


def test_it_writes_generalized_time_from_2050(identity):
    when = dt.datetime(2051, 6, 1, 12, 0, tzinfo=dt.UTC)
    der = smime._sign_detached(ENTITY, identity, when)
    assert _signing_time(der) == when
    signer = cms.ContentInfo.load(der)["content"]["signer_infos"][0]
    time_value = next(a for a in signer["signed_attrs"] if a["type"].native == "signing_time")["values"][0]
    assert time_value.name == "generalized_time"


def _full_path(monkeypatch, raw: bytes, trust, at) -> smime.SignatureResult:
    with monkeypatch.context() as patch:
        patch.setattr(smime, "_fast_verify_cms", lambda der, entity, result: False)
        return smime.verify(raw, trust=trust, at=at)


def test_it_gives_the_same_result_as_the_full_path(identity, monkeypatch):
    trust = trust_store_for(identity)
    raw = smime.build_signed_message([("Subject", "prova")], ENTITY, identity)
    at = dt.datetime.now(dt.UTC)
    fast = smime.verify(raw, trust=trust, at=at)
    full = _full_path(monkeypatch, raw, trust, at)
    assert fast.valid is True
    assert fast.trusted is True
    for name in (
        "signed",
        "valid",
        "trusted",
        "signer_sha1",
        "digest_algorithm",
        "signed_entity",
        "provider",
        "problems",
        "signing_time",
        "canonicalised",
        "certificate_ders",
    ):
        assert getattr(fast, name) == getattr(full, name), name
    assert fast.signer == full.signer


def test_it_takes_the_fast_path_for_its_own_signatures(identity):
    der = smime.sign(ENTITY, identity)
    result = smime.SignatureResult()
    assert smime._fast_verify_cms(der, ENTITY, result) is True
    assert result.digest_algorithm == "sha256"


def _full_path_accepts(monkeypatch, der: bytes, entity: bytes) -> bool:
    with monkeypatch.context() as patch:
        patch.setattr(smime, "_fast_verify_cms", lambda der, entity, result: False)
        try:
            smime._verify_cms(der, entity, smime.SignatureResult())
        except smime._Invalid:
            return False
    return True


def test_it_never_accepts_quickly_what_the_full_path_refuses(identity, monkeypatch):
    """Flip each bit 0 of every byte: the fast path may only say yes where the full path does."""
    der = smime.sign(ENTITY, identity)
    accepted = 0
    for index in range(len(der)):
        tampered = bytearray(der)
        tampered[index] ^= 0x01
        if smime._fast_verify_cms(bytes(tampered), ENTITY, smime.SignatureResult()):
            accepted += 1
            assert _full_path_accepts(monkeypatch, bytes(tampered), ENTITY), index
    # Only bytes the CMS signature does not cover (inside the certificate) can still verify.
    assert accepted < len(der) // 2
    assert smime._fast_verify_cms(der, ENTITY + b" ", smime.SignatureResult()) is False


def test_it_agrees_with_the_full_path_on_test_built_signatures(identity, monkeypatch):
    from pecmail.certification.testing import build_cms

    der = build_cms(ENTITY, identity)
    assert hashlib.sha256(ENTITY).digest() in der
    result = smime.SignatureResult()
    smime._verify_cms(der, ENTITY, result)
    assert result.digest_algorithm == "sha256"
    assert _full_path_accepts(monkeypatch, der, ENTITY) is True


def test_the_fast_header_reader_yields_what_the_email_feedparser_yields():
    """Every header block, well-formed or not, reads the same through either path."""
    import random
    from email.parser import BytesParser
    from email.policy import compat32

    from pecmail.certification import smime as smime_module

    pieces = [
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary="b1"',
        b"Content-Type: text/plain",
        b"\tcharset=utf-8",
        b" continued",
        b"X-Ricevuta: accettazione",
        b"Subject: =?utf-8?q?caff=C3=A8?=",
        b"Subject: caff\xc3\xa8 non ASCII",
        b"From alice@example.test Mon Jan  1 00:00:00 2024",
        b": no name",
        b"No colon here",
        b"Bad Name: space in the name",
        b"X-Bare-CR: a\rb",
        b"Content-Transfer-Encoding: base64",
        b"x:",
        b"",
    ]
    rng = random.Random(20261206)
    fast_taken = 0
    for _ in range(3000):
        lines = [rng.choice(pieces) for _ in range(rng.randint(1, 6))]
        block = rng.choice([b"\r\n", b"\n"]).join(lines) + rng.choice([b"", b"\r\n", b"\n"])
        expected = BytesParser(policy=compat32).parsebytes(block + b"\n\n", headersonly=True)
        got = smime_module._parse_headers(block)
        assert got.items() == expected.items(), block
        assert got.get_content_type() == expected.get_content_type(), block
        assert got.get_all("Content-Type") == expected.get_all("Content-Type"), block
        fast_taken += bool(smime_module._PLAIN_HEADER_BLOCK.fullmatch(block))
    assert fast_taken > 300  # both paths were exercised
