import email
import email.policy
import shutil
import subprocess

import pytest
from asn1crypto import cms

from pecmail.certification import pki, smime
from pecmail.certification.testing import make_identity

ENTITY = (
    b'Content-Type: multipart/mixed; boundary="inner"\r\n'
    b"\r\n"
    b"--inner\r\n"
    b'Content-Type: text/plain; charset="iso-8859-1"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Ricevuta di accettazione =E8 qui.\r\n"
    b"--inner\r\n"
    b'Content-Type: application/xml; name="daticert.xml"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"PD94bWwgdmVyc2lvbj0iMS4wIj8+PHBvc3RhY2VydCB0aXBvPSJhY2NldHRhemlvbmUiLz4=\r\n"
    b"--inner--\r\n"
)
HEADERS = [
    ("Date", "Fri, 27 Nov 2026 21:00:00 +0100"),
    ("From", '"Per conto di: alice@pec.example.test" <posta-certificata@pec.example.test>'),
    ("To", "alice@pec.example.test"),
    ("Subject", "ACCETTAZIONE: =?utf-8?q?caff=C3=A8?="),
    ("Message-ID", "<x@pec.example.test>"),
    ("X-Ricevuta", "accettazione"),
]


@pytest.fixture(scope="module")
def identity():
    return make_identity()


def test_it_signs_the_exact_bytes_with_sha256(identity):
    der = smime.sign(ENTITY, identity)
    info = cms.ContentInfo.load(der)
    signed = info["content"]
    assert signed["encap_content_info"]["content"].native is None
    signer = signed["signer_infos"][0]
    assert signer["digest_algorithm"]["algorithm"].native == "sha256"
    attrs = {a["type"].native: a["values"][0] for a in signer["signed_attrs"]}
    assert {"content_type", "signing_time", "message_digest"} <= attrs.keys()
    import hashlib

    assert attrs["message_digest"].native == hashlib.sha256(ENTITY).digest()
    assert len(signed["certificates"]) == 1


def test_it_keeps_the_entity_verbatim_and_uses_crlf(identity):
    raw = smime.build_signed_message(HEADERS, ENTITY, identity)
    assert ENTITY in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/signed"
    assert msg.get_param("protocol") == "application/x-pkcs7-signature"
    assert msg.get_param("micalg") == "sha-256"
    assert msg["MIME-Version"] == "1.0"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["multipart/mixed", "application/x-pkcs7-signature"]
    assert parts[1].get_filename() == "smime.p7s"
    assert list(msg.keys())[:6] == [name for name, _ in HEADERS]


def test_it_refuses_an_entity_with_bare_line_feeds(identity):
    with pytest.raises(ValueError):
        smime.build_signed_message(HEADERS, ENTITY.replace(b"\r\n", b"\n"), identity)


def test_it_refuses_header_injection(identity):
    with pytest.raises(ValueError):
        smime.build_signed_message([("Subject", "a\r\nBcc: x@evil.test")], ENTITY, identity)


def test_it_drops_the_callers_content_type(identity):
    raw = smime.build_signed_message([("Content-Type", "text/plain"), *HEADERS], ENTITY, identity)
    assert raw.count(b"Content-Type: text/plain\r\n") == 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_it_verifies_with_openssl_against_the_ca(identity, tmp_path):
    raw = smime.build_signed_message(HEADERS, ENTITY, identity)
    (tmp_path / "msg.eml").write_bytes(raw)
    (tmp_path / "ca.pem").write_bytes(pki.cert_to_pem(identity.chain[0]))
    result = subprocess.run(
        [
            "openssl",
            "smime",
            "-verify",
            "-CAfile",
            str(tmp_path / "ca.pem"),
            "-in",
            str(tmp_path / "msg.eml"),
            "-out",
            str(tmp_path / "out.bin"),
        ],
        capture_output=True,
    )
    assert result.returncode == 0, result.stderr
    assert b"Verification successful" in result.stderr
    assert (tmp_path / "out.bin").read_bytes() == ENTITY
