"""The provider identity for the Messages tests: a real key and certificate made by pki.init_provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from pecmail.certification import pki


@pytest.fixture(scope="session")
def _provider_dir(tmp_path_factory) -> Path:
    # RSA key generation is the slow part: one identity per test session.
    directory = tmp_path_factory.mktemp("pki")
    from django.conf import settings

    pki.init_provider(domain=settings.PEC_DOMAIN, name=settings.PEC_PROVIDER_NAME, directory=directory)
    return directory


@pytest.fixture
def provider(db, settings, _provider_dir) -> pki.ProviderIdentity:
    """Points PEC_SIGNING_KEY/CERT and PEC_CA_CERT at the session identity, lists it in the
    providers index (so our own signatures are trusted) and returns it."""
    from pecmail.certification.index import provider_register_self

    settings.PEC_PKI_DIR = _provider_dir
    settings.PEC_SIGNING_KEY = _provider_dir / "provider.key"
    settings.PEC_SIGNING_CERT = _provider_dir / "provider.pem"
    settings.PEC_CA_CERT = _provider_dir / "ca.pem"
    identity = pki.load_identity()
    provider_register_self(identity=identity)
    return identity
