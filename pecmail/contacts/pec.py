"""Which addresses are certified: the providers index, read lazily."""

from __future__ import annotations

from django.conf import settings


def _index_is_pec_domain(domain: str) -> bool | None:
    """Ask the providers index; None when the index module is not installed."""
    try:
        from pecmail.certification.index import trust_store  # noqa: PLC0415 (optional dependency)
    except ModuleNotFoundError as error:
        # Only the index's absence means "no index yet"; a broken index must fail loudly.
        if error.name not in {"pecmail.certification.index", "pecmail.certification"}:
            raise
        return None
    return bool(trust_store().is_pec_domain(domain))


def is_pec_domain(domain: str) -> bool:
    """True when mail to ``domain`` is handled by a PEC provider (ours or one in the index)."""
    domain = domain.strip().lower()
    if not domain:
        return False
    if domain == settings.PEC_DOMAIN.lower():
        return True
    return _index_is_pec_domain(domain) is True


def is_pec_address(address: str) -> bool:
    return is_pec_domain(address.rpartition("@")[2])


def pec_domains_among(domains: set[str]) -> set[str]:
    """The subset of ``domains`` that are PEC, asking the index once per distinct domain."""
    return {domain for domain in domains if is_pec_domain(domain)}
