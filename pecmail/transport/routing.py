"""Where to send mail for a domain: a static route (``PEC_ROUTES``), else MX, else the A record."""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.resolver
from django.conf import settings


class RoutingError(Exception):
    """No route can be found now; ``transient`` says whether asking again later may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Route:
    host: str
    port: int


def parse_route(value: str) -> Route:
    host, _sep, port = value.strip().rpartition(":")
    if not host:
        return Route(host=value.strip(), port=25)
    return Route(host=host.strip("[]"), port=int(port))


def routes_for(domain: str, *, resolver: dns.resolver.Resolver | None = None) -> list[Route]:
    """Return the hosts to try for ``domain``, best first.

    A static route wins (tests, private networks); otherwise MX records by preference;
    a domain without MX falls back to its own address (RFC 5321 §5.1). A domain that does
    not exist is a permanent error, a DNS timeout a transient one.
    """
    domain = domain.strip().rstrip(".").lower()
    static = dict(getattr(settings, "PEC_ROUTES", {}) or {})
    if domain in static:
        return [parse_route(static[domain])]
    resolver = resolver or dns.resolver.get_default_resolver()
    try:
        answer = resolver.resolve(domain, "MX")
        records = sorted(answer, key=lambda r: r.preference)
        hosts = [str(r.exchange).rstrip(".") for r in records]
        # A null MX ("." at preference 0, RFC 7505) says the domain accepts no mail.
        if hosts == [""]:
            raise RoutingError(f"{domain} accepts no mail (null MX)", transient=False)
        return [Route(host=h, port=25) for h in hosts if h]
    except dns.resolver.NXDOMAIN as exc:
        raise RoutingError(f"{domain} does not exist", transient=False) from exc
    except dns.resolver.NoAnswer:
        pass
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise RoutingError(f"DNS lookup for {domain} failed: {exc}", transient=True) from exc
    try:
        resolver.resolve(domain, "A")
    except dns.resolver.NXDOMAIN as exc:
        raise RoutingError(f"{domain} does not exist", transient=False) from exc
    except dns.resolver.NoAnswer as exc:
        raise RoutingError(f"{domain} has neither MX nor A records", transient=False) from exc
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise RoutingError(f"DNS lookup for {domain} failed: {exc}", transient=True) from exc
    return [Route(host=domain, port=25)]
