"""The DNS addon with mitmproxy's test helpers: NXDOMAIN for banned names, SERVFAIL when deciding fails."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import dns
from mitmproxy.net.dns import response_codes
from mitmproxy.test import tflow, tutils

with warnings.catch_warnings():
    # taddons loads every default addon; proxyauth's ldap3 uses pyasn1 names deprecated upstream
    warnings.simplefilter("ignore", DeprecationWarning)
    from mitmproxy.test import taddons

from aipolicy.proxy_addons.dns_enforcer import DnsEnforcer
from aipolicy.proxy_addons.enforcer import Enforcer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def addons(tmp_path: Path) -> Iterator[tuple[Enforcer, DnsEnforcer, Path]]:
    enforcer = Enforcer()
    log = tmp_path / "events.jsonl"
    context = taddons.context(enforcer)  # makes its own event loop when none runs
    try:
        with context:
            context.configure(enforcer, aipolicy_policy=str(FIXTURES / "policy.yaml"), aipolicy_log=str(log))
            yield enforcer, enforcer.dns, log
            context.master.event_loop.run_until_complete(enforcer.done())
    finally:
        context.master.event_loop.close()


def query(name: str) -> dns.DNSFlow:
    return tflow.tdnsflow(req=tutils.tdnsreq(questions=[dns.Question(name, dns.types.A, dns.classes.IN)]))


def events(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_banned_name_gets_nxdomain(addons: tuple[Enforcer, DnsEnforcer, Path]) -> None:
    _, addon, log = addons
    flow = query("chat.deepseek.com")
    addon.dns_request(flow)
    assert flow.response is not None and flow.response.response_code == response_codes.NXDOMAIN
    assert flow.response.answers == []
    [event] = events(log)
    assert event["stage"] == "dns" and event["rule"] == "deepseek" and event["dns_type"] == "A"


def test_other_names_are_left_to_the_resolver(addons: tuple[Enforcer, DnsEnforcer, Path]) -> None:
    _, addon, log = addons
    flow = query("www.example.com")
    addon.dns_request(flow)
    assert flow.response is None
    assert events(log) == []


def test_a_name_whose_rule_needs_the_path_resolves(addons: tuple[Enforcer, DnsEnforcer, Path]) -> None:
    """huggingface.co is blocked only under deepseek-ai/…: the name itself must resolve."""
    _, addon, _ = addons
    flow = query("huggingface.co")
    addon.dns_request(flow)
    assert flow.response is None


def test_an_error_while_deciding_answers_servfail(addons: tuple[Enforcer, DnsEnforcer, Path]) -> None:
    enforcer, addon, _ = addons

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    enforcer.decide = broken  # type: ignore[assignment]
    flow = query("www.example.com")
    addon.dns_request(flow)
    assert flow.response is not None and flow.response.response_code == response_codes.SERVFAIL


def test_a_monitored_name_that_cannot_be_logged_is_refused(addons: tuple[Enforcer, DnsEnforcer, Path]) -> None:
    enforcer, addon, _ = addons
    enforcer.events = None  # the log is gone: monitoring cannot be recorded, so fail closed
    flow = query("chatgpt.com")
    addon.dns_request(flow)
    assert flow.response is not None and flow.response.response_code == response_codes.NXDOMAIN
