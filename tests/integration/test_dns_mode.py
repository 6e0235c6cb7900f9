"""DNS mode: a real mitmdump with ``--mode dns`` answering real DNS queries over UDP on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import dns.message
import dns.query
import dns.rcode
import pytest

from .harness import Proxy, free_port, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dns_proxy(make_proxy: Callable[..., Proxy]) -> Iterator[tuple[Proxy, int]]:
    port = free_port()  # a free TCP port; the UDP port of the same number is free in practice on loopback
    proxy = make_proxy("dns", extra=["--mode", "regular", "--mode", f"dns@{port}", "--set", "dns_use_hosts_file=true"])
    # make_proxy waits for the HTTP port only; the UDP server may start a moment later (mitmproxy 12)
    assert wait_until(lambda: f"DNS server listening at 127.0.0.1:{port}" in proxy.stderr_text(), timeout=30)
    yield proxy, port


def ask(port: int, name: str, kind: str = "A") -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, kind), "127.0.0.1", port=port, timeout=10)


def dns_events(proxy: Proxy, name: str) -> list[dict[str, object]]:
    if not proxy.log.exists():
        return []
    lines = proxy.log.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("stage") == "dns" and e.get("host") == name]


@pytest.mark.parametrize("kind", ["A", "AAAA", "HTTPS"])
def test_a_banned_name_gets_nxdomain_and_is_logged(dns_proxy: tuple[Proxy, int], kind: str) -> None:
    proxy, port = dns_proxy
    name = f"{kind.lower()}.chat.deepseek.com"
    answer = ask(port, name, kind)
    assert answer.rcode() == dns.rcode.NXDOMAIN
    assert answer.answer == []
    events = wait_until(lambda: dns_events(proxy, name))
    assert events and events[0]["action"] == "block" and events[0]["rule"] == "deepseek"
    assert events[0]["dns_type"] == kind and events[0]["client_ip"] == "127.0.0.1"


def test_an_allowed_name_resolves(dns_proxy: tuple[Proxy, int]) -> None:
    proxy, port = dns_proxy
    answer = ask(port, "localhost")
    assert answer.rcode() == dns.rcode.NOERROR
    addresses = [item.address for rrset in answer.answer for item in rrset]
    assert "127.0.0.1" in addresses
    assert dns_events(proxy, "localhost") == []


def test_a_monitored_name_is_logged_and_not_refused_by_the_policy(dns_proxy: tuple[Proxy, int]) -> None:
    proxy, port = dns_proxy
    ask(port, "monitored.chatgpt.com")  # no upstream DNS here: whatever the resolver says, the policy refused nothing
    events = wait_until(lambda: dns_events(proxy, "monitored.chatgpt.com"))
    assert events and events[0]["action"] == "monitor" and events[0]["rule"] == "ai-monitor"


def test_the_policy_not_the_resolver_refuses(dns_proxy: tuple[Proxy, int]) -> None:
    """A name that resolves (localhost) gets NXDOMAIN once the policy bans it (hot reload, the same proxy)."""
    proxy, port = dns_proxy
    text = proxy.policy.read_text()
    rule = "  - id: ban-localhost\n    action: block\n    match:\n      hosts: [localhost]\n"
    proxy.policy.write_text(text.replace("rules:\n", "rules:\n" + rule, 1))
    assert wait_until(lambda: ask(port, "localhost").rcode() == dns.rcode.NXDOMAIN, timeout=15)
    events = wait_until(lambda: dns_events(proxy, "localhost"))
    assert events and events[-1]["rule"] == "ban-localhost"
