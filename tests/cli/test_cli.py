"""The click face: help, exit codes, JSON output and errors without tracebacks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pytest
from aipolicy.cli import main
from click.testing import CliRunner, Result

import aipolicy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE_POLICY = FIXTURES / "policy.yaml"
THREE_ERRORS = FIXTURES / "loader" / "three_errors.yaml"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIPOLICY_POLICY", raising=False)
    monkeypatch.delenv("AIPOLICY_LOG", raising=False)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=True)


def assert_clean_failure(result: Result, code: int) -> None:
    """A failure people read: the expected exit code and no traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def command_paths(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, prefix + (name,)))
        else:
            paths.append(prefix + (name,))
    return paths


COMMANDS = command_paths()


# --- help -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(("aipolicy",) + p) for p in COMMANDS])
def test_every_help_text_has_an_example(path: tuple[str, ...]) -> None:
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
    example = result.output.split("Example:", 1)[1]
    assert "aipolicy " + " ".join(path) in example


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_short_and_long_help(flag: str) -> None:
    result = run("policy", "validate", flag)
    assert result.exit_code == 0
    assert result.output.startswith("Usage: ")


def test_known_commands_exist() -> None:
    assert {("policy", "validate"), ("policy", "test"), ("proxy",)} <= set(COMMANDS)


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert aipolicy.__version__ in result.output


# --- policy validate ------------------------------------------------------------------------


def test_validate_valid_fixture() -> None:
    result = run("policy", "validate", str(FIXTURE_POLICY))
    assert result.exit_code == 0, result.output
    loaded = aipolicy.load_policy(FIXTURE_POLICY)
    assert "valid" in result.stdout
    assert loaded.hash in result.stdout


def test_validate_default_policy_without_argument() -> None:
    result = run("policy", "validate")
    assert result.exit_code == 0, result.output
    assert str(aipolicy.default_policy()) in result.stdout
    assert aipolicy.load_policy(aipolicy.default_policy()).hash in result.stdout


def test_validate_invalid_prints_every_problem_located() -> None:
    result = run("policy", "validate", str(THREE_ERRORS))
    assert_clean_failure(result, 1)
    located = [line for line in result.stderr.splitlines() if line.startswith(f"{THREE_ERRORS}:")]
    assert [line.split(":")[1:3] for line in located] == [["5", "13"], ["11", "17"], ["15", "17"]]
    assert all(": error: " in line for line in located)
    assert "3 error(s)" in result.stderr
    assert result.stdout == ""


