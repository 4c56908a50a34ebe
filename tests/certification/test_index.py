import base64

import pytest
from django.core.management import call_command

from pecmail.certification import index, ldif
from pecmail.certification.models import Provider, ProviderCertificate, ProviderDomain
from pecmail.certification.testing import FIXTURES_DIR, make_identity
from pecmail.certification.trust import certificate_sha1

ACME = make_identity("pec.acme.test", "Acme PEC S.p.A.")
BETA = make_identity("pec.beta.test", "Beta PEC")


def record(identity, *, domains=None, name=None):
    return ldif.ProviderRecord(
        name=name or identity.name,
        mail_receipt=identity.service_address,
        domains=domains or [identity.domain],
        certificates=[identity.cert],
        description="Servizi di posta certificata, àèìòù",
    )


def test_it_round_trips_ldif_bytes():
    text = ldif.write([record(ACME).to_entry(), record(BETA).to_entry()])
    assert all(len(line) <= 76 for line in text.splitlines())
    entries = ldif.parse(text)
    assert [e.dn for e in entries] == [
        "providerName=Acme PEC S.p.A.,o=postacert",
        "providerName=Beta PEC,o=postacert",
    ]
    parsed = ldif.provider_record(entries[0])
    assert parsed.certificates == [ACME.cert]
    assert parsed.domains == ["pec.acme.test"]
    assert parsed.description == "Servizi di posta certificata, àèìòù"
    assert "description:: " in text
    assert entries[0].first("providerCertificateHash") == certificate_sha1(ACME.cert).upper()
    assert ldif.write(entries) == text


def test_it_reads_the_rfc_example_shape():
    cert = base64.b64encode(
        ACME.cert.public_bytes(__import__("cryptography").hazmat.primitives.serialization.Encoding.DER)
    )
    folded = "\n ".join(cert.decode()[i : i + 60] for i in range(0, len(cert), 60))
    text = (
        "dn: o=postacert\nobjectclass: top\nobjectclass: organization\no: postacert\n\n"
        "# a comment\n"
        "dn: providerName=Anonymous Certified Mail S.p.A.,o=postacert\r\n"
        "objectclass: top\nobjectclass: provider\n"
        "providerName: Anonymous Certified Mail S.p.A.\n"
        f"providerCertificateHash: {certificate_sha1(ACME.cert).upper()}\n"
        f"providerCertificate;binary:: {folded}\n"
        "mailReceipt: ssacceptance@postalser.example.com\n"
        "managedDomains: mail.anpocert.example.com\nmanagedDomains: Cert.Company.Example.com\n"
    )
    store = ldif.trust_store_from_ldif(text)
    provider = store.provider_for_certificate(ACME.cert)
    assert provider.name == "Anonymous Certified Mail S.p.A."
    assert store.provider_for_domain("cert.company.example.COM") is provider
    assert store.is_pec_domain("mail.anpocert.example.com") is True
    assert store.is_pec_domain("example.com") is False
    assert store.provider_for_address("Mario@Cert.Company.Example.com") is provider


@pytest.mark.parametrize(
    "text",
    [
        "providerName: no dn first\n",
        "dn: x\n bad continuation\n\n continuation after blank\n",
        "dn: x\nproviderName:: !!notbase64\n",
        "dn: x\nchangetype: delete\n",
        "dn: x\nproviderCertificate;binary:< file:///etc/passwd\n",
        "dn: x\nnot an attribute\n",
    ],
)
def test_it_rejects_malformed_ldif(text):
    with pytest.raises(ldif.LdifError):
        ldif.parse(text)


def test_it_rejects_a_hash_that_does_not_match_the_certificate():
    entry = record(ACME).to_entry()
    entry.attributes["providerCertificateHash"] = [certificate_sha1(BETA.cert)]
    with pytest.raises(ldif.LdifError, match="providerCertificateHash"):
        ldif.provider_record(entry)


def test_it_loads_the_real_providers_fixture():
    store = ldif.trust_store_from_ldif((FIXTURES_DIR / "real-providers.ldif").read_bytes())
    assert {p.name for p in store.providers} == {"Aruba PEC S.p.A.", "Sogei S.p.A.", "Namirial S.p.A."}
    assert store.provider_for_domain("pec.aruba.it").name == "Aruba PEC S.p.A."
    assert len(store.provider_for_domain("pec.aruba.it").certificates) == 2


def test_it_imports_and_exports_the_index(db):
    text = ldif.write(
        [record(ACME).to_entry(), record(BETA, domains=["pec.beta.test", "PEC.Beta2.test"]).to_entry()]
    )
    report = index.ldif_import(text)
    assert report.ok is True
    assert report.created == ["Acme PEC S.p.A.", "Beta PEC"]
    assert set(ProviderDomain.objects.values_list("domain", flat=True)) == {
        "pec.acme.test",
        "pec.beta.test",
        "pec.beta2.test",
    }
    again = index.ldif_import(text)
    assert again.unchanged == ["Acme PEC S.p.A.", "Beta PEC"]
    exported = index.ldif_export()
    assert exported.startswith("version: 1\n\ndn: o=postacert\n")
    store = ldif.trust_store_from_ldif(exported)
    assert store.provider_for_certificate(BETA.cert).name == "Beta PEC"
    assert store.is_pec_domain("pec.beta2.test") is True


