"""The provider identity: a test CA, the provider signing certificate (SPEC §4.2) and its loading.

Pure code apart from ``load_identity`` (which reads settings): no ORM here.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICE_LOCAL_PART = "posta-certificata"
KEY_SIZE = 2048
CA_VALIDITY = dt.timedelta(days=3650)
PROVIDER_VALIDITY = dt.timedelta(days=825)
# Issue certificates slightly back-dated so that a clock a little behind still accepts them.
BACKDATE = dt.timedelta(minutes=5)


class IdentityError(Exception):
    """The provider identity files are missing or inconsistent."""


@dataclass(frozen=True)
class ProviderIdentity:
    domain: str
    name: str
    key: RSAPrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    @property
    def service_address(self) -> str:
        return f"{SERVICE_LOCAL_PART}@{self.domain}"


def generate_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_test_ca(
    name: str,
    *,
    key: RSAPrivateKey | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> tuple[RSAPrivateKey, x509.Certificate]:
    """Return a new self-signed CA key and certificate named ``<name> Test CA``."""
    key = key or generate_key()
    not_before = not_before or (_now() - BACKDATE)
    not_after = not_after or (not_before + CA_VALIDITY)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "IT"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Test CA"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_provider_certificate(
    *,
    ca_key: RSAPrivateKey,
    ca_cert: x509.Certificate,
    domain: str,
    name: str,
    key: RSAPrivateKey | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> tuple[RSAPrivateKey, x509.Certificate]:
    """Return a key and a provider signing certificate with the profile of SPEC §4.2.

    Key Usage critical digitalSignature; SAN rfc822Name ``posta-certificata@<domain>``;
    AKI/SKI; EKU emailProtection; no Basic Constraints.
    """
    domain = domain.strip().lower()
    key = key or generate_key()
    not_before = not_before or (_now() - BACKDATE)
    not_after = not_after or (not_before + PROVIDER_VALIDITY)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "IT"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Posta Certificata {name}"),
        ]
    )
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(f"{SERVICE_LOCAL_PART}@{domain}")]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def key_to_pem(key: RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    # Create with 0600 from the start: never a moment where the key is world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class IdentityPaths:
    key: Path
    cert: Path
    ca_cert: Path
    ca_key: Path

    @classmethod
    def in_directory(cls, directory: Path) -> IdentityPaths:
        directory = Path(directory)
        return cls(
            key=directory / "provider.key",
            cert=directory / "provider.pem",
            ca_cert=directory / "ca.pem",
            ca_key=directory / "ca.key",
        )

    # The next key and certificate of a rollover wait beside the current ones.
    @property
    def next_key(self) -> Path:
        return self.key.with_name(f"{self.key.stem}.next{self.key.suffix}")

    @property
    def next_cert(self) -> Path:
        return self.cert.with_name(f"{self.cert.stem}.next{self.cert.suffix}")


def init_provider(
    *,
    domain: str,
    name: str,
    directory: Path | None = None,
    paths: IdentityPaths | None = None,
) -> bool:
    """Create the test CA and the provider key/certificate unless they exist; True if created.

    Idempotent: when the provider key and certificate exist nothing is touched. The private
    keys are written with mode 0600 and the directory with 0700.
    """
    if paths is None:
        if directory is None:
            raise ValueError("init_provider needs a directory or explicit paths")
        paths = IdentityPaths.in_directory(Path(directory))
    if paths.key.exists() and paths.cert.exists():
        return False
    for parent in {paths.key.parent, paths.cert.parent, paths.ca_cert.parent, paths.ca_key.parent}:
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if paths.ca_cert.exists() and paths.ca_key.exists():
        ca_key = _load_rsa_key(paths.ca_key)
        ca_cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    elif paths.ca_cert.exists() or paths.ca_key.exists():
        # A CA certificate without its key is a real CA's: never replace it with a test CA.
        raise IdentityError(
            f"{paths.cert} is missing and the test CA is incomplete ({paths.ca_cert}, {paths.ca_key}): "
            "install the provider certificate issued by your CA"
        )
    else:
        ca_key, ca_cert = create_test_ca(name)
        _write_private(paths.ca_key, key_to_pem(ca_key))
        _write_public(paths.ca_cert, cert_to_pem(ca_cert))
    # An existing key is kept (its certificate may have been lost): only the certificate is issued.
    existing_key = _load_rsa_key(paths.key) if paths.key.exists() else None
    key, cert = issue_provider_certificate(
        ca_key=ca_key, ca_cert=ca_cert, domain=domain, name=name, key=existing_key
    )
    if existing_key is None:
        _write_private(paths.key, key_to_pem(key))
    _write_public(paths.cert, cert_to_pem(cert))
    return True


def _load_rsa_key(path: Path) -> RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise IdentityError(f"{path} is not an RSA private key")
    return key


def rollover_prepare(*, domain: str, name: str, paths: IdentityPaths) -> tuple[bool, x509.Certificate]:
    """Create the next signing key and certificate (``provider.next.*``); True if created.

    Phase one of a key rollover (SPEC §8): the new certificate goes into the providers index
    while the current key keeps signing, so that peers know it before it is used. Idempotent.
    With a real CA (no CA key here) put the CA-issued ``provider.next.key``/``.pem`` in place instead.
    """
    if paths.next_key.exists() and paths.next_cert.exists():
        return False, x509.load_pem_x509_certificate(paths.next_cert.read_bytes())
    if not paths.ca_key.exists():
        raise IdentityError(
            f"no CA key at {paths.ca_key}: install {paths.next_key} and {paths.next_cert} issued by your CA"
        )
    ca_key = _load_rsa_key(paths.ca_key)
    ca_cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    existing = _load_rsa_key(paths.next_key) if paths.next_key.exists() else None
    key, cert = issue_provider_certificate(
        ca_key=ca_key, ca_cert=ca_cert, domain=domain, name=name, key=existing
    )
    if existing is None:
        _write_private(paths.next_key, key_to_pem(key))
    _write_public(paths.next_cert, cert_to_pem(cert))
    return True, cert


def rollover_activate(*, paths: IdentityPaths, now: dt.datetime | None = None) -> x509.Certificate:
    """Sign with the next key from now on (phase two of a rollover); return the new certificate.

    The old key is kept as ``provider.key.<UTC time>.old`` (mode 0600); the old certificates stay
    in ``provider.pem`` after the new one, so receipts signed earlier remain verifiable locally.
    """
    if not (paths.next_key.exists() and paths.next_cert.exists()):
        raise IdentityError(f"nothing to activate: run the rollover preparation first ({paths.next_key})")
    new_cert = x509.load_pem_x509_certificate(paths.next_cert.read_bytes())
    new_key = _load_rsa_key(paths.next_key)
    if new_key.public_key().public_numbers() != new_cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise IdentityError(f"{paths.next_cert} does not match {paths.next_key}")
    old_certs = x509.load_pem_x509_certificates(paths.cert.read_bytes()) if paths.cert.exists() else []
    stamp = (now or _now()).strftime("%Y%m%dT%H%M%SZ")
    if paths.key.exists():
        os.replace(paths.key, paths.key.with_name(f"{paths.key.name}.{stamp}.old"))
    os.replace(paths.next_key, paths.key)
    _write_public(paths.cert, b"".join(cert_to_pem(c) for c in [new_cert, *old_certs]))
    paths.next_cert.unlink()
    return new_cert


def settings_paths() -> IdentityPaths:
    from django.conf import settings

    key = Path(settings.PEC_SIGNING_KEY)
    ca_cert = Path(settings.PEC_CA_CERT)
    return IdentityPaths(
        key=key,
        cert=Path(settings.PEC_SIGNING_CERT),
        ca_cert=ca_cert,
        ca_key=Path(getattr(settings, "PEC_CA_KEY", ca_cert.with_name("ca.key"))),
    )


def read_identity(
    *, key_path: Path, cert_path: Path, ca_path: Path | None, domain: str, name: str
) -> ProviderIdentity:
    """Load a provider identity from PEM files (the certificate file may hold several certificates).

    Refuses a private key file that other users of the machine may read or write.
    """
    try:
        if Path(key_path).stat().st_mode & 0o007:
            raise IdentityError(f"{key_path} is accessible to every user: chmod 600 it")
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
        certs = x509.load_pem_x509_certificates(Path(cert_path).read_bytes())
    except (OSError, ValueError) as exc:
        raise IdentityError(f"cannot load the provider identity: {exc}") from exc
    if not isinstance(key, RSAPrivateKey):
        raise IdentityError(f"{key_path} is not an RSA private key")
    # Several certificates may be active during a key rollover: sign with the one matching the key.
    public = key.public_key().public_numbers()
    matching = [c for c in certs if c.public_key().public_numbers() == public]  # type: ignore[union-attr]
    if not matching:
        raise IdentityError(f"no certificate in {cert_path} matches the key {key_path}")
    cert = max(matching, key=lambda c: c.not_valid_before_utc)
    chain: list[x509.Certificate] = [c for c in certs if c is not cert]
    if ca_path is not None and Path(ca_path).exists():
        chain.extend(x509.load_pem_x509_certificates(Path(ca_path).read_bytes()))
    return ProviderIdentity(domain=domain.lower(), name=name, key=key, cert=cert, chain=tuple(chain))


_cache_lock = threading.Lock()
_cache: dict[tuple, ProviderIdentity] = {}


def _stamp(path: Path) -> tuple[str, int]:
    try:
        return (str(path), Path(path).stat().st_mtime_ns)
    except OSError:
        return (str(path), -1)


def load_identity() -> ProviderIdentity:
    """Return the provider identity configured in settings, cached per path and mtime."""
    from django.conf import settings

    paths = settings_paths()
    domain = settings.PEC_DOMAIN
    name = settings.PEC_PROVIDER_NAME
    cache_key = (_stamp(paths.key), _stamp(paths.cert), _stamp(paths.ca_cert), domain, name)
    with _cache_lock:
        identity = _cache.get(cache_key)
        if identity is None:
            identity = read_identity(
                key_path=paths.key, cert_path=paths.cert, ca_path=paths.ca_cert, domain=domain, name=name
            )
            _cache.clear()
            _cache[cache_key] = identity
    return identity
