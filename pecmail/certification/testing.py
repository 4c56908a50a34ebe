"""Test identities and trust stores for pecmail's own tests and the samples command.

No secrets here: everything is generated at run time (keys are cached per process because
RSA key generation is the slow part of a test run).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
from pathlib import Path

from asn1crypto import cms
from asn1crypto import x509 as ac_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding

from pecmail.certification import pki
from pecmail.certification.pki import ProviderIdentity
from pecmail.certification.trust import TrustedProvider, TrustStore


@functools.cache
def shared_test_ca(name: str = "pecmail test") -> tuple[pki.RSAPrivateKey, x509.Certificate]:
    """The CA of test identities, one per name and process (named so that pytest never collects it)."""
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
    ca_key, ca_cert = shared_test_ca(ca_name)
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


FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"


def samples_dir() -> Path:
    """The real provider samples: the byte-exact copy kept in the repository, or $PEC_SAMPLES_DIR."""
    default = Path(__file__).resolve().parents[2] / "tests" / "certification" / "samples"
    return Path(os.environ.get("PEC_SAMPLES_DIR", default))


@functools.cache
def real_providers_trust_store() -> TrustStore:
    """A trust store holding the certificates that signed the real samples (Aruba, Sogei, Namirial).

    Those certificates have expired: verify the samples with ``at=`` their Date header.
    """
    from pecmail.certification.ldif import trust_store_from_ldif

    return trust_store_from_ldif((FIXTURES_DIR / "real-providers.ldif").read_text("utf-8"))


def trust_store_for(*identities: ProviderIdentity, anchors: tuple[x509.Certificate, ...] = ()) -> TrustStore:
    """A trust store listing each identity as a provider managing its own domain."""
    return TrustStore(
        (
            TrustedProvider(
                name=i.name,
                mail_receipt=i.service_address,
                domains=frozenset({i.domain}),
                certificates=(i.cert,),
            )
            for i in identities
        ),
        anchors=anchors,
    )


def build_cms(
    entity: bytes,
    identity: ProviderIdentity,
    *,
    digest: str = "sha256",
    content_type: str | None = "data",
    message_digest: bytes | None | bool = True,
    econtent: bytes | None = None,
    signers: int = 1,
    certificates: list[x509.Certificate] | None = None,
    sid_certificate: x509.Certificate | None = None,
) -> bytes:
    """Hand-made detached SignedData for negative tests: every field can be made wrong.

    ``message_digest``: True = the right digest, bytes = that value, None = attribute omitted.
    """
    signer_cert = ac_x509.Certificate.load((sid_certificate or identity.cert).public_bytes(Encoding.DER))
    attrs = []
    if content_type is not None:
        attrs.append(cms.CMSAttribute({"type": "content_type", "values": [content_type]}))
    attrs.append(
        cms.CMSAttribute(
            {"type": "signing_time", "values": [cms.Time({"utc_time": dt.datetime.now(dt.UTC)})]}
        )
    )
    if message_digest is True:
        message_digest = hashlib.new(digest, entity).digest()
    if message_digest is not None:
        attrs.append(cms.CMSAttribute({"type": "message_digest", "values": [message_digest]}))
    signed_attrs = cms.CMSAttributes(attrs)
    hash_algorithm = {"md5": hashes.MD5(), "sha1": hashes.SHA1(), "sha256": hashes.SHA256()}[digest]  # noqa: S303
    signature = identity.key.sign(signed_attrs.dump(), padding.PKCS1v15(), hash_algorithm)
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": signer_cert.issuer, "serial_number": signer_cert.serial_number}
                    )
                }
            ),
            "digest_algorithm": {"algorithm": digest},
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
            "signature": signature,
        }
    )
    if certificates is None:
        certificates = [identity.cert]
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": digest}],
            "encap_content_info": {"content_type": "data", "content": econtent},
            "certificates": [ac_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in certificates],
            "signer_infos": [signer_info] * signers,
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()
