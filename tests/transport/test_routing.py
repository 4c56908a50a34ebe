"""Routing: static routes first, then MX by preference, then the domain's own address."""

from __future__ import annotations

from types import SimpleNamespace

import dns.exception
import dns.resolver
import pytest

from pecmail.transport.routing import Route, RoutingError, routes_for


class FakeResolver:
    def __init__(self, answers: dict[tuple[str, str], object]) -> None:
        self.answers = answers

    def resolve(self, name: str, rdtype: str):
        answer = self.answers.get((name, rdtype), dns.resolver.NoAnswer())
        if isinstance(answer, Exception):
            raise answer
        return answer


def mx(preference: int, host: str) -> SimpleNamespace:
    return SimpleNamespace(preference=preference, exchange=host)


def test_it_uses_a_static_route_before_dns(settings):
    settings.PEC_ROUTES = {"pec-b.test": "127.0.0.1:2526"}
    assert routes_for("PEC-B.test.", resolver=FakeResolver({})) == [Route("127.0.0.1", 2526)]


def test_it_orders_mx_hosts_by_preference(settings):
    settings.PEC_ROUTES = {}
    resolver = FakeResolver(
        {("example.test", "MX"): [mx(20, "mx2.example.test."), mx(10, "mx1.example.test.")]}
    )
    assert routes_for("example.test", resolver=resolver) == [
        Route("mx1.example.test", 25),
        Route("mx2.example.test", 25),
    ]


def test_it_falls_back_to_the_a_record_without_mx(settings):
    settings.PEC_ROUTES = {}
    resolver = FakeResolver({("example.test", "A"): ["192.0.2.1"]})
    assert routes_for("example.test", resolver=resolver) == [Route("example.test", 25)]


def test_it_says_a_missing_domain_is_permanent_and_a_timeout_transient(settings):
    settings.PEC_ROUTES = {}
    with pytest.raises(RoutingError) as missing:
        routes_for("nowhere.test", resolver=FakeResolver({("nowhere.test", "MX"): dns.resolver.NXDOMAIN()}))
    assert missing.value.transient is False
    with pytest.raises(RoutingError) as slow:
        routes_for("slow.test", resolver=FakeResolver({("slow.test", "MX"): dns.exception.Timeout()}))
    assert slow.value.transient is True


def test_it_refuses_a_null_mx(settings):
    settings.PEC_ROUTES = {}
    with pytest.raises(RoutingError) as null:
        routes_for("nomail.test", resolver=FakeResolver({("nomail.test", "MX"): [mx(0, ".")]}))
    assert null.value.transient is False
