"""The local copy of the providers index (Indice dei gestori, SPEC §8): database, LDIF, trust store."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.cache import cache
from django.core.signals import setting_changed
from django.db import connection, transaction
from django.dispatch import receiver

from pecmail.certification import ldif, smime
from pecmail.certification.models import Provider, ProviderCertificate, ProviderDomain
from pecmail.certification.pki import ProviderIdentity
from pecmail.certification.trust import TrustedProvider, TrustStore, certificate_sha1, normalise_domain

GENERATION_KEY = "pecmail:certification:index-generation"


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


# --------------------------------------------------------------------------------------------
# The cached trust store
# --------------------------------------------------------------------------------------------

_lock = threading.Lock()
_cached: tuple[str, TrustStore] | None = None
# The shared generation is read at most this often (see _generation_recent).
GENERATION_TTL = 1.0
_generation_seen: tuple[float, str] | None = None


def _generation() -> str:
    """The index version shared by every process (web, worker, SMTP) through the cache."""
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        generation = uuid.uuid4().hex
        # add() so that two processes racing here agree on one value.
        cache.add(GENERATION_KEY, generation, timeout=None)
        generation = cache.get(GENERATION_KEY, generation)
    return generation


def _generation_recent() -> str:
    """``_generation()``, read from the shared cache at most once per ``GENERATION_TTL``.

    Every message is classified against the trust store, so its freshness check runs once per
    message in the SMTP server and the workers; a cache round trip each time is more than the
    rest of the check. A change made in this process is seen at once (``_bump`` forgets the
    memo); one made by another process (an index import) within that second.
    """
    global _generation_seen
    now = time.monotonic()
    seen = _generation_seen
    if seen is not None and now - seen[0] < GENERATION_TTL:
        return seen[1]
    generation = _generation()
    _generation_seen = (now, generation)
    return generation


def _bump() -> None:
    global _cached, _generation_seen
    cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
    with _lock:
        _cached = None
        _generation_seen = None


@receiver(setting_changed)
def _cache_swapped(*, setting: str, **_kwargs: object) -> None:
    """Another cache holds another generation: forget what was read from the old one."""
    global _cached, _generation_seen
    if setting == "CACHES":
        with _lock:
            _cached = None
            _generation_seen = None


def _uncommitted_change() -> bool:
    # Django drops the on-commit callbacks of a rolled-back transaction, so a pending _bump means
    # "this connection changed the index and has not committed yet".
    return any(entry[1] is _bump for entry in connection.run_on_commit)


def trust_store_invalidate() -> None:
    """Forget the cached trust store here now, and in every process once the transaction commits."""
    global _cached
    with _lock:
        _cached = None
    if not _uncommitted_change():
        transaction.on_commit(_bump)


def _build_trust_store() -> TrustStore:
    providers = []
    for provider in Provider.objects.prefetch_related("certificates", "domains"):
        certificates = tuple(
            x509.load_der_x509_certificate(bytes(c.der)) for c in provider.certificates.all()
        )
        providers.append(
            TrustedProvider(
                name=provider.name,
                mail_receipt=provider.mail_receipt,
                domains=frozenset(d.domain for d in provider.domains.all()),
                certificates=certificates,
                unit=provider.unit,
            )
        )
    return TrustStore(providers)


def trust_store_current() -> TrustStore | None:
    """The cached TrustStore if it is still current, else None; never touches the database.

    For callers that must not block on the database (the SMTP server's event loop): on None
    they build it with ``trust_store()`` elsewhere.

    The shared generation is read at most once per ``GENERATION_TTL`` seconds (see
    ``_generation_recent``).
    """
    if _uncommitted_change():
        return None
    generation = _generation_recent()
    with _lock:
        if _cached is not None and _cached[0] == generation:
            return _cached[1]
    return None


def trust_store() -> TrustStore:
    """Return the TrustStore of the providers index, rebuilt only when the index changed.

    Inside a transaction that changed the index the store reflects those changes and is not
    cached (they may still roll back).
    """
    global _cached
    if _uncommitted_change():
        return _build_trust_store()
    generation = _generation_recent()
    with _lock:
        if _cached is not None and _cached[0] == generation:
            return _cached[1]
    store = _build_trust_store()
    with _lock:
        _cached = (generation, store)
    return store


# --------------------------------------------------------------------------------------------
# Writes
# --------------------------------------------------------------------------------------------


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _sync_certificates(provider: Provider, certificates: list[x509.Certificate], *, remove: bool) -> bool:
    changed = False
    wanted = {certificate_sha1(c): c for c in certificates}
    existing = {c.sha1: c for c in provider.certificates.all()}
    if remove:
        stale = [sha1 for sha1 in existing if sha1 not in wanted]
        if stale:
            ProviderCertificate.objects.filter(provider=provider, sha1__in=stale).delete()
            changed = True
    for sha1, cert in wanted.items():
        if sha1 in existing:
            continue
        other = ProviderCertificate.objects.filter(sha1=sha1).exclude(provider=provider).first()
        if other is not None:
            raise ldif.LdifError(f"certificate {sha1} already belongs to {other.provider}")
        ProviderCertificate.objects.create(
            provider=provider,
            der=_der(cert),
            sha1=sha1,
            subject=cert.subject.rfc4514_string()[:500],
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )
        changed = True
    return changed


def _sync_domains(provider: Provider, domains: list[str], *, remove: bool) -> bool:
    changed = False
    wanted = {normalise_domain(d) for d in domains}
    existing = set(provider.domains.values_list("domain", flat=True))
    if remove and existing - wanted:
        ProviderDomain.objects.filter(provider=provider, domain__in=existing - wanted).delete()
        changed = True
    for domain in sorted(wanted - existing):
        other = ProviderDomain.objects.filter(domain=domain).select_related("provider").first()
        if other is not None:
            raise ldif.LdifError(f"domain {domain} is already managed by {other.provider}")
        ProviderDomain.objects.create(provider=provider, domain=domain)
        changed = True
    return changed


def ldif_import(text: str | bytes, *, replace: bool = False) -> ImportReport:
    """Load provider entries from an LDIF copy of the index; return what changed and what failed.

    Each provider (by name and unit) gets exactly the certificates and domains of its entry.
    With ``replace`` (the daily full copy), providers absent from the file are removed — never
    this provider's own entry. A bad entry is reported and skipped; the others still load.
    """
    report = ImportReport()
    try:
        entries = ldif.parse(text)
    except ldif.LdifError as exc:
        report.errors.append(str(exc))
        return report
    records: list[ldif.ProviderRecord] = []
    # Every entry's (name, unit), even of entries that fail below: a bad entry never deletes its provider.
    in_file: set[tuple[str, str]] = set()
    for entry in entries:
        if not ldif.is_provider_entry(entry):
            continue
        in_file.add((entry.first("providerName").strip(), entry.first("providerUnit").strip()))
        try:
            records.append(ldif.provider_record(entry))
        except ldif.LdifError as exc:
            report.errors.append(str(exc))
    with transaction.atomic():
        if replace:
            for provider in Provider.objects.filter(is_self=False):
                if (provider.name, provider.unit) not in in_file:
                    report.removed.append(str(provider))
                    provider.delete()
        # Free what the file moves between providers before anyone claims it.
        for record in records:
            provider = Provider.objects.filter(name=record.name, unit=record.unit, is_self=False).first()
            if provider is None:
                continue
            ProviderDomain.objects.filter(provider=provider).exclude(
                domain__in=[normalise_domain(d) for d in record.domains]
            ).delete()
            ProviderCertificate.objects.filter(provider=provider).exclude(
                sha1__in=[certificate_sha1(c) for c in record.certificates]
            ).delete()
        for record in records:
            label = f"{record.name} ({record.unit})" if record.unit else record.name
            try:
                with transaction.atomic():
                    provider, created = Provider.objects.get_or_create(
                        name=record.name,
                        unit=record.unit,
                        defaults={
                            "mail_receipt": record.mail_receipt,
                            "description": record.description,
                            "ldif_location_url": record.ldif_location_url,
                        },
                    )
                    changed = False
                    for attr in ("mail_receipt", "description", "ldif_location_url"):
                        if getattr(provider, attr) != getattr(record, attr):
                            setattr(provider, attr, getattr(record, attr))
                            changed = True
                    if changed and not created:
                        provider.save()
                    remove = not provider.is_self
                    changed |= _sync_certificates(provider, record.certificates, remove=remove)
                    changed |= _sync_domains(provider, record.domains, remove=remove)
            except ldif.LdifError as exc:
                report.errors.append(f"{label}: {exc}")
                continue
            if created:
                report.created.append(label)
            elif changed:
                report.updated.append(label)
            else:
                report.unchanged.append(label)
    return report


def is_signed_ldif(data: bytes) -> bool:
    """True if ``data`` looks like a ``.p7m`` (DER SEQUENCE or PEM PKCS7/CMS) rather than LDIF text."""
    head = data.lstrip()[:32]
    return head.startswith((b"\x30", b"-----BEGIN PKCS7", b"-----BEGIN CMS"))


def ldif_import_signed(
    data: bytes, *, signer_certificates: Iterable[x509.Certificate] = (), replace: bool = False
) -> ImportReport:
    """Import a signed ``.ldif.p7m`` (SPEC §8) once its signature checks out; nothing changes otherwise.

    The signer must be the index publisher (one of ``signer_certificates``) or a provider already
    in the index (a peer's signed record of itself).
    """
    publisher = TrustedProvider(
        name="index publisher", mail_receipt="", domains=frozenset(), certificates=tuple(signer_certificates)
    )
    trust = TrustStore([*trust_store().providers, publisher])
    result = smime.verify_attached(data, trust=trust)
    if not result.trusted or result.signed_entity is None:
        return ImportReport(errors=[f"signature not accepted: {', '.join(result.problems)}"])
    return ldif_import(result.signed_entity, replace=replace)


def ldif_export_signed(*, identity: ProviderIdentity, only_self: bool = True) -> bytes:
    """This provider's record (or the whole index) as LDIF inside a DER ``.p7m`` signed with its key."""
    return smime.sign_attached(ldif_export(only_self=only_self).encode("utf-8"), identity)


def _record(provider: Provider) -> ldif.ProviderRecord:
    return ldif.ProviderRecord(
        name=provider.name,
        unit=provider.unit,
        mail_receipt=provider.mail_receipt,
        domains=[d.domain for d in provider.domains.all()],
        certificates=[x509.load_der_x509_certificate(bytes(c.der)) for c in provider.certificates.all()],
        description=provider.description,
        ldif_location_url=provider.ldif_location_url,
    )


def ldif_export(*, only_self: bool = False) -> str:
    """Return the index as LDIF (the ``o=postacert`` root, then one entry per provider)."""
    root = ldif.LdifEntry(dn=ldif.BASE_DN)
    root.add("objectClass", "top")
    root.add("objectClass", "organization")
    root.add("o", "postacert")
    providers = Provider.objects.prefetch_related("certificates", "domains")
    if only_self:
        providers = providers.filter(is_self=True)
    entries = [] if only_self else [root]
    entries.extend(_record(p).to_entry() for p in providers)
    return ldif.write(entries)


def provider_register_self(*, identity: ProviderIdentity, description: str = "") -> bool:
    """List this provider in its own index (name, service mailbox, domain, certificate); True if changed.

    Safe to call on every start: earlier certificates stay listed (key rollover), nothing is
    written when everything is already there.
    """
    domain = normalise_domain(identity.domain)
    sha1 = certificate_sha1(identity.cert)
    current = Provider.objects.filter(is_self=True).first()
    if (
        current is not None
        and current.name == identity.name
        and current.mail_receipt == identity.service_address
        and current.certificates.filter(sha1=sha1).exists()
        and current.domains.filter(domain=domain).exists()
    ):
        return False
    with transaction.atomic():
        provider = Provider.objects.select_for_update().filter(is_self=True).first()
        if provider is None:
            provider = Provider.objects.filter(name=identity.name, unit="").first()
        if provider is None:
            provider = Provider(name=identity.name, unit="")
        provider.name = identity.name
        provider.mail_receipt = identity.service_address
        provider.is_self = True
        if description:
            provider.description = description
        provider.save()
        _sync_certificates(provider, [identity.cert], remove=False)
        ProviderDomain.objects.filter(domain=domain).exclude(provider=provider).delete()
        _sync_domains(provider, [domain], remove=False)
    return True


def provider_list() -> list[Provider]:
    return list(Provider.objects.prefetch_related("certificates", "domains"))
