"""The decision function: which rule, which action, and what the decision carries."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from aipolicy import Policy, RequestFacts, decide, load_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE_CATALOG = FIXTURES / "catalog.yaml"


@pytest.fixture(scope="module")
def fixture_policy() -> Policy:
    return load_policy(FIXTURES / "policy.yaml")


def write_policy(directory: Path, body: str, name: str = "policy.yaml") -> Path:
    """A policy using the test catalogue, written to ``directory``."""
    path = directory / name
    path.write_text(f"version: 1\ncatalog: {FIXTURE_CATALOG}\n" + textwrap.dedent(body), encoding="utf-8")
    return path


def ask(policy: Policy, *hosts: str, path: str | None = "/") -> tuple[str, str]:
    decision = decide(policy, RequestFacts(hosts=hosts, path=path))
    return decision.action, decision.rule


# --- over tests/fixtures/policy.yaml --------------------------------------------------------

FIXTURE_CASES = [
    # (hosts, path, action, rule, id)
    (("deepseek.com",), "/", "block", "deepseek", "domain-covers-itself"),
    (("chat.deepseek.com",), "/", "block", "deepseek", "domain-covers-subdomain"),
    (("a.b.c.deepseek.com",), "/", "block", "deepseek", "domain-covers-deep-subdomain"),
    (("CHAT.DeepSeek.COM.",), "/", "block", "deepseek", "case-and-trailing-dot"),
    (("user@chat.deepseek.com:443",), "/", "block", "deepseek", "userinfo-and-port"),
    (("notdeepseek.com",), "/", "allow", "default", "label-boundary-prefix"),
    (("deepseek.com.evil.example",), "/", "allow", "default", "domain-as-a-label-of-another"),
    (("deepseek.co",), "/", "allow", "default", "different-tld"),
    (("deepseek.example",), "/", "block", "deepseek", "exact-host-from-catalogue"),
    (("www.deepseek.example",), "/", "allow", "default", "exact-host-not-subdomains"),
    (("sub.example",), "/", "allow", "default", "wildcard-not-itself"),
    (("a.sub.example",), "/", "block", "extra-list", "wildcard-subdomain"),
    (("a.b.sub.example",), "/", "block", "extra-list", "wildcard-deep-subdomain"),
    (("blocked.example",), "/", "block", "extra-list", "inline-list-domain"),
    (("x.blocked.example",), "/", "block", "extra-list", "inline-list-subdomain"),
    (("exact.example",), "/", "block", "exact", "hosts-exact"),
    (("www.exact.example",), "/", "allow", "default", "hosts-not-subdomain"),
    (("203.0.113.0",), "/", "block", "extra-list", "cidr-first-address"),
    (("203.0.113.255",), "/", "block", "extra-list", "cidr-last-address"),
    (("203.0.114.0",), "/", "allow", "default", "cidr-next-network"),
    (("203.0.112.255",), "/", "allow", "default", "cidr-previous-network"),
    (("[::ffff:203.0.113.9]",), "/", "block", "extra-list", "ipv4-mapped-ipv6-in-ipv4-cidr"),
    (("[::ffff:cb00:7109]",), "/", "block", "extra-list", "ipv4-mapped-hex-form"),
    (("0xcb.0.113.9",), "/", "block", "extra-list", "whatwg-ipv4-in-cidr"),
    (("huggingface.co",), "/deepseek-ai", "block", "deepseek", "url-prefix-itself"),
    (("huggingface.co",), "/deepseek-ai/", "block", "deepseek", "url-prefix-trailing-slash"),
    (("huggingface.co",), "/deepseek-ai/DeepSeek-R1/resolve/main/x.safetensors", "block", "deepseek", "url-prefix-under"),
    (("huggingface.co",), "/deepseek-ai-x", "allow", "default", "url-prefix-segment-aligned"),
    (("huggingface.co",), "/deepseek-aix/y", "allow", "default", "url-prefix-segment-aligned-2"),
    (("huggingface.co",), "/Qwen/Qwen2", "allow", "default", "url-other-org"),
    (("huggingface.co",), "/DeepSeek-AI/x", "block", "deepseek", "url-case-insensitive"),
    (("huggingface.co",), "/deepseek%2Dai/x", "block", "deepseek", "url-percent-encoded"),
    (("huggingface.co",), "/%2564eepseek-ai/x", "block", "deepseek", "url-double-encoded"),
    (("huggingface.co",), "/x/../deepseek-ai/r1", "block", "deepseek", "url-dot-segments"),
    (("huggingface.co",), "//deepseek-ai//r1", "block", "deepseek", "url-repeated-slashes"),
    (("huggingface.co",), "/deepseek-ai?x=1", "block", "deepseek", "url-query-ignored"),
    (("huggingface.co",), "/api/models/deepseek-ai/r1", "block", "deepseek", "url-second-hub-path"),
    (("huggingface.co",), "/deepseek-ai/public-docs", "allow", "allow-hf-public", "first-match-earlier-allow"),
    (("huggingface.co",), "/deepseek-ai/public-docs/page", "allow", "allow-hf-public", "first-match-earlier-allow-under"),
    (("huggingface.co",), "/deepseek-ai/public-docs-2", "block", "deepseek", "earlier-allow-is-segment-aligned"),
    (("api.openai.com",), "/v1/chat", "monitor", "ai-monitor", "category-monitor"),
    (("x.chatgpt.com",), "/", "monitor", "ai-monitor", "category-monitor-subdomain"),
    (("allowed.test",), "/", "allow", "default", "default-allow"),
    (("allowed.test", "chat.deepseek.com"), "/", "block", "deepseek", "most-severe-sni-banned"),
    (("chat.deepseek.com", "allowed.test"), "/", "block", "deepseek", "most-severe-order-independent"),
    (("chatgpt.com", "blocked.example"), "/", "block", "extra-list", "block-beats-monitor"),
    (("allowed.test", "chatgpt.com"), "/", "monitor", "ai-monitor", "monitor-beats-allow"),
    (("203.0.113.5", "allowed.test"), "/", "block", "extra-list", "ip-target-banned"),
    ((), "/", "allow", "default", "no-hosts"),
    (("",), "/", "allow", "default", "empty-host"),
]


@pytest.mark.parametrize(
    ("hosts", "path", "action", "rule"), [c[:4] for c in FIXTURE_CASES], ids=[c[4] for c in FIXTURE_CASES]
)
def test_decide_fixture_policy(fixture_policy: Policy, hosts: tuple[str, ...], path: str, action: str, rule: str) -> None:
    decision = decide(fixture_policy, RequestFacts(hosts=hosts, path=path))
    assert (decision.action, decision.rule) == (action, rule)
    assert decision.final is True


CONNECTION_CASES = [
    # (hosts, action, rule, final, id): path None = CONNECT / ClientHello, no request yet
    (("chat.deepseek.com",), "block", "deepseek", True, "banned-host"),
    (("allowed.test",), "allow", "default", True, "unknown-host"),
    (("api.openai.com",), "monitor", "ai-monitor", True, "monitored-host"),
    (("huggingface.co",), "allow", "allow-hf-public", False, "path-rule-needs-request"),
    (("huggingface.co", "allowed.test"), "allow", "default", False, "path-rule-on-one-name"),
    (("huggingface.co", "api.deepseek.com"), "block", "deepseek", True, "block-on-another-name-is-final"),
]


@pytest.mark.parametrize(
    ("hosts", "action", "rule", "final"), [c[:4] for c in CONNECTION_CASES], ids=[c[4] for c in CONNECTION_CASES]
)
def test_decide_connection_level(fixture_policy: Policy, hosts: tuple[str, ...], action: str, rule: str, final: bool) -> None:
    decision = decide(fixture_policy, RequestFacts(hosts=hosts, path=None))
    assert (decision.action, decision.rule, decision.final) == (action, rule, final)


def test_decision_carries_catalogue_and_provenance(fixture_policy: Policy) -> None:
    decision = decide(fixture_policy, RequestFacts(hosts=("Chat.DeepSeek.com",), path="/"))
    assert decision.blocked
    assert decision.host == "chat.deepseek.com"
    assert decision.hosts == ("chat.deepseek.com",)
    assert decision.app == "deepseek"
    assert decision.app_name == "DeepSeek"
    assert decision.vendor == "deepseek"
    assert decision.vendor_name == "DeepSeek"
    assert decision.categories == ("genai", "genai-prc")
    assert decision.country == "CN"
    assert decision.directive == {"id": "NAVY-1", "title": "Navy notice", "reference": "https://example.org/notice"}
    assert decision.contact == "security@example.org"
    assert decision.policy == fixture_policy.hash
    assert len(decision.policy) == 16
    assert decision.reason == "DeepSeek is blocked by rule deepseek"


def test_weights_decision_names_the_app(fixture_policy: Policy) -> None:
    decision = decide(fixture_policy, RequestFacts(hosts=("huggingface.co",), path="/deepseek-ai/R1"))
    assert (decision.app, decision.vendor, decision.country) == ("deepseek", "deepseek", "CN")


def test_decision_as_dict(fixture_policy: Policy) -> None:
    data = decide(fixture_policy, RequestFacts(hosts=("api.openai.com",), path="/v1")).as_dict()
    assert data["action"] == "monitor"
    assert data["rule"] == "ai-monitor"
    assert data["app"] == "chatgpt"
    assert data["vendor"] == "openai"
    assert data["country"] == "US"
    assert data["categories"] == ["genai"]
    assert data["directive"] is None
    assert data["policy"] == decide(fixture_policy, RequestFacts(hosts=("x",))).policy


def test_most_severe_name_is_reported(fixture_policy: Policy) -> None:
    decision = decide(fixture_policy, RequestFacts(hosts=("203.0.113.5", "chat.deepseek.com", "allowed.test"), path="/"))
    assert decision.host == "chat.deepseek.com"
    assert decision.hosts == ("203.0.113.5", "chat.deepseek.com", "allowed.test")


# --- small policies -------------------------------------------------------------------------

def test_ip_and_network_rules(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            rules:
              - id: one
                action: block
                match:
                  ips: [192.0.2.7, "2001:db8::1", 198.51.100.0/24, "2001:db8:ab::/48"]
            """,
        )
    )
    assert ask(policy, "192.0.2.7") == ("block", "one")
    assert ask(policy, "192.0.2.8") == ("allow", "default")
    assert ask(policy, "198.51.100.200") == ("block", "one")
    assert ask(policy, "198.51.101.1") == ("allow", "default")
    assert ask(policy, "[2001:db8::1]:443") == ("block", "one")
    assert ask(policy, "2001:DB8:0::1") == ("block", "one")
    assert ask(policy, "2001:db8::2") == ("allow", "default")
    assert ask(policy, "[2001:db8:ab:cd::5]") == ("block", "one")
    assert ask(policy, "2001:db8:ac::5") == ("allow", "default")
    assert ask(policy, "[::ffff:198.51.100.9]") == ("block", "one")
    assert ask(policy, "3325256709") == ("block", "one")  # 198.51.100.5 as one number


