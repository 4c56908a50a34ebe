import base64
import datetime as dt
import email.utils
import re

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from pecmail.certification import smime
from pecmail.certification.smime import Problem
from pecmail.certification.testing import (
    build_cms,
    make_identity,
    real_providers_trust_store,
    samples_dir,
    trust_store_for,
)
from pecmail.certification.trust import TrustStore

DATICERT_B64 = base64.b64encode(b'<?xml version="1.0" encoding="UTF-8"?><postacert tipo="accettazione"/>')
ENTITY = (
    b'Content-Type: multipart/mixed; boundary="inner"\r\n'
    b"\r\n"
    b"--inner\r\n"
    b'Content-Type: text/plain; charset="iso-8859-1"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Ricevuta di accettazione del messaggio.\r\n"
    b"--inner\r\n"
    b'Content-Type: application/xml; name="daticert.xml"\r\n'
    b'Content-Disposition: inline; filename="daticert.xml"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + DATICERT_B64 + b"\r\n"
    b"--inner--\r\n"
)
HEADERS = [
    ("Date", "Fri, 27 Nov 2026 21:00:00 +0100"),
    ("From", "posta-certificata@pec.example.test"),
    ("To", "alice@pec.example.test"),
    ("Subject", "ACCETTAZIONE: prova"),
]
AT = dt.datetime(2026, 11, 27, 20, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def identity():
    return make_identity()


@pytest.fixture(scope="module")
def trust(identity):
    return trust_store_for(identity)


@pytest.fixture(scope="module")
def signed(identity):
    return smime.build_signed_message(HEADERS, ENTITY, identity)


def crafted(identity, **kwargs) -> bytes:
    return smime.assemble_signed_message(HEADERS, ENTITY, build_cms(ENTITY, identity, **kwargs))


def rejected(result, problem):
    assert result.valid is False
    assert result.trusted is False
    assert problem in result.problems


def test_it_accepts_its_own_signature(signed, trust, identity):
    result = smime.verify(signed, trust=trust, at=AT)
    assert result.problems == []
    assert result.signed is True
    assert result.valid is True
    assert result.trusted is True
    assert result.signed_entity == ENTITY
    assert result.digest_algorithm == "sha256"
    assert result.signer == identity.cert
    assert result.provider.name == identity.name
    assert result.signer_addresses == ["posta-certificata@pec.example.test"]
    assert result.canonicalised is False


def test_it_accepts_the_legacy_and_the_standard_protocol(identity, trust):
    for protocol in ("application/pkcs7-signature", "application/x-pkcs7-signature"):
        raw = smime.assemble_signed_message(HEADERS, ENTITY, smime.sign(ENTITY, identity), protocol=protocol)
        assert smime.verify(raw, trust=trust, at=AT).trusted is True


def test_it_accepts_a_hand_made_sha1_signature(identity, trust):
    result = smime.verify(crafted(identity, digest="sha1"), trust=trust, at=AT)
    assert result.trusted is True
    assert result.digest_algorithm == "sha1"


def test_it_verifies_a_message_whose_line_ends_became_lf(signed, trust):
    result = smime.verify(signed.replace(b"\r\n", b"\n"), trust=trust, at=AT)
    assert result.trusted is True
    assert result.canonicalised is True
    assert result.signed_entity == ENTITY.replace(b"\r\n", b"\n")


def test_it_rejects_one_byte_changed_in_the_body(signed, trust):
    raw = signed.replace(b"Ricevuta di accettazione", b"Ricevuta di accettaziome")
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.DIGEST_MISMATCH)


def test_it_rejects_one_byte_changed_in_daticert(signed, trust):
    altered = base64.b64encode(b'<?xml version="1.0" encoding="UTF-8"?><postacert tipo="accettaziome"/>')
    assert altered != DATICERT_B64
    rejected(smime.verify(signed.replace(DATICERT_B64, altered), trust=trust, at=AT), Problem.DIGEST_MISMATCH)


