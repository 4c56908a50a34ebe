"""Test identities and trust stores for pecmail's own tests and the samples command.

No secrets here: everything is generated at run time (keys are cached per process because
RSA key generation is the slow part of a test run).
"""

from __future__ import annotations

import datetime as dt
import functools

from cryptography import x509

from pecmail.certification import pki
from pecmail.certification.pki import ProviderIdentity


@functools.cache
def test_ca(name: str = "pecmail test") -> tuple[pki.RSAPrivateKey, x509.Certificate]:
    return pki.create_test_ca(
        name,
        not_before=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
    )


@functools.cache
def _provider_key(domain: str) -> pki.RSAPrivateKey:
    return pki.generate_key()


def make_identity(
    domain: str = "pec.example.test",
    name: str = "Example PEC",
    *,
    ca_name: str = "pecmail test",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> ProviderIdentity:
    """Return a provider identity issued by the (cached) test CA ``ca_name``.

    Without dates the certificate is valid from 2000 to 2099 so that tests may travel in time.
    """
    ca_key, ca_cert = test_ca(ca_name)
    key, cert = pki.issue_provider_certificate(
        ca_key=ca_key,
        ca_cert=ca_cert,
        domain=domain,
        name=name,
        key=_provider_key(domain),
        not_before=not_before or dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        not_after=not_after or dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
    )
    return ProviderIdentity(domain=domain, name=name, key=key, cert=cert, chain=(ca_cert,))