def test_it_reports_a_bad_entry_and_keeps_the_others(db):
    bad = record(BETA).to_entry()
    bad.attributes["providerCertificateHash"] = ["00" * 20]
    report = index.ldif_import(ldif.write([record(ACME).to_entry(), bad]))
    assert report.created == ["Acme PEC S.p.A."]
    assert len(report.errors) == 1
    assert Provider.objects.count() == 1


def test_it_refuses_a_domain_claimed_by_another_provider(db):
    index.ldif_import(ldif.write([record(ACME).to_entry()]))
    report = index.ldif_import(ldif.write([record(BETA, domains=["pec.acme.test"]).to_entry()]))
    assert "already managed by Acme PEC S.p.A." in report.errors[0]
    assert index.trust_store().provider_for_domain("pec.acme.test").name == "Acme PEC S.p.A."


def test_it_replaces_the_index_but_keeps_itself(db):
    me = make_identity("pec.me.test", "Me")
    index.provider_register_self(identity=me)
    index.ldif_import(ldif.write([record(ACME).to_entry(), record(BETA).to_entry()]))
    report = index.ldif_import(
        ldif.write([record(ACME, domains=["pec.acme.test", "pec.beta.test"]).to_entry()]), replace=True
    )
    assert report.removed == ["Beta PEC"]
    assert report.updated == ["Acme PEC S.p.A."]
    assert set(Provider.objects.values_list("name", flat=True)) == {"Acme PEC S.p.A.", "Me"}
    store = index.trust_store()
    assert store.provider_for_domain("pec.beta.test").name == "Acme PEC S.p.A."
    assert store.provider_for_certificate(me.cert).name == "Me"


def test_it_sees_uncommitted_index_changes_in_its_own_transaction(db):
    first = index.trust_store()
    assert first.is_pec_domain("pec.acme.test") is False
    index.ldif_import(ldif.write([record(ACME).to_entry()]))
    assert index.trust_store().is_pec_domain("pec.acme.test") is True
    ProviderDomain.objects.filter(domain="pec.acme.test").delete()
    assert index.trust_store().is_pec_domain("pec.acme.test") is False


def test_it_invalidates_the_cached_trust_store_on_change(db, django_capture_on_commit_callbacks):
    first = index.trust_store()
    assert index.trust_store() is first
    with django_capture_on_commit_callbacks(execute=True):
        index.ldif_import(ldif.write([record(ACME).to_entry()]))
    second = index.trust_store()
    assert second is not first
    assert second.is_pec_domain("pec.acme.test") is True
    with django_capture_on_commit_callbacks(execute=True):
        ProviderDomain.objects.filter(domain="pec.acme.test").delete()
    assert index.trust_store().is_pec_domain("pec.acme.test") is False


def test_it_sees_another_processs_index_change_within_a_second(db, monkeypatch):
    from django.core.cache import cache

    store = index.trust_store()
    assert index.trust_store_current() is store
    # Another process imports the index: it bumps the shared generation, not our memo.
    cache.set(index.GENERATION_KEY, "changed-elsewhere", timeout=None)
    assert index.trust_store_current() is store  # read at most once per GENERATION_TTL
    monkeypatch.setattr(index, "GENERATION_TTL", 0.0)
    assert index.trust_store_current() is None  # stale: the caller rebuilds with trust_store()
    assert index.trust_store() is not store
    assert index.trust_store_current() is index.trust_store()


def test_it_registers_itself_once_and_keeps_old_certificates(db):
    me = make_identity("pec.me.test", "Me")
    assert index.provider_register_self(identity=me) is True
    assert index.provider_register_self(identity=me) is False
    rolled = make_identity("pec.me.test", "Me")
    assert index.provider_register_self(identity=rolled) is True
    provider = Provider.objects.get(is_self=True)
    assert provider.mail_receipt == "posta-certificata@pec.me.test"
    assert set(provider.certificates.values_list("sha1", flat=True)) == {
        certificate_sha1(me.cert),
        certificate_sha1(rolled.cert),
    }
    assert ProviderCertificate.objects.count() == 2
    assert index.ldif_export(only_self=True).count("providerCertificate;binary::") == 2


