"""evaluate(): the request sequence the proxy and `aipolicy policy test` share, stage by stage."""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

import aipolicy
from aipolicy import BodyTooLarge, Decision, Evaluation, Policy, RequestFacts, decode_body, evaluate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LIMIT = 4096  # settings.inspect_max_bytes of the policy below
SECRET = "AKIAZ3MPLEKEY7QX4R2T"
MODEL = b'{"model": "deepseek/deepseek-r1", "messages": []}'
BOMB = b'{"model": "gpt-4o", "pad": "' + b"0" * (LIMIT * 10) + b'"}'
CUT = "; it could not be redacted completely, so the request was not sent"


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return policy_with(tmp_path_factory.mktemp("evaluate"), "block")


def policy_with(directory: Path, oversize: str) -> Policy:
    for name in ("catalog.yaml", "providers.yaml"):
        (directory / name).write_text((FIXTURES / name).read_text())
    text = (FIXTURES / "policy.yaml").read_text()
    settings = f"settings:\n  inspect_max_bytes: {LIMIT}\n  oversize: {oversize}\n"
    (directory / "policy.yaml").write_text(text.replace("settings:\n", settings, 1))
    return aipolicy.load_policy(directory / "policy.yaml")


def request(url: str, body: bytes | None = None, content_type: str = "application/json") -> RequestFacts:
    _, host, port, path = aipolicy.split_url(url)
    headers = {"content-type": content_type} if content_type else {}
    return RequestFacts(hosts=(host,), path=path, method="POST", port=port, headers=headers, body=body)


GATEWAY = request("https://gateway.example/api/v1/chat/completions")
REDACT = request("http://redact.allowed.test/v1/chat")
BANNED = request("https://chat.deepseek.com/api")


@dataclass(frozen=True)
class Row:
    name: str
    facts: RequestFacts
    body: bytes | None = None  # None: the headers stage
    encoding: str = ""
    declared: int = 0
    action: str = ""
    rule: str = ""
    final: bool = True
    needs_body: bool = False
    oversize: int = 0
    note: str = ""  # a part of the note; "" means no note
    read: bytes | None = None  # the body in the evaluation's facts
    extra: dict[str, object] = field(default_factory=dict)


