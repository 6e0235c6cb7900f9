"""Every option that takes a size, a duration, a time or a date reads it with the one grammar
(docs/grammar.md): the same text means the same thing everywhere, and bad text gets the same
clear message, exit status 2 and no traceback."""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path

import pytest
from aipolicy.cli import main
from click.testing import CliRunner, Result

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LOGS = str(FIXTURES / "logs" / "*" / "events.jsonl*")
POLICY = FIXTURES / "policy.yaml"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIPOLICY_POLICY", raising=False)
    monkeypatch.delenv("AIPOLICY_LOG", raising=False)


@pytest.fixture
def no_exec(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record instead of replacing this process with mitmdump."""
    calls: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda program, args: calls.append([program, *args]))
    return calls


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def refused(result: Result, message: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert message in result.output and "Traceback" not in result.output


# --- times: every command that reads events ----------------------------------------------------

READERS = [
    ("violations", "summary", "--log", LOGS),
    ("violations", "export", "--json", "--log", LOGS),
    ("violations", "tail", "--log", LOGS),
    ("report", "--html", "-", "--log", LOGS),
    ("log", "verify", "--log", LOGS),  # no --since: listed to show it takes --log the same way
    ("policy", "replay", "--policy", str(POLICY), "--log", LOGS),
]
TIMED = [command for command in READERS if command[0] != "log"]


@pytest.mark.parametrize("command", TIMED, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize(("since", "until"), [("90m", "1.5h"), ("1h30m", "5400s"), ("1d12h", "36h")])
def test_since_and_until_read_durations_alike(command: tuple[str, ...], since: str, until: str) -> None:
    """Both measure from one 'now', so equal durations give equal times, which --since refuses."""
    result = run(*command, "--since", since, "--until", until)
    refused(result, "must be before --until")
    [(first, second)] = re.findall(r"--since \((\S+)\) must be before --until \((\S+)\)", result.output)
    assert first == second


@pytest.mark.parametrize("command", TIMED, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("since", ["1.5h", "1h30m", "2026-11-01", "2026-11-01T10:00+01:00", "now"])
def test_every_reader_takes_every_form_of_time(command: tuple[str, ...], since: str) -> None:
    result = run(*command, "--since", since)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", TIMED, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("since", ["١٢d", "7", "nan", "-7d", "2026-13-01", "1e3s"])
def test_every_reader_refuses_a_bad_time_alike(command: tuple[str, ...], since: str) -> None:
    refused(run(*command, "--since", since), f"'{since}' is not a time: use a date or time")


# --- durations ----------------------------------------------------------------------------------


def test_exception_list_expiring_reads_durations(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)).date().isoformat()
    policy.write_text(
        f"version: 1\ncatalog: {FIXTURES / 'catalog.yaml'}\nrules:\n  - {{id: r, action: block, match: {{hosts: [x.example]}}}}\n"
        f"exceptions:\n  - {{rule: r, users: [a], until: {until}, ticket: T-1}}\n"
    )

    def expiring(window: str) -> list[str]:
        result = run("exception", "list", "--expiring", window, "--policy", str(policy), "--json")
        assert result.exit_code == 0, result.output
        return [item["id"] for item in json.loads(result.output)["exceptions"]]

    assert expiring("4d") == expiring("3.5d") == expiring("3d12h") == expiring("1w") == ["T-1"]
    assert expiring("1h") == expiring("0.5d") == []
    refused(run("exception", "list", "--expiring", "nan", "--policy", str(policy)), "'nan' is not a duration")
    refused(run("exception", "list", "--expiring", "0", "--policy", str(policy)), "must be more than 0 seconds")


def test_sign_valid_for_reads_durations(tmp_path: Path) -> None:
    assert run("keys", "generate", "--out", str(tmp_path)).exit_code == 0
    key = str(tmp_path / "aipolicy-signing.key")
    for valid_for in ("1h30m", "1.5h", "5400"):
        out = tmp_path / f"{valid_for}.json"
        result = run(
            "policy", "sign", "--policy", str(POLICY), "--key", key, "--out", str(out), "--valid-for", valid_for
        )
        assert result.exit_code == 0, result.output
        manifest = json.loads(out.read_text())["manifest"]
        signed, expires = (
            datetime.datetime.fromisoformat(manifest[k].replace("Z", "+00:00")) for k in ("signed_at", "expires")
        )
        assert expires - signed == datetime.timedelta(minutes=90)
    result = run("policy", "sign", "--policy", str(POLICY), "--key", key, "--out", "-", "--valid-for", "١٢d")
    refused(result, "'١٢d' is not a duration", code=1)


def test_tail_timeout_reads_durations() -> None:
    result = run("violations", "tail", "-f", "--timeout", "0.2s", "--log", LOGS, "-n", "1")
    assert result.exit_code == 0, result.output
    # NaN used to pass the range check and follow for ever.
    for value in ("nan", "inf", "-1", "0"):
        refused(run("violations", "tail", "-f", "--timeout", value, "--log", LOGS), "Invalid value for '--timeout'")


def test_proxy_rotation_options_read_the_grammar(no_exec: list[list[str]], tmp_path: Path) -> None:
    result = run("proxy", "--log", str(tmp_path / "e.jsonl"), "--log-max-size", "1.5GB", "--log-max-age", "1h30m")
    assert result.exit_code == 0, result.output
    [command] = no_exec
    assert "aipolicy_log_max_size=1.5GB" in command and "aipolicy_log_max_age=1h30m" in command


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--log-max-size", "١٢M", "'١٢M' is not a size (examples: 0 for no limit, 1048576, 100M, 1G)"),
        ("--log-max-size", "nan", "'nan' is not a size"),
        ("--log-max-size", "-1M", "a size cannot be negative"),
        ("--log-max-size", "2000TB", "a size must be at most 1000TB"),
        ("--log-max-age", "inf", "'inf' is not a duration (examples: 0 for no limit, 3600, 30m, 24h, 7d)"),
        ("--log-max-age", "1h30", "'1h30' is not a duration"),
    ],
)
def test_proxy_rotation_options_refuse_hostile_values(
    no_exec: list[list[str]], option: str, value: str, message: str
) -> None:
    refused(run("proxy", option, value), message)
    assert no_exec == []


# --- sizes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["verify-bundle", "sync"])
def test_max_bytes_reads_sizes_as_the_policy_does(command: str, tmp_path: Path) -> None:
    """K is 1000, as in a policy's quota bytes and --log-max-size; KiB is 1024."""
    args = ["policy", command, str(tmp_path / "missing.json"), "--pubkey", str(tmp_path / "k.pub")]
    if command == "sync":
        args += ["--into", str(tmp_path / "into")]
    refused(run(*args, "--max-bytes", "1KB"), "'1KB' is 1,000 bytes, less than the smallest allowed (1,024)")
    refused(run(*args, "--max-bytes", "ten"), "'ten' is not a size")
    refused(run(*args, "--max-bytes", "1KiB"), "cannot read", code=1)  # the option is good: the file is missing
    refused(run(*args, "--max-bytes", "1.5MB"), "cannot read", code=1)


# --- dates --------------------------------------------------------------------------------------


def test_date_options_read_dates_alike(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.read_text().replace("catalog.yaml", str(FIXTURES / "catalog.yaml")))
    edits = [
        ("policy", "block", "x.example", "--expires"),
        ("exception", "add", "--rule", "deepseek", "--user", "a", "--ticket", "T", "--until"),
        ("rule", "add", "r-new", "--action", "block", "--match", "y.example", "--review"),  # may be past: a warning
    ]
    for edit in edits:
        for date in ("2099-1-5", "2099-01-05", "2099-01-05T10:00Z"):
            result = run(*edit, date, "--dry-run", "--policy", str(policy))
            assert result.exit_code == 0, result.output
            assert "2099-01-05" in result.output
        refused(run(*edit, "١٢", "--dry-run", "--policy", str(policy)), "'١٢' is not a date: use YYYY-MM-DD")
        refused(run(*edit, "2099-02-30", "--dry-run", "--policy", str(policy)), "day is out of range for month")
    for edit in edits[:2]:
        refused(run(*edit, "2020-01-01", "--dry-run", "--policy", str(policy)), "2020-01-01 is in the past")
