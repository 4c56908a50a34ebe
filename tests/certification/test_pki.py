import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.core.management import call_command

from pecmail.certification import pki
from pecmail.certification.testing import make_identity


def test_it_issues_the_spec_profile():
    identity = make_identity("pec.acme.test", "Acme")
    cert = identity.cert
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical is True
    assert ku.value.digital_signature is True
    assert ku.value.key_cert_sign is False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical is False
    assert san.value.get_values_for_type(x509.RFC822Name) == ["posta-certificata@pec.acme.test"]
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).critical is False
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ca_ski = identity.chain[0].extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.value.key_identifier == ca_ski.value.digest
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    assert not any(isinstance(e.value, x509.BasicConstraints) for e in cert.extensions)
    assert all(e.critical is False for e in cert.extensions if not isinstance(e.value, x509.KeyUsage))
    assert identity.key.key_size == 2048
    assert identity.service_address == "posta-certificata@pec.acme.test"
    cert.verify_directly_issued_by(identity.chain[0])


def test_it_makes_the_ca_a_ca():
    _, ca = pki.create_test_ca("Acme")
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical is True
    assert bc.value.ca is True


def test_it_creates_the_identity_once(tmp_path):
    assert pki.init_provider(domain="pec.acme.test", name="Acme", directory=tmp_path) is True
    key_bytes = (tmp_path / "provider.key").read_bytes()
    assert stat.S_IMODE((tmp_path / "provider.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    assert pki.init_provider(domain="pec.acme.test", name="Acme", directory=tmp_path) is False
    assert (tmp_path / "provider.key").read_bytes() == key_bytes
    identity = pki.read_identity(
        key_path=tmp_path / "provider.key",
        cert_path=tmp_path / "provider.pem",
        ca_path=tmp_path / "ca.pem",
        domain="pec.acme.test",
        name="Acme",
    )
    identity.cert.verify_directly_issued_by(identity.chain[0])


def test_it_signs_with_the_certificate_matching_the_key_during_rollover(tmp_path):
    pki.init_provider(domain="pec.acme.test", name="Acme", directory=tmp_path)
    old = (tmp_path / "provider.pem").read_bytes()
    other = make_identity("pec.acme.test", "Acme")
    (tmp_path / "provider.pem").write_bytes(pki.cert_to_pem(other.cert) + old)
    identity = pki.read_identity(
        key_path=tmp_path / "provider.key",
        cert_path=tmp_path / "provider.pem",
        ca_path=None,
        domain="pec.acme.test",
        name="Acme",
    )
    assert pki.cert_to_pem(identity.cert) == old


def test_it_loads_the_identity_from_settings(settings, tmp_path):
    settings.PEC_SIGNING_KEY = tmp_path / "provider.key"
    settings.PEC_SIGNING_CERT = tmp_path / "provider.pem"
    settings.PEC_CA_CERT = tmp_path / "ca.pem"
    settings.PEC_DOMAIN = "pec.acme.test"
    pki.init_provider(domain="pec.acme.test", name="Acme", directory=tmp_path)
    identity = pki.load_identity()
    assert identity.domain == "pec.acme.test"
    assert pki.load_identity() is identity


def test_it_runs_init_provider_idempotently(db, settings, tmp_path, capsys):
    settings.PEC_SIGNING_KEY = tmp_path / "pki" / "provider.key"
    settings.PEC_SIGNING_CERT = tmp_path / "pki" / "provider.pem"
    settings.PEC_CA_CERT = tmp_path / "pki" / "ca.pem"
    call_command("pec", "init-provider", "--domain", "pec.acme.test", "--name", "Acme")
    first = capsys.readouterr().out
    assert "Created the provider identity for pec.acme.test" in first
    key = settings.PEC_SIGNING_KEY.read_bytes()
    call_command("pec", "init-provider", "--domain", "pec.acme.test", "--name", "Acme")
    second = capsys.readouterr().out
    assert "already exists" in second
    assert settings.PEC_SIGNING_KEY.read_bytes() == key


def test_it_refuses_a_world_readable_key(tmp_path):
    pki.init_provider(domain="pec.acme.test", name="Acme", directory=tmp_path)
    (tmp_path / "provider.key").chmod(0o644)
    with pytest.raises(pki.IdentityError, match="chmod 600"):
        pki.read_identity(
            key_path=tmp_path / "provider.key",
            cert_path=tmp_path / "provider.pem",
            ca_path=None,
            domain="pec.acme.test",
            name="Acme",
        )


def test_it_reports_missing_identity_files(tmp_path):
    with pytest.raises(pki.IdentityError):
        pki.read_identity(
            key_path=tmp_path / "nope.key",
            cert_path=tmp_path / "nope.pem",
            ca_path=None,
            domain="x.test",
            name="X",
        )


def test_it_keeps_an_existing_key_when_the_certificate_was_lost(tmp_path):
    pki.init_provider(domain="pec.acme.test", name="Acme", directory=tmp_path)
    key = (tmp_path / "provider.key").read_bytes()
    (tmp_path / "provider.pem").unlink()
    assert pki.init_provider(domain="pec.acme.test", name="Acme", directory=tmp_path) is True
    assert (tmp_path / "provider.key").read_bytes() == key
    identity = pki.read_identity(
        key_path=tmp_path / "provider.key",
        cert_path=tmp_path / "provider.pem",
        ca_path=tmp_path / "ca.pem",
        domain="pec.acme.test",
        name="Acme",
    )
    identity.cert.verify_directly_issued_by(identity.chain[0])


def test_it_never_replaces_a_ca_certificate_it_has_no_key_for(tmp_path):
    _, real_ca = pki.create_test_ca("Real CA")
    (tmp_path / "ca.pem").write_bytes(pki.cert_to_pem(real_ca))
    with pytest.raises(pki.IdentityError, match="install the provider certificate"):
        pki.init_provider(domain="pec.acme.test", name="Acme", directory=tmp_path)
    assert (tmp_path / "ca.pem").read_bytes() == pki.cert_to_pem(real_ca)


def test_it_rolls_the_signing_key_over_in_two_phases(db, settings, tmp_path, capsys):
    from pecmail.certification import index, smime
    from pecmail.certification.models import Provider

    settings.PEC_SIGNING_KEY = tmp_path / "provider.key"
    settings.PEC_SIGNING_CERT = tmp_path / "provider.pem"
    settings.PEC_CA_CERT = tmp_path / "ca.pem"
    settings.PEC_DOMAIN = "pec.acme.test"
    settings.PEC_PROVIDER_NAME = "Acme"
    call_command("pec", "init-provider")
    old = pki.load_identity()
    old_message = smime.build_signed_message(
        [("Subject", "x")], b"Content-Type: text/plain\r\n\r\nold\r\n", old
    )

    call_command("pec", "rollover", "prepare")
    assert "Created the next certificate" in capsys.readouterr().out
    call_command("pec", "rollover", "prepare")
    assert "Already prepared" in capsys.readouterr().out
    assert pki.load_identity().cert == old.cert
    assert Provider.objects.get(is_self=True).certificates.count() == 2

    call_command("pec", "rollover", "activate")
    new = pki.load_identity()
    assert new.cert != old.cert
    assert new.key.public_key().public_numbers() != old.key.public_key().public_numbers()
    backups = list(tmp_path.glob("provider.key.*.old"))
    assert len(backups) == 1
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o600
    assert not (tmp_path / "provider.next.key").exists()
    new_message = smime.build_signed_message(
        [("Subject", "x")], b"Content-Type: text/plain\r\n\r\nnew\r\n", new
    )
    trust = index.trust_store()
    assert smime.verify(old_message, trust=trust).trusted is True
    assert smime.verify(new_message, trust=trust).trusted is True
    with pytest.raises(Exception, match="nothing to activate"):
        call_command("pec", "rollover", "activate")