def test_it_lists_itself_after_init_provider(db, settings, tmp_path, capsys):
    settings.PEC_SIGNING_KEY = tmp_path / "provider.key"
    settings.PEC_SIGNING_CERT = tmp_path / "provider.pem"
    settings.PEC_CA_CERT = tmp_path / "ca.pem"
    call_command("pec", "init-provider", "--domain", "pec.acme.test", "--name", "Acme")
    assert "listed Acme in the local providers index" in capsys.readouterr().out
    call_command("pec", "init-provider", "--domain", "pec.acme.test", "--name", "Acme")
    assert "listed" not in capsys.readouterr().out
    provider = Provider.objects.get(is_self=True)
    assert provider.domains.get().domain == "pec.acme.test"


def test_it_imports_exports_and_lists_from_the_command_line(db, tmp_path, capsys):
    call_command("pec", "index", "import", str(FIXTURES_DIR / "real-providers.ldif"))
    assert "created: Aruba PEC S.p.A." in capsys.readouterr().out
    out = tmp_path / "index.ldif"
    call_command("pec", "index", "export", "--out", str(out))
    assert ldif.trust_store_from_ldif(out.read_text()).is_pec_domain("pcert.sogei.it") is True
    call_command("pec", "index", "list")
    listing = capsys.readouterr().out
    assert "domain sicurezzapostale.it" in listing
    bad = tmp_path / "bad.ldif"
    bad.write_text("providerName: x\n")
    with pytest.raises(Exception, match="could not be imported"):
        call_command("pec", "index", "import", str(bad))


def test_it_keeps_a_provider_whose_new_entry_is_broken_on_replace(db):
    index.ldif_import(ldif.write([record(ACME).to_entry(), record(BETA).to_entry()]))
    broken = record(BETA).to_entry()
    broken.attributes["mailReceipt"] = ["not-an-address"]
    report = index.ldif_import(ldif.write([record(ACME).to_entry(), broken]), replace=True)
    assert report.removed == []
    assert len(report.errors) == 1
    assert index.trust_store().provider_for_certificate(BETA.cert).name == "Beta PEC"


def test_it_signs_and_checks_an_attached_p7m():
    from pecmail.certification import smime
    from pecmail.certification.testing import trust_store_for

    content = ldif.write([record(ACME).to_entry()]).encode()
    p7m = smime.sign_attached(content, ACME)
    result = smime.verify_attached(p7m, trust=trust_store_for(ACME))
    assert result.trusted is True
    assert result.signed_entity == content
    tampered = p7m.replace(b"pec.acme.test", b"pec.evil.test")
    assert tampered != p7m
    assert smime.verify_attached(tampered, trust=trust_store_for(ACME)).valid is False
    assert smime.verify_attached(p7m, trust=trust_store_for(BETA)).trusted is False
    assert smime.verify_attached(b"\x30\x80" * 1000, trust=trust_store_for(ACME)).valid is False
    # A detached signature carries no content to import.
    assert smime.verify_attached(smime.sign(content, ACME), trust=trust_store_for(ACME)).problems == [
        "econtent-missing"
    ]


def test_it_imports_a_signed_index_only_from_a_trusted_signer(db):
    publisher = make_identity("index.agid.test", "Indice")
    p7m = smime_sign(ldif.write([record(ACME).to_entry()]).encode(), publisher)
    refused = index.ldif_import_signed(p7m)
    assert refused.ok is False
    assert "signer-not-in-trust-store" in refused.errors[0]
    assert Provider.objects.count() == 0
    accepted = index.ldif_import_signed(p7m, signer_certificates=[publisher.cert])
    assert accepted.created == ["Acme PEC S.p.A."]


def smime_sign(content, identity):
    from pecmail.certification import smime

    return smime.sign_attached(content, identity)


@pytest.mark.skipif(__import__("shutil").which("openssl") is None, reason="openssl CLI not installed")
def test_it_exports_its_own_signed_record(db, settings, tmp_path, capsys):
    import subprocess

    settings.PEC_SIGNING_KEY = tmp_path / "provider.key"
    settings.PEC_SIGNING_CERT = tmp_path / "provider.pem"
    settings.PEC_CA_CERT = tmp_path / "ca.pem"
    settings.PEC_DOMAIN = "pec.acme.test"
    settings.PEC_PROVIDER_NAME = "Acme"
    call_command("pec", "init-provider")
    out = tmp_path / "acme.ldif.p7m"
    call_command("pec", "index", "export", "--self", "--sign", "--out", str(out))
    assert "signed by posta-certificata@pec.acme.test" in capsys.readouterr().out
    checked = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            str(out),
            "-CAfile",
            str(tmp_path / "ca.pem"),
            "-purpose",
            "any",
        ],
        capture_output=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert b"providerName: Acme" in checked.stdout
    # With an empty index nobody vouches for the signer until its certificate is given.
    Provider.objects.all().delete()
    peer_report = index.ldif_import_signed(out.read_bytes(), signer_certificates=[])
    assert peer_report.ok is False
    call_command("pec", "index", "import", str(out), "--signer-cert", str(settings.PEC_SIGNING_CERT))
    assert Provider.objects.get().name == "Acme"