def test_it_rejects_one_byte_changed_in_the_signature(identity, trust):
    der = bytearray(smime.sign(ENTITY, identity))
    # The RSA signature value is the last field of the SignerInfo, at the very end of the DER.
    der[-10] ^= 0x01
    raw = smime.assemble_signed_message(HEADERS, ENTITY, bytes(der))
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.BAD_SIGNATURE)


def test_it_rejects_a_missing_message_digest(identity, trust):
    rejected(smime.verify(crafted(identity, message_digest=None), trust=trust, at=AT), Problem.DIGEST_MISSING)


def test_it_rejects_a_wrong_message_digest(identity, trust):
    raw = crafted(identity, message_digest=b"\x00" * 32)
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.DIGEST_MISMATCH)


def test_it_rejects_a_missing_content_type_attribute(identity, trust):
    rejected(
        smime.verify(crafted(identity, content_type=None), trust=trust, at=AT), Problem.CONTENT_TYPE_MISSING
    )


def test_it_rejects_a_mismatched_content_type_attribute(identity, trust):
    raw = crafted(identity, content_type="signed_data")
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.CONTENT_TYPE_MISMATCH)


def test_it_rejects_md5(identity, trust):
    rejected(smime.verify(crafted(identity, digest="md5"), trust=trust, at=AT), Problem.WEAK_DIGEST)


def test_it_rejects_no_signer(identity, trust):
    rejected(smime.verify(crafted(identity, signers=0), trust=trust, at=AT), Problem.NO_SIGNER)


def test_it_rejects_two_signers(identity, trust):
    rejected(smime.verify(crafted(identity, signers=2), trust=trust, at=AT), Problem.MULTIPLE_SIGNERS)


def test_it_rejects_econtent_in_a_detached_signature(identity, trust):
    rejected(smime.verify(crafted(identity, econtent=ENTITY), trust=trust, at=AT), Problem.ECONTENT_PRESENT)


def test_it_rejects_an_absent_signer_certificate(identity, trust):
    rejected(
        smime.verify(crafted(identity, certificates=[]), trust=trust, at=AT), Problem.CERTIFICATE_MISSING
    )


def test_it_rejects_a_swapped_signer_certificate(identity):
    other = make_identity("pec.other.test", "Other PEC")
    trust = trust_store_for(identity, other)
    raw = crafted(identity, certificates=[other.cert])
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.CERTIFICATE_MISSING)
    # The signer identifier names the other provider's certificate, but the key is ours.
    raw = crafted(identity, certificates=[other.cert], sid_certificate=other.cert)
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.BAD_SIGNATURE)


def test_it_does_not_trust_an_expired_certificate():
    expired = make_identity(
        not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), not_after=dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    )
    raw = smime.build_signed_message(HEADERS, ENTITY, expired)
    trust = trust_store_for(expired)
    result = smime.verify(raw, trust=trust, at=AT)
    assert result.valid is True
    assert result.trusted is False
    assert result.problems == [Problem.EXPIRED]
    assert smime.verify(raw, trust=trust, at=dt.datetime(2020, 6, 1, tzinfo=dt.UTC)).trusted is True


def test_it_does_not_trust_a_certificate_not_yet_valid():
    future = make_identity(
        not_before=dt.datetime(2030, 1, 1, tzinfo=dt.UTC), not_after=dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    )
    result = smime.verify(
        smime.build_signed_message(HEADERS, ENTITY, future), trust=trust_store_for(future), at=AT
    )
    assert result.valid is True
    assert result.trusted is False
    assert result.problems == [Problem.NOT_YET_VALID]


def test_it_does_not_trust_a_signer_missing_from_the_trust_store(signed):
    forged = make_identity("pec.example.test", "Example PEC", ca_name="forged")
    result = smime.verify(signed, trust=trust_store_for(forged), at=AT)
    assert result.valid is True
    assert result.trusted is False
    assert result.provider is None
    assert result.problems == [Problem.NOT_IN_TRUST_STORE]
    assert smime.verify(signed, trust=TrustStore(), at=AT).trusted is False