def test_ipv4_mapped_ipv6_rule_matches_its_address(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            rules:
              - id: mapped
                action: block
                match:
                  ips: ["::ffff:198.51.100.7"]
            """,
        )
    )
    assert ask(policy, "[::ffff:198.51.100.7]") == ("block", "mapped")
    assert ask(policy, "198.51.100.7") == ("block", "mapped")


def test_domain_rules_and_wildcards(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            rules:
              - id: whole
                action: block
                match: {domains: [whole.example]}
              - id: subs
                action: block
                match: {domains: ["*.subs.example"]}
              - id: exact
                action: block
                match: {hosts: [exact.example, "=also.example"]}
              - id: idn
                action: block
                match: {domains: [bücher.example]}
            """,
        )
    )
    cases = {
        "whole.example": ("block", "whole"),
        "a.whole.example": ("block", "whole"),
        "awhole.example": ("allow", "default"),
        "subs.example": ("allow", "default"),
        "a.subs.example": ("block", "subs"),
        "exact.example": ("block", "exact"),
        "a.exact.example": ("allow", "default"),
        "also.example": ("block", "exact"),
        "a.also.example": ("allow", "default"),
        "xn--bcher-kva.example": ("block", "idn"),
        "www.BÜCHER.example": ("block", "idn"),
    }
    assert {host: ask(policy, host) for host in cases} == cases


def test_url_globs(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            rules:
              - id: glob
                action: block
                match: {urls: ["models.example/*/resolve/*.gguf", "models.example/org-*"]}
            """,
        )
    )
    assert ask(policy, "models.example", path="/any/resolve/main/m.gguf") == ("block", "glob")
    assert ask(policy, "models.example", path="/any/resolve/main/m.GGUF") == ("block", "glob")
    assert ask(policy, "models.example", path="/any/resolve/main/m.bin") == ("allow", "default")
    assert ask(policy, "models.example", path="/org-deepseek/x") == ("block", "glob")
    assert ask(policy, "models.example", path="/other/x") == ("allow", "default")
    assert ask(policy, "www.models.example", path="/org-x") == ("allow", "default")  # url hosts are exact domains? no: itself and subdomains
