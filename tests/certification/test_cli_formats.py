import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from lxml import etree

from pecmail.certification import classify, cli_formats, daticert, mimebytes

SAMPLES = Path(__file__).resolve().parent / "samples"
_SHARED_DTD = Path(__file__).resolve().parents[3] / "shared" / "pec" / "daticert.dtd"
DTD = etree.DTD(io.BytesIO((_SHARED_DTD if _SHARED_DTD.exists() else daticert.DTD_PATH).read_bytes()))
EXPECTED = {
    "accettazione.eml": ("accettazione", None),
    "non-accettazione.eml": ("non-accettazione", None),
    "non-accettazione-virus.eml": ("non-accettazione", None),
    "posta-certificata.eml": ("posta-certificata", "completa"),
    "presa-in-carico.eml": ("presa-in-carico", None),
    "avvenuta-consegna-completa.eml": ("avvenuta-consegna", "completa"),
    "avvenuta-consegna-breve.eml": ("avvenuta-consegna", "breve"),
    "avvenuta-consegna-sintetica.eml": ("avvenuta-consegna", "sintetica"),
    "errore-consegna.eml": ("errore-consegna", None),
    "errore-consegna-virus.eml": ("errore-consegna", None),
    "preavviso-errore-consegna-12h.eml": ("preavviso-errore-consegna", None),
    "preavviso-errore-consegna-24h.eml": ("preavviso-errore-consegna", None),
    "rilevazione-virus.eml": ("rilevazione-virus", None),
    "anomalia.eml": ("anomalia", None),
}


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("samples")
    call_command("pec", "samples", "--out", str(directory), stdout=io.StringIO())
    return directory


def test_it_writes_exactly_one_file_per_message_type_and_the_certificates(out):
    assert sorted(p.name for p in out.iterdir()) == sorted([*EXPECTED, "ca.pem", "provider.pem"])


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_generated_file_verifies_with_openssl(out, name):
    done = subprocess.run(
        [
            "openssl",
            "smime",
            "-verify",
            "-CAfile",
            str(out / "ca.pem"),
            "-in",
            str(out / name),
            "-out",
            "/dev/null",
        ],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_generated_daticert_is_valid_against_the_dtd(out, name):
    raw = (out / name).read_bytes()
    part = mimebytes.find_by_filename(mimebytes.parse(raw), "daticert.xml")
    if name == "anomalia.eml":
        assert part is None
        return
    assert DTD.validate(etree.fromstring(part.decoded_body())) is True, DTD.error_log


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_generated_file_classifies_as_its_type(out, name):
    trust = cli_formats.trust_store_from_pem([out / "provider.pem"], out / "ca.pem")
    result = classify.classify((out / name).read_bytes(), trust=trust)
    assert (result.kind, result.receipt_type) == EXPECTED[name]
    assert result.valid is True, result.problems


def test_the_demo_has_a_to_a_cc_and_an_ordinary_recipient_an_html_body_and_a_pdf(out):
    result = classify.classify((out / "posta-certificata.eml").read_bytes())
    tipi = [(r.address.split("@")[0], r.tipo) for r in result.daticert.destinatari]
    assert tipi == [("anna.bianchi", "certificato"), ("carlo.neri", "certificato"), ("luca.verdi", "esterno")]
    original = mimebytes.parse(result.postacert)
    types = {p.content_type for p in original.walk()}
    assert {"text/html", "application/pdf"} <= types
    pdf = next(p for p in original.walk() if p.content_type == "application/pdf").decoded_body()
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    # Every xref offset points at its object.
    offsets = [int(m) for m in re.findall(rb"^(\d{10}) 00000 n", pdf, re.MULTILINE)]
    assert [pdf[o:].split(b" ", 1)[0] for o in offsets] == [str(i).encode() for i in range(1, 6)]
    assert pdf[int(re.search(rb"startxref\n(\d+)", pdf).group(1)) :].startswith(b"xref")


def test_the_brief_receipt_replaces_the_pdf_with_its_hash(out):
    result = classify.classify((out / "avvenuta-consegna-breve.eml").read_bytes())
    names = [p.filename for p in mimebytes.parse(result.postacert).walk() if p.filename]
    assert names == ["diffida.pdf.hash"]


def test_pec_verify_accepts_every_generated_file(out):
    stdout = io.StringIO()
    files = [str(out / name) for name in sorted(EXPECTED)]
    call_command(
        "pec",
        "verify",
        "--cert",
        str(out / "provider.pem"),
        "--ca",
        str(out / "ca.pem"),
        *files,
        stdout=stdout,
    )
    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert len(lines) == len(EXPECTED)
    for line in lines:
        assert line["valid"] is True
        assert line["signature_valid"] is True and line["trusted_signer"] is True
        assert line["problems"] == []
    assert {line["type"] for line in lines} == {kind for kind, _ in EXPECTED.values()}


def test_pec_verify_fails_on_a_tampered_file(out, tmp_path):
    tampered = tmp_path / "tampered.eml"
    tampered.write_bytes(
        (out / "posta-certificata.eml").read_bytes().replace(b"Gentile Anna", b"Gentile Anno")
    )
    stdout = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "pec",
            "verify",
            "--cert",
            str(out / "provider.pem"),
            str(out / "accettazione.eml"),
            str(tampered),
            stdout=stdout,
        )
    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [line["valid"] for line in lines] == [True, False]


def test_pec_verify_fails_on_a_file_signed_by_an_unknown_provider(out, tmp_path):
    other = tmp_path / "other"
    call_command("pec", "samples", "--out", str(other), stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command(
            "pec",
            "verify",
            "--cert",
            str(out / "provider.pem"),
            str(other / "accettazione.eml"),
            stdout=io.StringIO(),
        )


def test_pec_verify_checks_real_samples_at_their_own_date(tmp_path):
    from pecmail.certification import testing
    from pecmail.certification.pki import cert_to_pem

    certs = tmp_path / "real.pem"
    certs.write_bytes(
        b"".join(
            cert_to_pem(c) for p in testing.real_providers_trust_store().providers for c in p.certificates
        )
    )
    stdout = io.StringIO()
    real = sorted(str(p) for p in (SAMPLES / "real").glob("*.eml"))
    call_command("pec", "verify", "--at", "date", "--cert", str(certs), *real, stdout=stdout)
    assert all(json.loads(line)["valid"] for line in stdout.getvalue().splitlines())