ROWS = [
    Row("headers decide", BANNED, action="block", rule="deepseek"),
    Row(
        "a known empty body decides at the headers",
        replace(GATEWAY, body=b""),
        action="allow",
        rule="default",
        read=b"",
    ),
    Row("a model rule needs the body", GATEWAY, action="block", rule="deepseek", final=False, needs_body=True),
    Row("a DLP rule needs the body", REDACT, action="redact", rule="redact-secrets", final=False, needs_body=True),
    Row("declared within the cap: wait for it", GATEWAY, declared=LIMIT, action="block", final=False, needs_body=True),
    Row(
        "declared past the cap: not waited for",
        GATEWAY,
        declared=LIMIT + 1,
        action="block",
        rule="aipolicy:body-too-large",
        oversize=LIMIT + 1,
    ),
    Row("headers final: the body is not read", BANNED, body=b"x" * (LIMIT * 2), action="block", rule="deepseek"),
    Row("the body decides", GATEWAY, body=MODEL, action="block", rule="deepseek", read=MODEL),
    Row(
        "gzip decoded", GATEWAY, body=gzip.compress(MODEL), encoding="gzip", action="block", rule="deepseek", read=MODEL
    ),
    Row(
        "raw past the cap",
        GATEWAY,
        body=MODEL + b" " * LIMIT,
        action="block",
        rule="aipolicy:body-too-large",
        oversize=len(MODEL) + LIMIT,
    ),
    Row(
        "gzip bomb: decoded past the cap",
        GATEWAY,
        body=gzip.compress(BOMB),
        encoding="gzip",
        action="block",
        rule="aipolicy:body-too-large",
        oversize=LIMIT + 1,
        note="decodes (gzip) to more than 4,096 bytes",
    ),
    Row(
        "zlib deflate bomb: past the cap, not broken",
        GATEWAY,
        body=zlib.compress(BOMB),
        encoding="deflate",
        action="block",
        rule="aipolicy:body-too-large",
        oversize=LIMIT + 1,
        note="decodes (deflate) to more than 4,096 bytes",
    ),
    Row(
        "undecodable as declared: the bytes as sent are inspected",
        GATEWAY,
        body=MODEL,
        encoding="gzip",
        action="block",
        rule="deepseek",
        note="could not be decoded (broken compressed body",
        read=MODEL,
    ),
    Row(
        "unknown encoding: the bytes as sent are inspected",
        GATEWAY,
        body=MODEL,
        encoding="compress",
        action="block",
        rule="deepseek",
        note="unsupported content-encoding 'compress'",
        read=MODEL,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_stages(policy: Policy, row: Row) -> None:
    result = evaluate(policy, row.facts, row.body, content_encoding=row.encoding, declared_size=row.declared)
    decision = result.decision
    assert (decision.action, decision.final, result.needs_body, result.oversize) == (
        row.action,
        row.final,
        row.needs_body,
        row.oversize,
    )
    if row.rule:
        assert decision.rule == row.rule
    assert (row.note in result.note) if row.note else result.note == ""
    assert result.facts.body == row.read
    assert result.redacted is None


def test_oversize_follows_the_policy(tmp_path: Path) -> None:
    lenient = policy_with(tmp_path, "monitor")
    result = evaluate(lenient, GATEWAY, gzip.compress(BOMB), content_encoding="gzip")
    assert (result.decision.action, result.decision.rule, result.oversize) == (
        "monitor",
        "aipolicy:body-too-large",
        LIMIT + 1,
    )


def chat(text: str) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": text}]}).encode()


@pytest.mark.parametrize("encoding", ["", "gzip"])
def test_redact_returns_the_decoded_body_redacted(policy: Policy, encoding: str) -> None:
    sent = chat(f"deploy with {SECRET}")
    raw = gzip.compress(sent) if encoding else sent
    result = evaluate(policy, REDACT, raw, content_encoding=encoding)
    assert (result.decision.action, result.decision.rule, result.decision.dlp) == (
        "redact",
        "redact-secrets",
        {"secret.aws-access-key": 1},
    )
    assert result.facts.body == sent
    assert result.redacted is not None
    assert json.loads(result.redacted)["messages"][0]["content"] == "deploy with [REDACTED:secret.aws-access-key]"


def test_redact_that_would_leave_a_match_blocks(policy: Policy) -> None:
    result = evaluate(policy, REDACT, json.dumps({SECRET: "the key is the secret"}).encode())
    decision = result.decision
    assert (decision.action, decision.rule, decision.final, result.redacted) == ("block", "redact-secrets", True, None)
    assert decision.reason.endswith(CUT) and decision.dlp == {"secret.aws-access-key": 1}


def test_a_clean_body_under_a_redact_rule_is_allowed(policy: Policy) -> None:
    result = evaluate(policy, REDACT, chat("what is an access key?"))
    assert (result.decision.action, result.redacted) == ("allow", None)


def test_a_redact_decision_without_a_body_to_redact_blocks(policy: Policy) -> None:
    # decide() only says redact with findings in a body; one that says so anyway gets nothing sent
    rule = Decision("redact", "redact-secrets", "has sensitive data removed", host="redact.allowed.test")
    result = evaluate(policy, REDACT, decide=lambda _policy, _facts: rule)
    assert (result.decision.action, result.decision.reason) == ("block", "has sensitive data removed" + CUT)


class Counting:
    """A decide() that records the bodies it was asked about."""

    def __init__(self) -> None:
        self.bodies: list[bytes | None] = []

    def __call__(self, policy: Policy, facts: RequestFacts) -> Decision:
        self.bodies.append(facts.body)
        return aipolicy.decide(policy, facts)


def test_the_injected_decide_makes_every_decision(policy: Policy) -> None:
    counting = Counting()
    headers = evaluate(policy, GATEWAY, decide=counting)
    with_body = evaluate(policy, GATEWAY, MODEL, decide=counting)
    assert counting.bodies == [None, None, MODEL]
    assert headers.needs_body and with_body.decision.rule == "deepseek"


def test_a_provisional_decision_is_not_made_again(policy: Policy) -> None:
    counting = Counting()
    headers = evaluate(policy, GATEWAY, decide=counting)
    result = evaluate(policy, GATEWAY, MODEL, decide=counting, provisional=headers.decision)
    assert counting.bodies == [None, MODEL] and result.decision.rule == "deepseek"


def test_an_injected_decision_is_what_is_returned(policy: Policy) -> None:
    verdict = Decision("monitor", "swapped", "a test's own decision")
    result = evaluate(policy, GATEWAY, MODEL, decide=lambda _policy, _facts: verdict)
    assert result == Evaluation(verdict, replace(GATEWAY, body=None))


def test_decode_body_raises_body_too_large() -> None:
    with pytest.raises(BodyTooLarge, match="decoded body larger than 4096 bytes") as raised:
        decode_body(gzip.compress(BOMB), "gzip", LIMIT)
    assert (raised.value.limit, raised.value.size) == (LIMIT, None)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, aipolicy.AipolicyError)


def test_a_broken_body_is_not_too_large() -> None:
    with pytest.raises(ValueError, match="broken compressed body") as raised:
        decode_body(b"not gzip", "gzip", LIMIT)
    assert not isinstance(raised.value, BodyTooLarge)
