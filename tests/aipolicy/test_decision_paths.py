"""The decision's fast paths give the decisions of the plain algorithm.

decide() keeps each name's index entries sorted by rule position, finds the name's catalogue
app in the same walk over its labels, builds verdicts from per-(rule, app) templates and
remembers decisions per name. tests/aipolicy/reference_decision.py keeps the algorithm as it
was before (every candidate listed and sorted, no caches); here random policies and requests
must get equal decisions from both, with the per-name cache empty and full.
"""

from __future__ import annotations

import ipaddress
import tempfile
from operator import itemgetter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aipolicy import RequestFacts, decide, default_policy, load_policy, normalise_host, normalise_path
from aipolicy.matching._hosts import _normalise_slowly, parse_ip
from aipolicy.matching._index import HostIndex

from .reference_decision import _normalise_path as reference_normalise_path
from .reference_decision import reference_decide

FIXTURE_CATALOG = Path(__file__).resolve().parents[1] / "fixtures" / "catalog.yaml"
BOUNDED = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = [
    "deepseek.com", "chat.deepseek.com", "deepseek.example", "x.deepseek.example", "chatgpt.com",
    "api.openai.com", "gateway.example", "header.example", "files.example", "a.files.example", "example.org",
    "www.example.org", "cn", "web.cn", "bedrock-runtime.us-east-1.amazonaws.com", "huggingface.co",
]  # fmt: skip
ADDRESSES = ["192.0.2.7", "198.51.100.1", "[::ffff:192.0.2.7]", "2001:db8::1"]
MATCHES: list[dict[str, Any]] = (
    [{"domains": [n]} for n in NAMES]
    + [{"domains": ["*." + n]} for n in NAMES]
    + [{"hosts": [n]} for n in NAMES]
    + [{"urls": [n + p]} for n in ("files.example", "huggingface.co", "example.org") for p in ("/upload", "/deepseek-ai/*", "/v1")]
    + [{"ips": ["192.0.2.0/24"]}, {"ips": ["192.0.2.7"]}, {"ips": ["2001:db8::/32"]}]
    + [{"vendors": ["deepseek"]}, {"vendors": ["openai"]}, {"apps": ["chatgpt"]}]
    + [{"categories": ["genai"]}, {"categories": ["genai-prc"]}]
    + [{"models": ["*deepseek*"]}, {"models": ["gpt-*"]}, {"lists": ["big"]}, {"any": True}]
)  # fmt: skip
LIST = ["deepseek.com", "*.example.org", "files.example/upload", "192.0.2.0/24", "=header.example", "web.cn"]
PATHS = [
    None, "/", "/upload/x", "/UPLOAD", "/deepseek-ai/m/resolve/main/x.safetensors", "/v1/chat", "/a/../upload/x",
    "/%75pload/x", "/model/deepseek-r1/invoke", "/.well-known/x", "/v1?q=/upload", "//upload",
]  # fmt: skip
BODIES = [None, b"", b'{"model": "deepseek-chat"}', b'{"model": "gpt-4o"}', b'{"prompt": "topsecret"}']


@st.composite
def rules(draw: st.DrawFn, position: int) -> dict[str, Any]:
    rule: dict[str, Any] = {"id": f"r{position}", "match": draw(st.sampled_from(MATCHES))}
    with_dlp = draw(st.booleans()) and draw(st.booleans())
    actions = ["block", "monitor"] if with_dlp else ["block", "monitor", "allow", "read-only", "warn"]
    rule["action"] = draw(st.sampled_from(actions))
    if with_dlp:
        rule["dlp"] = {"keywords": {"words": ["topsecret"]}}
    if draw(st.booleans()):
        rule["reason"] = f"reason {position}"
    if draw(st.integers(0, 4)) == 0:
        rule["when"] = {"users": ["alice"]}
    return rule


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 6))
    body: dict[str, Any] = {
        "version": 1,
        "catalog": str(FIXTURE_CATALOG),
        "default": draw(st.sampled_from(["allow", "allow", "block", "monitor"])),
        "lists": {"big": LIST},
        "rules": [draw(rules(i)) for i in range(count)],
    }
    lifted = draw(st.lists(st.integers(0, count - 1), max_size=2, unique=True))
    if lifted:
        body["exceptions"] = [
            {"id": f"e{i}", "rule": f"r{i}", "users": ["alice"], "ticket": "T-1", "until": "2099-01-01"} for i in lifted
        ]
    return body


