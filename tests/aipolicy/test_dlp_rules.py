"""DLP in the policy: the `dlp` key, its errors, and decisions that need the body's findings."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from aipolicy import PolicyError, RequestFacts, decide, load_policy

FIXTURE_CATALOG = Path(__file__).resolve().parents[1] / "fixtures" / "catalog.yaml"
SECRET = "AKIAZ3MPLEKEY7QX4R2T"


def write_policy(directory: Path, rules: str) -> Path:
    path = directory / "policy.yaml"
    path.write_text(f"version: 1\ncatalog: {FIXTURE_CATALOG}\nrules:\n" + textwrap.indent(textwrap.dedent(rules), "  "))
    return path


RULES = """
- id: no-secrets
  action: block
  match: {hosts: [gateway.example]}
  dlp: {detectors: [secret]}
- id: redact-pii
  action: redact
  match: {apps: [chatgpt]}
  dlp: {detectors: [pii], keywords: {projects: [Bluebird, Nightjar]}, patterns: {ticket: "TCK-[0-9]{6}"}}
- id: watch-markings
  action: monitor
  match: {urls: [files.example/upload]}
  dlp: {detectors: [marking]}
- id: gateway-monitor
  action: monitor
  match: {hosts: [gateway.example]}
"""


@pytest.fixture
def policy(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_policy(write_policy(tmp_path, RULES))


def ask(policy, host: str, body: object | None, path: str | None = "/v1/chat/completions"):  # type: ignore[no-untyped-def]
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    return decide(policy, RequestFacts(hosts=(host,), path=path, method="POST", headers=headers, body=data))


def chat(text: str) -> dict[str, object]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}


def test_block_on_a_secret_and_fall_through_without_one(policy) -> None:  # type: ignore[no-untyped-def]
    blocked = ask(policy, "gateway.example", chat(f"deploy with {SECRET}"))
    assert (blocked.action, blocked.rule, blocked.dlp) == ("block", "no-secrets", {"secret.aws-access-key": 1})
    assert "found: secret.aws-access-key (1)" in blocked.reason and SECRET not in blocked.reason
    clean = ask(policy, "gateway.example", chat("what is a secret key?"))
    assert (clean.action, clean.rule, clean.dlp) == ("monitor", "gateway-monitor", None)


def test_the_body_is_needed_before_deciding(policy) -> None:  # type: ignore[no-untyped-def]
    assert ask(policy, "gateway.example", None, path=None).final is False  # connection level: decrypt
    assert ask(policy, "gateway.example", None).final is False  # headers only: read the body


def test_redact_counts_every_detector(policy) -> None:  # type: ignore[no-untyped-def]
    decision = ask(policy, "chatgpt.com", chat("SSN 123-45-6789, project Bluebird, ticket TCK-123456"))
    assert decision.action == "redact"
    assert decision.dlp == {"pii.us-ssn": 1, "custom.projects": 1, "custom.ticket": 1}


def test_path_and_dlp_together(policy) -> None:  # type: ignore[no-untyped-def]
    body = {"text": "TOP SECRET//NOFORN design notes"}
    assert ask(policy, "files.example", body, path="/upload/a").rule == "watch-markings"
    assert ask(policy, "files.example", body, path="/download/a").rule == "default"


def test_the_prompt_is_not_logged(policy) -> None:  # type: ignore[no-untyped-def]
    decision = ask(policy, "gateway.example", chat(f"key {SECRET}"))
    assert SECRET not in json.dumps(decision.as_dict())


def test_dlp_errors_are_reported_where_they_are(tmp_path: Path) -> None:
    path = write_policy(
        tmp_path,
        """
        - id: a
          action: block
          match: {hosts: [a.example]}
          dlp: {detectors: [secrets, pii.ssn], patterns: {bad: "(a+)+"}}
        - id: b
          action: allow
          match: {hosts: [b.example]}
          dlp: {detectors: [secret]}
        - id: c
          action: block
          match: {hosts: [c.example]}
          dlp: {}
        """,
    )
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    codes = [(p.line, p.code) for p in raised.value.problems if p.severity == "error"]
    assert codes == [
        (8, "unknown-detector"),
        (8, "unknown-detector"),
        (8, "bad-pattern"),
        (12, "misplaced-key"),
        (16, "empty-dlp"),
    ]
    messages = [p.message for p in raised.value.problems]
    assert any("rule 'b'.dlp goes with action block, redact, monitor, not allow" in m for m in messages)
