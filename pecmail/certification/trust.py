"""The trust store: which providers (by certificate) and which mail domains are PEC (SPEC §8).

Pure code, no ORM: ``pecmail.certification.index.trust_store()`` builds one from the database;
tests build one directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization


def certificate_sha1(cert: x509.Certificate) -> str:
    """Return the SHA-1 of the DER certificate in lower-case hex (``providerCertificateHash``)."""
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER), usedforsecurity=False).hexdigest()


def normalise_domain(domain: str) -> str:
    return domain.strip().rstrip(".").lower()


@dataclass(frozen=True)
class TrustedProvider:
    name: str
    mail_receipt: str
    domains: frozenset[str]
    certificates: tuple[x509.Certificate, ...]
    unit: str = field(default="")


class TrustStore:
    """An immutable view of the providers index used to verify and route PEC messages."""

    def __init__(
        self, providers: Iterable[TrustedProvider] = (), anchors: Iterable[x509.Certificate] = ()
    ) -> None:
        self.providers: tuple[TrustedProvider, ...] = tuple(providers)
        self.anchors: tuple[x509.Certificate, ...] = tuple(anchors)
        self._by_sha1: dict[str, list[tuple[bytes, TrustedProvider]]] = {}
        self._by_domain: dict[str, TrustedProvider] = {}
        for provider in self.providers:
            for cert in provider.certificates:
                der = cert.public_bytes(serialization.Encoding.DER)
                sha1 = hashlib.sha1(der, usedforsecurity=False).hexdigest()
                self._by_sha1.setdefault(sha1, []).append((der, provider))
            for domain in provider.domains:
                self._by_domain.setdefault(normalise_domain(domain), provider)

    def __len__(self) -> int:
        return len(self.providers)

    def __repr__(self) -> str:
        return f"<TrustStore {len(self.providers)} providers, {len(self.anchors)} anchors>"

    def provider_for_certificate(self, cert: x509.Certificate) -> TrustedProvider | None:
        """Return the provider listing exactly this certificate (SHA-1 lookup, then DER equality)."""
        der = cert.public_bytes(serialization.Encoding.DER)
        sha1 = hashlib.sha1(der, usedforsecurity=False).hexdigest()
        for candidate_der, provider in self._by_sha1.get(sha1, ()):
            # SHA-1 is only the index key: the certificate itself must match byte for byte.
            if candidate_der == der:
                return provider
        return None

    def provider_for_domain(self, domain: str) -> TrustedProvider | None:
        """Return the provider whose ``managedDomains`` include ``domain`` (case-insensitive)."""
        return self._by_domain.get(normalise_domain(domain))

    def provider_for_address(self, address: str) -> TrustedProvider | None:
        _, at, domain = address.strip().rpartition("@")
        return self.provider_for_domain(domain) if at else None

    def is_pec_domain(self, domain: str) -> bool:
        return self.provider_for_domain(domain) is not None
