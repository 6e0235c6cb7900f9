"""`aipolicy exception add|list|remove`: edits that keep the file, refuse bad input, and list what runs out."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from aipolicy.cli import main
from click.testing import CliRunner, Result

FIXTURE_CATALOG = Path(__file__).resolve().parents[1] / "fixtures" / "catalog.yaml"
SOON = (datetime.date.today() + datetime.timedelta(days=3)).isoformat()
LATER = (datetime.date.today() + datetime.timedelta(days=60)).isoformat()
POLICY = f"""\
version: 1
catalog: {FIXTURE_CATALOG}
# Research may look at DeepSeek under a ticket.
groups:
  research: [alice]
rules:
  # the ban
  - id: deepseek
    action: block
    match: {{vendors: [deepseek]}}
default: allow
"""


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("AIPOLICY_POLICY", raising=False)
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def add(policy: Path, *more: str) -> Result:
    return run("exception", "add", "--rule", "deepseek", "--policy", str(policy), *more)


def test_add_appends_and_keeps_everything_else(policy: Path) -> None:
    result = add(policy, "--group", "research", "--until", LATER, "--ticket", "SEC-1", "--reason", 'say "why"')
    assert result.exit_code == 0, result.output
    assert policy.read_text() == POLICY + (
        f'\nexceptions:\n  - rule: "deepseek"\n    groups: ["research"]\n    until: {LATER}\n'
        '    ticket: "SEC-1"\n    reason: "say \\"why\\""\n'
    )
    audit = [json.loads(line) for line in (policy.parent / "policy.yaml.audit.jsonl").read_text().splitlines()]
    assert audit[-1]["command"] == "aipolicy exception add"


def test_list_and_expiring(policy: Path) -> None:
    assert add(policy, "--user", "bob", "--until", SOON, "--ticket", "SEC-2").exit_code == 0
    assert add(policy, "--group", "research", "--until", LATER, "--ticket", "SEC-3").exit_code == 0
    listed = json.loads(run("exception", "list", "--policy", str(policy), "--json").output)
    assert [(e["id"], e["for"], e["until"]) for e in listed["exceptions"]] == [
        ("SEC-2", "users bob", SOON),
        ("SEC-3", "groups research", LATER),
    ]
    soon = json.loads(run("exception", "list", "--expiring", "7d", "--policy", str(policy), "--json").output)
    assert [e["id"] for e in soon["exceptions"]] == ["SEC-2"]
    table = run("exception", "list", "--policy", str(policy))
    assert table.exit_code == 0 and "SEC-3" in table.output and "ends in" in table.output


def test_remove_leaves_the_rest(policy: Path) -> None:
    add(policy, "--user", "bob", "--until", SOON, "--ticket", "SEC-2")
    before = policy.read_text()
    add(policy, "--user", "carol", "--until", LATER, "--ticket", "SEC-4")
    assert run("exception", "remove", "SEC-4", "--policy", str(policy)).exit_code == 0
    assert policy.read_text() == before
    assert run("exception", "remove", "SEC-2", "--policy", str(policy)).exit_code == 0
    assert policy.read_text().endswith("default: allow\n\nexceptions: []\n")


def test_dry_run_prints_a_diff_and_writes_nothing(policy: Path) -> None:
    result = add(policy, "--user", "bob", "--until", LATER, "--ticket", "SEC-5", "--dry-run")
    assert result.exit_code == 0
    assert '+  - rule: "deepseek"' in result.output
    assert policy.read_text() == POLICY


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--until", LATER, "--ticket", "T"], "name who the exception is for", 2),
        (["--user", "bob", "--until", "2020-01-01", "--ticket", "T"], "is in the past", 2),
        (["--user", "bob", "--until", "tomorrow", "--ticket", "T"], "'tomorrow' is not a date: use YYYY-MM-DD", 2),
    ],
)
def test_bad_input_is_refused_without_a_traceback(policy: Path, args: list[str], message: str, code: int) -> None:
    result = add(policy, *args)
    assert result.exit_code == code and message in result.output, result.output
    assert "Traceback" not in result.output
    assert policy.read_text() == POLICY


def test_unknown_rule_and_duplicate_id_are_refused(policy: Path) -> None:
    unknown = run("exception", "add", "--rule", "nope", "--user", "bob", "--until", LATER, "--ticket", "T",
                  "--policy", str(policy))  # fmt: skip
    assert unknown.exit_code == 1 and "no rule 'nope' in the policy" in unknown.output
    assert add(policy, "--user", "bob", "--until", LATER, "--ticket", "T-1").exit_code == 0
    again = add(policy, "--user", "eve", "--until", LATER, "--ticket", "T-1")
    assert again.exit_code == 1 and "already exists" in again.output
    missing = run("exception", "remove", "T-9", "--policy", str(policy))
    assert missing.exit_code == 1 and "no exception 'T-9'" in missing.output
