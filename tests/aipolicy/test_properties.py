"""Property tests: the normalisers, the target parser, the decision and the loader on arbitrary input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aipolicy import (
    Decision,
    PolicyError,
    RequestFacts,
    Target,
    decide,
    load_policy,
    normalise_host,
    normalise_path,
    parse_target,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE_POLICY = load_policy(FIXTURES / "policy.yaml")
BOUNDED = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Text biased towards the characters that matter to hosts and paths.
HOST_ALPHABET = "abcdefxyzDEEPSK0123456789.-_:[]@%25eEfFü。．ß\u00ad\u200d "
PATH_ALPHABET = "/\\.%2546eEfFcCa?#x-_~ü"
host_text = st.one_of(st.text(), st.text(alphabet=HOST_ALPHABET, max_size=40))
path_text = st.one_of(st.text(), st.text(alphabet=PATH_ALPHABET, max_size=40))


@BOUNDED
@given(host_text)
@example("a%2541.com")  # decodes to a%41.com, which decodes again to aa.com
@example("deepseek.com\u3002")  # an ideographic full stop as the trailing dot
@example("0X7F.1")
def test_normalise_host_never_raises_and_is_idempotent(raw: str) -> None:
    once = normalise_host(raw)
    assert isinstance(once, str)
    assert normalise_host(once) == once


@BOUNDED
@given(path_text)
@example("/a%3Fb")  # decodes to /a?b: a second pass would cut the "query"
@example("/%2525252e%2525252e/x")  # more encoding layers than are decoded
@example("/a/../../b//c/./")
def test_normalise_path_is_canonical(raw: str) -> None:
    once = normalise_path(raw)
    assert once.startswith("/")
    assert "//" not in once
    assert "/../" not in once and not once.endswith("/..")
    assert "/./" not in once and not once.endswith("/.")
    assert once == once.lower()
    assert normalise_path(once) == once


@BOUNDED
@given(st.one_of(st.text(), st.text(alphabet="*=./:[]0123456789abcdef-x", max_size=30)))
@example("::1%eth0/64")
@example("[")
@example("example.com/[")
def test_parse_target_returns_or_raises_value_error(text: str) -> None:
    try:
        target = parse_target(text)
    except ValueError as error:
        assert str(error)
    else:
        assert isinstance(target, Target)
        assert target.kind in ("domain", "network", "url")


@BOUNDED
@given(st.lists(host_text, max_size=4), st.one_of(st.none(), path_text))
def test_decide_never_raises(hosts: list[str], path: str | None) -> None:
    decision = decide(FIXTURE_POLICY, RequestFacts(hosts=tuple(hosts), path=path))
    assert isinstance(decision, Decision)
    assert decision.action in ("block", "monitor", "allow")
    assert decision.policy == FIXTURE_POLICY.hash


@BOUNDED
@given(st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,3}", fullmatch=True))
def test_subdomains_of_a_banned_domain_are_blocked(prefix: str) -> None:
    decision = decide(FIXTURE_POLICY, RequestFacts(hosts=(f"{prefix}.deepseek.com",), path="/"))
    assert (decision.action, decision.rule) == ("block", "deepseek")


# --- the loader -----------------------------------------------------------------------------

KEYS = ["version", "rules", "lists", "settings", "default", "id", "action", "match", "domains", "hosts", "ips",
        "urls", "vendors", "apps", "categories", "any", "enabled", "review", "directive", "reference", "file",
        "format", "log_query", "contact", "reason"]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=12),
    st.sampled_from(["block", "monitor", "allow", "warn", "deepseek", "genai", "x.example", "*.x.example",
                     "192.0.2.0/24", "example.com/a/*", "2020-01-01", "https://x.example/", "extra"]),
    st.dates(), st.datetimes(),
)  # fmt: skip
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.sampled_from(KEYS), children, max_size=5)
    ),
    max_leaves=25,
)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


def load_text(directory: Path, text: str) -> None:
    path = directory / "policy.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_policy(path)
    except PolicyError as error:
        # A refusal always says why: at least one error, located in a file.
        assert any(p.severity == "error" for p in error.problems), "PolicyError without an error"
        assert str(error)


@BOUNDED
@given(st.text())
@example("null")
@example("version: 1\nrules: " + "[" * 2000 + "]" * 2000)
@example("version: 1\nrules:\n  - {id: r, action: block, review: 2020-01-01 10:00:00, match: {any: true}}\n")
@example("\x00")
@example("a: !!python/object:os.system x")
def test_loader_raises_only_policy_error_on_any_text(directory: Path, text: str) -> None:
    load_text(directory, text)


@BOUNDED
@given(documents)
def test_loader_raises_only_policy_error_on_any_yaml_document(directory: Path, document: object) -> None:
    if isinstance(document, dict):
        document = {"version": 1, "catalog": str(FIXTURES / "catalog.yaml"), **document}
    load_text(directory, yaml.safe_dump(document, allow_unicode=True))