def spelled(name: str, prefix: str, upper: bool) -> str:
    if name.startswith("[") or ":" in name or name[-1].isdigit():
        return name
    host = prefix + name
    return host.upper() if upper else host


@st.composite
def requests(draw: st.DrawFn) -> RequestFacts:
    name = st.builds(
        spelled, st.sampled_from(NAMES + ADDRESSES), st.sampled_from(["", "", "www.", "a.b."]), st.booleans()
    )
    body = draw(st.sampled_from(BODIES))
    headers = {"content-type": "application/json"} if draw(st.booleans()) else {}
    if draw(st.booleans()):
        headers["x-model"] = draw(st.sampled_from(["deepseek-v3", "gpt-4o"]))
    return RequestFacts(
        hosts=tuple(draw(st.lists(name, min_size=1, max_size=3))),
        path=draw(st.sampled_from(PATHS)),
        method=draw(st.sampled_from(["GET", "POST"])),
        user=draw(st.sampled_from(["", "alice", "bob"])),
        headers=headers,
        body=body,
    )


@BOUNDED
@given(policies(), st.lists(requests(), min_size=1, max_size=12))
@example(
    {"version": 1, "catalog": str(FIXTURE_CATALOG), "lists": {"big": LIST}, "rules": [
        {"id": "r0", "action": "block", "match": {"lists": ["big"]}},
        {"id": "r1", "action": "monitor", "match": {"vendors": ["deepseek"]}},
    ]},
    [RequestFacts(hosts=("chat.deepseek.com",), path="/"), RequestFacts(hosts=("x.web.cn",), path=None)],
)  # fmt: skip
def test_decide_equals_the_plain_algorithm(policy_body: dict[str, Any], facts_list: list[RequestFacts]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "policy.yaml"
        path.write_text(yaml.safe_dump(policy_body), encoding="utf-8")
        policy = load_policy(path)
    for facts in facts_list:
        expected = reference_decide(policy, facts)
        policy.decisions.clear()
        assert decide(policy, facts) == expected, facts  # the miss path
        assert decide(policy, facts) == expected, facts  # again: from the per-name cache, if it was kept
    for facts in facts_list:  # interleaved, with whatever the cache holds from the others
        assert decide(policy, facts) == reference_decide(policy, facts), facts


@pytest.mark.parametrize(
    "host",
    ["chat.deepseek.com", "deepseek.com", "www.example.org", "web.cn", "x.web.cn", "api.openai.com", "files.example"],
)
def test_default_policy_decisions_equal_the_plain_algorithm(host: str) -> None:
    policy = load_policy(default_policy())
    weights = "/deepseek-ai/DeepSeek-R1/resolve/main/model.safetensors"
    for path in (None, "/", "/v1/chat/completions", weights):
        for body in (None, b'{"model": "deepseek-chat"}', b'{"model": "gpt-4o"}'):
            facts = RequestFacts(hosts=(host,), path=path, method="POST", body=body)
            policy.decisions.clear()
            assert decide(policy, facts) == reference_decide(policy, facts), facts
            assert decide(policy, facts) == reference_decide(policy, facts), facts


# --- the index: walk() against lookup() ---------------------------------------------------------

PATTERN_NAMES = ["a.example", "b.a.example", "example", "c.b.a.example", "other.test", "test"]
patterns = st.builds(lambda kind, name: kind + name, st.sampled_from(["", "*.", "="]), st.sampled_from(PATTERN_NAMES))
probe_hosts = st.sampled_from(["c.b.a.example", "b.a.example", "a.example", "x.a.example", "example", "q.other.test"])


@BOUNDED
@given(
    st.lists(st.tuples(patterns, st.integers(0, 5)), max_size=12),
    st.lists(st.tuples(patterns, st.sampled_from(["app1", "app2", "app3"])), max_size=6),
    st.lists(st.sampled_from(PATTERN_NAMES), max_size=4),
    probe_hosts,
)
def test_walk_agrees_with_lookup(
    added: list[tuple[str, int]], apps: list[tuple[str, str]], many: list[str], host: str
) -> None:
    """Sorted buckets, the first value found without sorting, and the companion's first value
    are what lookup() and a stable sort of its list give."""
    order = itemgetter(0)
    index: HostIndex[tuple[int, str]] = HostIndex(order=order)
    plain: HostIndex[tuple[int, str]] = HostIndex()
    companion: HostIndex[str] = HostIndex()
    for pattern, app in apps:
        companion.add(pattern, app)
    for number, (pattern, position) in enumerate(added):
        index.add(pattern, (position, f"v{number}"))
        plain.add(pattern, (position, f"v{number}"))
    if many:
        index.add_many(many, (3, "many"))
        plain.add_many(many, (3, "many"))
    index.add_companion(companion)
    expected = sorted(plain.lookup(host), key=order)
    first, values, in_order, app = index.walk(host)
    assert sorted(values, key=order) == expected
    assert (list(values) == expected) or not in_order
    assert first == (expected[0] if expected else None)
    assert list(index.match(host)) == expected
    assert app == companion.first(host) == next(iter(companion.lookup(host)), None)
    assert sorted(index.names()) == sorted(plain.names())


def test_walk_without_a_companion_says_so() -> None:
    index: HostIndex[str] = HostIndex()
    index.add("example.com", "v")
    assert index.walk("www.example.com") == ("v", ("v",), True, None)
    assert index.no_companion is None
    index.add_companion(HostIndex())
    assert index.no_companion == ""


# --- normalise_path: the substring fast path against the regex it replaced ----------------------

PATH_ALPHABET = "/\\.%2546eEfFcCa?#x-_~ü İ"


@BOUNDED
@given(st.one_of(st.text(), st.text(alphabet=PATH_ALPHABET, max_size=40)))
@example("/.well-known/x")
@example("/a/./b")
@example("/a/..")
@example("/")
@example("")
@example("/İstanbul")
@example("a/b")
def test_normalise_path_equals_the_regex_version(raw: str) -> None:
    assert normalise_path(raw) == reference_normalise_path(raw)


# --- parse_ip: canonical IPv4 without the ipaddress parser -------------------------------------


@BOUNDED
@given(st.one_of(st.ip_addresses(v=4).map(str), st.text(alphabet="0123456789.x:", max_size=16)))
@example("255.255.255.255")
@example("0.0.0.0")
@example("01.2.3.4")
@example("256.1.1.1")
def test_parse_ip_equals_the_ipaddress_parser(host: str) -> None:
    try:
        expected: object = ipaddress.ip_address(host)
    except ValueError:
        expected = None
    if isinstance(expected, ipaddress.IPv6Address) and expected.ipv4_mapped:
        expected = expected.ipv4_mapped
    if not host or not (host[-1].isdigit() or ":" in host):
        expected = None
    assert parse_ip(host) == expected


# --- normalise_host: the fast paths give what the full normalisation gives ----------------------


@BOUNDED
@given(
    st.one_of(
        st.text(alphabet="abz09.-_:xX", max_size=24),
        st.builds("{}:{}".format, st.text(alphabet="abz09.-_xX", max_size=20), st.integers(0, 70000)),
        st.builds("{}:{}".format, st.ip_addresses(v=4).map(str), st.integers(0, 70000)),
    )
)
@example("example.com:8443")
@example("127.0.0.1:8000")
@example("0x7f.1:80")
@example("a.0xff:443")
@example("a.09:443")
def test_normalise_host_fast_paths_equal_the_full_normalisation(raw: str) -> None:
    assert normalise_host(raw) == _normalise_slowly(raw)
