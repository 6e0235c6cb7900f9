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
    (
        ("huggingface.co",),
        "/deepseek-ai/DeepSeek-R1/resolve/main/x.safetensors",
        "block",
        "deepseek",
        "url-prefix-under",
    ),
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
    (
        ("huggingface.co",),
        "/deepseek-ai/public-docs/page",
        "allow",
        "allow-hf-public",
        "first-match-earlier-allow-under",
    ),
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
def test_decide_fixture_policy(
    fixture_policy: Policy, hosts: tuple[str, ...], path: str, action: str, rule: str
) -> None:
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
def test_decide_connection_level(
    fixture_policy: Policy, hosts: tuple[str, ...], action: str, rule: str, final: bool
) -> None:
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
    decision = decide(fixture_policy, RequestFacts(hosts=("192.0.2.55", "chat.deepseek.com", "allowed.test"), path="/"))
    assert decision.host == "chat.deepseek.com"
    assert decision.hosts == ("192.0.2.55", "chat.deepseek.com", "allowed.test")


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


def test_first_match_wins_earlier_allow_beats_later_block(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            rules:
              - id: allow-docs
                action: allow
                match: {hosts: [docs.blocked.example]}
              - id: block-all
                action: block
                match: {domains: [blocked.example]}
              - id: allow-too-late
                action: allow
                match: {hosts: [late.blocked.example]}
            """,
        )
    )
    assert ask(policy, "docs.blocked.example") == ("allow", "allow-docs")
    assert ask(policy, "www.blocked.example") == ("block", "block-all")
    assert ask(policy, "late.blocked.example") == ("block", "block-all")


def test_first_match_across_kinds_follows_rule_order(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            rules:
              - id: monitor-first
                action: monitor
                match: {domains: ["*.x.example"]}
              - id: block-second
                action: block
                match: {domains: [x.example], any: true}
            """,
        )
    )
    assert ask(policy, "a.x.example") == ("monitor", "monitor-first")
    assert ask(policy, "x.example") == ("block", "block-second")
    assert ask(policy, "unrelated.example") == ("block", "block-second")  # any: true
    assert ask(policy, "192.0.2.1") == ("block", "block-second")


@pytest.mark.parametrize(
    ("match", "blocked", "not_blocked"),
    [
        ("vendors: [deepseek]", ["chat.deepseek.com", "deepseek.example"], ["chatgpt.com", "api.openai.com"]),
        ("vendors: [openai]", ["chatgpt.com", "api.openai.com", "x.chatgpt.com"], ["deepseek.com", "openai.com"]),
        ("apps: [chatgpt]", ["chatgpt.com", "api.openai.com"], ["deepseek.com", "www.openai.com"]),
        ("categories: [genai-prc]", ["deepseek.com", "deepseek.example"], ["chatgpt.com"]),
        ("categories: [genai]", ["deepseek.com", "chatgpt.com", "api.openai.com"], ["example.org"]),
    ],
    ids=["vendor-deepseek", "vendor-openai", "app", "category-prc", "category-genai"],
)
def test_catalogue_references_expand(tmp_path: Path, match: str, blocked: list[str], not_blocked: list[str]) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            f"""
            rules:
              - id: ref
                action: block
                match: {{{match}}}
            """,
        )
    )
    for host in blocked:
        assert ask(policy, host) == ("block", "ref"), host
    for host in not_blocked:
        assert ask(policy, host) == ("allow", "default"), host


def test_vendor_reference_expands_to_weights(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, "rules:\n  - {id: v, action: block, match: {vendors: [deepseek]}}\n"))
    assert ask(policy, "huggingface.co", path="/deepseek-ai/DeepSeek-V3/resolve/main/config.json") == ("block", "v")
    assert ask(policy, "huggingface.co", path="/api/models/deepseek-ai/DeepSeek-V3/revision/main") == ("block", "v")
    assert ask(policy, "huggingface.co", path="/mistralai/x") == ("allow", "default")


@pytest.mark.parametrize("default", ["block", "monitor", "allow"])
def test_default_action(tmp_path: Path, default: str) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            f"""
            default: {default}
            rules:
              - id: allowed
                action: allow
                match: {{domains: [ok.example]}}
            """,
        )
    )
    assert ask(policy, "ok.example") == ("allow", "allowed")
    decision = decide(policy, RequestFacts(hosts=("unlisted.example",), path="/"))
    assert (decision.action, decision.rule) == (default, "default")
    assert decision.reason == f"no rule matched; the policy's default is {default}"
    assert decision.policy == policy.hash


def test_default_action_is_allow_when_unset(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, "rules: []\n"))
    assert policy.default == "allow"
    assert ask(policy, "anything.example") == ("allow", "default")


@pytest.mark.parametrize("default", ["block", "monitor"])
def test_default_decision_records_the_host(tmp_path: Path, default: str) -> None:
    # A default block/monitor is logged; the event's `host` comes from the decision.
    policy = load_policy(write_policy(tmp_path, f"default: {default}\nrules: []\n"))
    first = decide(policy, RequestFacts(hosts=("Unlisted.Example",), path="/"))
    second = decide(policy, RequestFacts(hosts=("other.example",), path="/"))
    assert first.host == "unlisted.example"
    assert second.host == "other.example"


def test_default_decision_names_the_catalogue_app(tmp_path: Path) -> None:
    # The catalogue annotates any decision with the app of the host involved.
    policy = load_policy(write_policy(tmp_path, "default: monitor\nrules: []\n"))
    decision = decide(policy, RequestFacts(hosts=("chatgpt.com",), path="/"))
    assert (decision.action, decision.rule) == ("monitor", "default")
    assert (decision.app, decision.vendor) == ("chatgpt", "openai")