def test_it_checks_the_chain_when_the_store_has_anchors(signed, identity):
    good = trust_store_for(identity, anchors=(identity.chain[0],))
    assert smime.verify(signed, trust=good, at=AT).trusted is True
    other_ca = make_identity("pec.other.test", "Other", ca_name="other").chain[0]
    result = smime.verify(signed, trust=trust_store_for(identity, anchors=(other_ca,)), at=AT)
    assert result.problems == [Problem.NO_CHAIN]


def _boundary(raw: bytes) -> bytes:
    return re.search(rb'boundary="([^"]+)"', raw).group(1)


def test_it_rejects_an_unsigned_part_inside_multipart_signed(signed, trust):
    delimiter = b"--" + _boundary(signed)
    extra = b"\r\n" + delimiter + b"\r\nContent-Type: text/plain\r\n\r\nPaga subito su iban IT00X.\r\n"
    raw = signed.replace(b"\r\n" + delimiter + b"--", extra + delimiter + b"--")
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.PART_COUNT)


def test_it_rejects_a_signed_part_beside_an_unsigned_part(signed, trust):
    headers, _, _ = signed.partition(b"\r\n\r\n")
    signed_entity = b"\r\n".join(
        line
        for line in signed.split(b"\r\n")
        if not line.startswith((b"Date:", b"From:", b"To:", b"Subject:"))
    )
    raw = (
        b"From: posta-certificata@pec.example.test\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
        b"--outer\r\nContent-Type: text/plain\r\n\r\nPaga subito.\r\n"
        b"--outer\r\n" + signed_entity + b"\r\n--outer--\r\n"
    )
    result = smime.verify(raw, trust=trust, at=AT)
    assert result.signed is True
    rejected(result, Problem.NOT_TOP_LEVEL)


def test_it_rejects_the_signed_entity_nested_in_multipart_mixed(signed, trust):
    body = signed.split(b"\r\n\r\n", 1)[1]
    content_type = re.search(rb"Content-Type: multipart/signed;.*?\r\n(?! )", signed, re.S).group(0)
    raw = (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n'
        b"--outer\r\n" + content_type + b"\r\n" + body + b"\r\n--outer--\r\n"
    )
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.NOT_TOP_LEVEL)


def test_it_rejects_content_after_the_closing_delimiter(signed, trust):
    rejected(
        smime.verify(signed + b"Testo aggiunto dopo la firma.\r\n", trust=trust, at=AT), Problem.TRAILING_DATA
    )


def test_it_rejects_a_duplicate_content_type(signed, trust):
    raw = b"Content-Type: text/plain\r\n" + signed
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.DUPLICATE_CONTENT_TYPE)


def test_it_rejects_deeply_nested_asn1_fast(trust):
    depth = 100_000
    nested = (
        b"".join(b"\x30\x84" + (6 * (depth - 1 - i) + 2).to_bytes(4, "big") for i in range(depth))
        + b"\x05\x00"
    )
    raw = smime.assemble_signed_message(HEADERS, ENTITY, nested)
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.ASN1_TOO_DEEP)


def test_it_rejects_an_indefinite_length_bomb(trust):
    raw = smime.assemble_signed_message(HEADERS, ENTITY, b"\x30\x80" * 50_000)
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.ASN1_TOO_DEEP)


def test_it_rejects_an_oversized_signature(trust):
    raw = smime.assemble_signed_message(
        HEADERS, ENTITY, b"\x04\x84\x00\x20\x00\x00" + b"\x00" * (2 * 1024 * 1024)
    )
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.SIGNATURE_TOO_LARGE)


def test_it_names_a_non_ascii_boundary(signed, trust):
    boundary = _boundary(signed)
    raw = signed.replace(b'boundary="' + boundary, b'boundary="\xe9' + boundary[1:], 1)
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.NO_BOUNDARY)


def test_it_names_an_undecodable_transfer_encoding(signed, trust):
    raw = signed.replace(
        b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment",
        b"Content-Transfer-Encoding: base\xff64\r\nContent-Disposition: attachment",
    )
    assert raw != signed
    rejected(smime.verify(raw, trust=trust, at=AT), Problem.SIGNATURE_ENCODING)