def test_validate_json_valid() -> None:
    result = run("policy", "validate", str(FIXTURE_POLICY), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["valid"] is True
    assert data["problems"] == []
    assert data["policy"] == aipolicy.load_policy(FIXTURE_POLICY).hash


def test_validate_json_invalid() -> None:
    result = run("policy", "validate", str(THREE_ERRORS), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["valid"] is False
    assert data["errors"] == 3
    assert [(p["line"], p["column"], p["code"], p["severity"]) for p in data["problems"]] == [
        (5, 13, "bad-value", "error"),
        (11, 17, "unknown-vendor", "error"),
        (15, 17, "bad-target", "error"),
    ]
    assert all(p["file"] == str(THREE_ERRORS) and p["message"] for p in data["problems"])


def test_validate_json_reports_warnings_of_a_valid_policy(tmp_path: Path) -> None:
    path = tmp_path / "warn.yaml"
    path.write_text(
        f"version: 1\ncatalog: {FIXTURES / 'catalog.yaml'}\nrules:\n  - {{id: r, action: block, colour: red, match: {{domains: [x.example]}}}}\n",
        encoding="utf-8",
    )
    result = run("policy", "validate", str(path), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["valid"], data["warnings"], data["problems"][0]["code"]) == (True, 1, "unknown-key")


def test_validate_missing_file() -> None:
    result = run("policy", "validate", "/nonexistent/policy.yaml")
    assert_clean_failure(result, 1)
    assert "/nonexistent/policy.yaml:1:1: error: cannot read policy: No such file or directory" in result.stderr


def test_validate_reads_aipolicy_policy_from_the_environment() -> None:
    result = run("policy", "validate", "--json", env={"AIPOLICY_POLICY": str(THREE_ERRORS)})
    assert result.exit_code == 1
    assert json.loads(result.stdout)["file"] == str(THREE_ERRORS)


# --- policy test ----------------------------------------------------------------------------


def test_policy_test_json() -> None:
    result = run("policy", "test", "https://chat.deepseek.com/", "--policy", str(FIXTURE_POLICY), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["action"], data["rule"]) == ("block", "deepseek")
    assert data["reason"] == "DeepSeek is blocked by rule deepseek"
    assert data["url"] == "https://chat.deepseek.com/"
    assert data["app"] == "deepseek"


def test_policy_test_human_output() -> None:
    result = run("policy", "test", "https://api.openai.com/v1/chat", "--policy", str(FIXTURE_POLICY))
    assert result.exit_code == 0, result.output
    for expected in ("monitor", "ai-monitor", "api.openai.com", "ChatGPT"):
        assert expected in result.stdout


def test_policy_test_sni_and_host_header_count() -> None:
    by_sni = run(
        "policy",
        "test",
        "https://192.0.2.200/",
        "--sni",
        "chat.deepseek.com",
        "--policy",
        str(FIXTURE_POLICY),
        "--json",
    )
    assert (json.loads(by_sni.stdout)["action"], json.loads(by_sni.stdout)["rule"]) == ("block", "deepseek")
    by_header = run(
        "policy",
        "test",
        "http://198.51.100.7/",
        "--header",
        "Host: chat.deepseek.com",
        "--policy",
        str(FIXTURE_POLICY),
        "--json",
    )
    assert (json.loads(by_header.stdout)["action"], json.loads(by_header.stdout)["rule"]) == ("block", "deepseek")


def test_policy_test_uses_the_default_policy() -> None:
    result = run("policy", "test", "https://chat.deepseek.com/", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rule"] == "deepseek-any-capacity"


def test_policy_test_honours_aipolicy_policy() -> None:
    result = run("policy", "test", "https://chat.deepseek.com/", "--json", env={"AIPOLICY_POLICY": str(FIXTURE_POLICY)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rule"] == "deepseek"


def test_policy_option_beats_the_environment() -> None:
    result = run(
        "policy", "test", "https://chat.deepseek.com/", "--json", "--policy", str(FIXTURE_POLICY),
        env={"AIPOLICY_POLICY": "/nonexistent.yaml"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rule"] == "deepseek"


@pytest.mark.parametrize("header", ["no-colon", ":value", "  : value"])
def test_policy_test_bad_header_is_a_usage_error(header: str) -> None:
    result = run("policy", "test", "https://x.example/", "--policy", str(FIXTURE_POLICY), "--header", header)
    assert_clean_failure(result, 2)
    assert "--header" in result.stderr
    assert "is not NAME:VALUE" in result.stderr


@pytest.mark.parametrize(
    "url", ["http://x.example:abc/", "http://x.example:99999/"], ids=["not-a-number", "out-of-range"]
)
def test_policy_test_bad_port_is_a_usage_error(url: str) -> None:
    result = run("policy", "test", url, "--policy", str(FIXTURE_POLICY))
    assert_clean_failure(result, 2)
    assert "port" in result.stderr


def test_policy_test_url_without_host_is_a_usage_error() -> None:
    result = run("policy", "test", "http:///path", "--policy", str(FIXTURE_POLICY))
    assert_clean_failure(result, 2)
    assert "has no host" in result.stderr


def test_policy_test_nonexistent_policy() -> None:
    result = run("policy", "test", "https://x.example/", "--policy", "/nonexistent/p.yaml")
    assert_clean_failure(result, 1)
    assert "the policy does not load" in result.stderr
    assert "/nonexistent/p.yaml:1:1: error: cannot read policy: No such file or directory" in result.stderr


def test_policy_test_invalid_policy_lists_its_problems() -> None:
    result = run("policy", "test", "https://x.example/", "--policy", str(THREE_ERRORS))
    assert_clean_failure(result, 1)
    assert result.stderr.count(f"{THREE_ERRORS}:") == 3


def test_policy_test_body_file_is_never_printed(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"model": "deepseek-chat", "secret": "sk-do-not-print"}', encoding="utf-8")
    result = run("policy", "test", "https://api.openai.com/v1/chat/completions", "--method", "post",
                 "--body-file", str(body), "--policy", str(FIXTURE_POLICY), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sk-do-not-print" not in result.output


# --- proxy ----------------------------------------------------------------------------------


@pytest.fixture
def no_exec(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record instead of replacing this process with mitmdump."""
    calls: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda program, args: calls.append([program, *args]))
    return calls


def test_proxy_refuses_an_invalid_policy_and_starts_nothing(no_exec: list[list[str]], tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    result = run("proxy", "--policy", str(THREE_ERRORS), "--log", str(log))
    assert_clean_failure(result, 1)
    assert no_exec == []
    assert "the proxy was not started" in result.stderr
    assert result.stderr.count(f"{THREE_ERRORS}:") == 3
    assert not log.exists()


def test_proxy_refuses_a_missing_policy(no_exec: list[list[str]]) -> None:
    result = run("proxy", "--policy", "/nonexistent/policy.yaml")
    assert_clean_failure(result, 1)
    assert no_exec == []
    assert "cannot read policy" in result.stderr


def test_proxy_reads_aipolicy_policy_from_the_environment(no_exec: list[list[str]]) -> None:
    result = run("proxy", env={"AIPOLICY_POLICY": str(THREE_ERRORS)})
    assert_clean_failure(result, 1)
    assert no_exec == []


def test_proxy_rejects_a_bad_port(no_exec: list[list[str]]) -> None:
    result = run("proxy", "--policy", str(FIXTURE_POLICY), "--port", "70000")
    assert_clean_failure(result, 2)
    assert no_exec == []


CONTROLS_POLICY = f"""\
version: 1
catalog: {FIXTURES / "catalog.yaml"}
rules:
  - {{id: ro, action: read-only, match: {{hosts: [chatgpt.com]}}}}
  - {{id: confirm, action: warn, match: {{hosts: [deepseek.example]}}}}
  - {{id: budget, action: quota, match: {{hosts: [api.openai.com]}}, quota: {{requests: 5, per: 1h}}}}
"""


@pytest.mark.parametrize(
    ("args", "action", "rule", "control"),
    [
        (["https://chatgpt.com/c"], "read-only", "ro", None),
        (["https://chatgpt.com/c", "--method", "POST", "--body-file", "BODY"], "block", "ro", "read-only"),
        (["https://deepseek.example/"], "warn", "confirm", None),
        (["https://api.openai.com/v1/chat/completions", "--method", "POST"], "quota", "budget", None),
    ],
)
def test_policy_test_shows_the_controls(
    tmp_path: Path, args: list[str], action: str, rule: str, control: str | None
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(CONTROLS_POLICY)
    body = tmp_path / "body.json"
    body.write_text('{"prompt": "hello"}')
    arguments = [str(body) if a == "BODY" else a for a in args]
    result = run("policy", "test", *arguments, "--policy", str(policy), "--json")
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert (decision["action"], decision["rule"], decision["control"]) == (action, rule, control)
    table = run("policy", "test", *arguments, "--policy", str(policy))
    assert table.exit_code == 0 and f"Action        {action}" in table.output, table.output


def test_policy_test_reports_dlp_findings_from_the_body_file(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"version: 1\ncatalog: {FIXTURES / 'catalog.yaml'}\nrules:\n"
        "  - {id: no-secrets, action: block, match: {hosts: [api.openai.com]}, dlp: {detectors: [secret]}}\n"
    )
    body = tmp_path / "body.json"
    body.write_text('{"model": "gpt-4o", "messages": [{"role": "user", "content": "key AKIAZ3MPLEKEY7QX4R2T"}]}')
    args = ["policy", "test", "https://api.openai.com/v1/chat/completions", "--method", "POST", "--policy", str(policy)]
    found = json.loads(
        run(*args, "--body-file", str(body), "--header", "content-type:application/json", "--json").output
    )
    assert (found["action"], found["rule"], found["dlp"]) == ("block", "no-secrets", {"secret.aws-access-key": 1})
    body.write_text('{"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}')
    clean = json.loads(run(*args, "--body-file", str(body), "--json").output)
    assert (clean["action"], clean["dlp"]) == ("allow", None)
    empty = json.loads(run(*args, "--json").output)  # no body: as the proxy decides a request without one
    assert (empty["action"], empty["final"], empty["dlp"]) == ("allow", True, None)