def test_rule_without_catalogue_reference_still_names_the_app(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(tmp_path, "rules:\n  - {id: d, action: block, match: {domains: [chatgpt.com]}}\n")
    )
    decision = decide(policy, RequestFacts(hosts=("chatgpt.com",), path="/"))
    assert (decision.action, decision.app, decision.vendor, decision.country) == ("block", "chatgpt", "openai", "US")


def test_rule_reason_and_directive_string(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            settings: {contact: helpdesk@example.org}
            rules:
              - id: r
                action: block
                reason: Not approved.
                directive: DIR-7
                contact: owner@example.org
                match: {domains: [x.example]}
              - id: s
                action: monitor
                match: {domains: [y.example]}
            """,
        )
    )
    r = decide(policy, RequestFacts(hosts=("x.example",), path="/"))
    assert (r.reason, r.directive, r.contact) == ("Not approved.", {"id": "DIR-7"}, "owner@example.org")
    s = decide(policy, RequestFacts(hosts=("y.example",), path="/"))
    assert (s.reason, s.directive, s.contact) == ("y.example is monitored by rule s", None, "helpdesk@example.org")


def test_disabled_rule_does_not_match(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            rules:
              - id: switched-off
                action: block
                enabled: false
                match: {domains: [x.example]}
              - id: still-on
                action: monitor
                match: {domains: [x.example]}
            """,
        )
    )
    assert [rule.id for rule in policy.rules] == ["still-on"]
    assert ask(policy, "x.example") == ("monitor", "still-on")


def test_hundred_thousand_entry_list_file(tmp_path: Path) -> None:
    names = [f"host{i}.list.example" for i in range(100_000)]
    extra = ["Upper.Case.Example", "*.wild.example", "198.51.100.0/24", "=exact.list.example", "path.example/bad-org"]
    (tmp_path / "big.txt").write_text("# big list\n" + "\n".join(names + extra) + "\n", encoding="utf-8")
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            lists:
              big: {file: big.txt}
            rules:
              - id: keep
                action: allow
                match: {hosts: [host5.list.example]}
              - id: big
                action: block
                match: {lists: [big]}
            """,
        )
    )
    assert ask(policy, "host0.list.example") == ("block", "big")
    assert ask(policy, "host99999.list.example") == ("block", "big")
    assert ask(policy, "www.host54321.list.example") == ("block", "big")
    assert ask(policy, "host5.list.example") == ("allow", "keep")
    assert ask(policy, "host100000.list.example") == ("allow", "default")
    assert ask(policy, "list.example") == ("allow", "default")
    assert ask(policy, "xhost1.list.example") == ("allow", "default")
    assert ask(policy, "upper.case.example") == ("block", "big")
    assert ask(policy, "wild.example") == ("allow", "default")
    assert ask(policy, "a.wild.example") == ("block", "big")
    assert ask(policy, "198.51.100.77") == ("block", "big")
    assert ask(policy, "exact.list.example") == ("block", "big")
    assert ask(policy, "a.exact.list.example") == ("allow", "default")
    assert ask(policy, "path.example", path="/bad-org/x") == ("block", "big")
    assert ask(policy, "path.example", path="/good-org/x") == ("allow", "default")


# --- the per-name decision cache ----------------------------------------------------------------


def test_path_rule_before_a_host_rule_is_asked_again_for_each_path(tmp_path: Path) -> None:
    """A host's verdict is cached only when no path or body could change it."""
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            rules:
              - {id: upload-path, action: block, match: {urls: [files.example/upload]}}
              - {id: whole-host, action: monitor, match: {domains: [files.example]}}
            """,
        )
    )
    assert ask(policy, "files.example", path="/read") == ("monitor", "whole-host")
    assert ask(policy, "files.example", path="/upload/x") == ("block", "upload-path")
    assert ask(policy, "files.example", path="/read") == ("monitor", "whole-host")
    assert "files.example" not in policy.decisions


def test_cached_decision_is_the_one_a_fresh_policy_gives(fixture_policy: Policy) -> None:
    fresh = load_policy(FIXTURES / "policy.yaml")
    for hosts, path, _action, _rule, _case in FIXTURE_CASES:
        first = decide(fixture_policy, RequestFacts(hosts=hosts, path=path))
        again = decide(fixture_policy, RequestFacts(hosts=hosts, path=path))
        assert again.as_dict() == first.as_dict() == decide(fresh, RequestFacts(hosts=hosts, path=path)).as_dict()


def test_decision_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("aipolicy.decision._decide.DECISION_CACHE_SIZE", 4)
    policy = load_policy(write_policy(tmp_path, "rules:\n  - {id: b, action: block, match: {domains: [b.example]}}\n"))
    for round_ in range(2):
        for number in range(10):
            assert ask(policy, f"h{number}.b.example") == ("block", "b"), round_
            assert ask(policy, f"h{number}.other.example") == ("allow", "default"), round_
            assert len(policy.decisions) <= 4


def test_several_names_are_not_cached_under_one_of_them(fixture_policy: Policy) -> None:
    """A decision over CONNECT target + SNI must not answer later for the target alone."""
    both = decide(fixture_policy, RequestFacts(hosts=("example.org", "chat.deepseek.com"), path="/"))
    alone = decide(fixture_policy, RequestFacts(hosts=("example.org",), path="/"))
    again = decide(fixture_policy, RequestFacts(hosts=("example.org", "chat.deepseek.com"), path="/"))
    assert (both.action, alone.action, again.action) == ("block", "allow", "block")
    assert again.hosts == ("example.org", "chat.deepseek.com")