def test_it_refuses_megabytes_of_headers(trust):
    raw = b"X-Filler: " + b"a" * (2 * 1024 * 1024) + b"\r\nSubject: x\r\n\r\nbody\r\n"
    result = smime.verify(raw, trust=trust, at=AT)
    assert result.valid is False
    assert result.problems == [Problem.MALFORMED_MIME]


def test_it_reports_an_unsigned_message():
    result = smime.verify(b"From: a@b.test\r\nSubject: ciao\r\n\r\nciao\r\n", trust=TrustStore())
    assert result.signed is False
    assert result.valid is False
    assert result.problems == [Problem.NOT_SIGNED]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"\x00\xff" * 100,
        b'Content-Type: multipart/signed; boundary="b"; protocol="application/pkcs7-signature"\r\n\r\n--b--\r\n',
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"\r\n\r\n--b\r\n',
        b'Content-Type: multipart/signed; boundary=""; protocol="application/pkcs7-signature"\r\n\r\n',
        b'Content-Type: multipart/signed; boundary="b"; protocol="application/pkcs7-signature"\r\n\r\n'
        b"--b\r\n\r\nx\r\n--b\r\nContent-Type: application/pkcs7-signature\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!\r\n--b--\r\n",
        b'Content-Type: multipart/signed; boundary="b"; protocol="application/pkcs7-signature"\r\n\r\n'
        b"--b\r\n\r\nx\r\n--b\r\nContent-Type: application/pkcs7-signature\r\n\r\n\x30\x03\x02\x01\x01\r\n--b--\r\n",
    ],
)
def test_it_never_raises_on_hostile_input(raw):
    result = smime.verify(raw, trust=TrustStore())
    assert result.valid is False
    assert result.problems != []


def test_it_never_raises_on_any_truncation(signed, trust):
    for cut in range(0, len(signed), 37):
        result = smime.verify(signed[:cut], trust=trust, at=AT)
        assert result.valid is False


def test_it_never_trusts_a_signature_with_any_byte_flipped(identity, trust):
    der = smime.sign(ENTITY, identity)
    cert = identity.cert.public_bytes(Encoding.DER)
    cert_start = der.index(cert)
    for position in range(len(der)):
        altered = bytearray(der)
        altered[position] ^= 0xFF
        raw = smime.assemble_signed_message(HEADERS, ENTITY, bytes(altered))
        result = smime.verify(raw, trust=trust, at=AT)
        assert result.trusted is False
        # A flip inside the certificate may leave the RSA maths intact, but the certificate is then unknown.
        if not cert_start <= position < cert_start + len(cert):
            assert result.valid is False, position


REAL = sorted((samples_dir() / "real").glob("*.eml")) if (samples_dir() / "real").is_dir() else []
TAMPERED = sorted((samples_dir() / "tampered").glob("*.eml")) if (samples_dir() / "tampered").is_dir() else []


def _date(raw: bytes) -> dt.datetime:
    match = re.search(rb"^Date: (.+?)\r?$", raw, re.M | re.I)
    return email.utils.parsedate_to_datetime(match.group(1).decode())


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_it_trusts_the_real_samples_at_their_date(path):
    raw = path.read_bytes()
    result = smime.verify(raw, trust=real_providers_trust_store(), at=_date(raw))
    assert result.problems == []
    assert result.trusted is True
    assert result.digest_algorithm == "sha1"
    assert result.provider is not None
    # Today their certificates have expired.
    later = smime.verify(raw, trust=real_providers_trust_store(), at=AT)
    assert later.valid is True
    assert Problem.EXPIRED in later.problems


@pytest.mark.parametrize("path", TAMPERED, ids=lambda p: p.name)
def test_it_rejects_the_tampered_samples(path):
    raw = path.read_bytes()
    result = smime.verify(raw, trust=real_providers_trust_store(), at=_date(raw))
    rejected(result, Problem.DIGEST_MISMATCH)


def test_it_finds_the_real_samples():
    assert len(REAL) >= 9
    assert len(TAMPERED) >= 3
