"""``aipolicy log verify``: exit codes, the first problem's place, --json, and --log as the other log commands take it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from aipolicy.cli import main
from click.testing import CliRunner

from tests.aipolicy.test_chain import read_lines, write_lines, write_log


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return write_log(tmp_path / "events.jsonl", 20, max_bytes=1400)


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["log", "verify", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_intact(files: list[Path]) -> None:
    code, out, _ = run("--log", f"{files[-1]}*")
    assert code == 0
    assert f"{files[-1]}: intact — 20 lines in {len(files)} files (chain numbers 0–19)" in out
    assert "head " in out


def test_tampered_names_the_first_problem(files: list[Path]) -> None:
    lines = read_lines(files[1])
    lines[2] = lines[2].replace(b'"action":"block"', b'"action":"allow"')
    write_lines(files[1], lines)
    lines = read_lines(files[-1])
    del lines[1]  # a second, later problem is not the one reported
    write_lines(files[-1], lines)
    code, out, _ = run("--log", f"{files[-1]}*")
    assert code == 3
    assert f"{files[-1]}: tampered" in out
    assert f"{files[1]}:3: edited: the line was changed after it was written ({files[1]}:4 recorded" in out
    assert "head" not in out


def test_torn_newest_line_has_its_own_exit_code(files: list[Path]) -> None:
    lines = read_lines(files[-1])
    write_lines(files[-1], [*lines[:-1], lines[-1][:30]])
    code, out, _ = run("--log", f"{files[-1]}*")
    assert code == 4
    assert f"{files[-1]}:{len(lines)}: cut short (30 bytes; the newest line)" in out


def test_json(files: list[Path]) -> None:
    files[0].unlink()
    code, out, _ = run("--log", f"{files[-1]}*", "--json")
    assert code == 3
    document = json.loads(out)
    assert document["status"] == "tampered"
    [log] = document["logs"]
    assert log["problem"]["kind"] == "deleted"
    assert (log["problem"]["file"], log["problem"]["line"]) == (str(files[1]), 1)
    code, out, _ = run("--log", f"{files[-1]}*", "--json", "--allow-partial-start")
    assert code == 0
    assert json.loads(out)["logs"][0]["partial_start"] is True


def test_log_from_the_environment_and_repeated(tmp_path: Path, files: list[Path]) -> None:
    other = write_log(tmp_path / "other.jsonl", 3)
    code, out, _ = run(env={"AIPOLICY_LOG": f"{files[-1]}*:{other[-1]}"})
    assert code == 0
    assert out.count(": intact") == 2
    code, out, _ = run("--log", str(other[-1]), "--log", f"{files[-1]}*", "--json")
    assert code == 0 and len(json.loads(out)["logs"]) == 2


def test_worst_status_wins(tmp_path: Path, files: list[Path]) -> None:
    other = write_log(tmp_path / "other.jsonl", 3)
    other[-1].write_bytes(other[-1].read_bytes()[:-10])
    code, out, _ = run("--log", f"{files[-1]}*", "--log", str(other[-1]))
    assert code == 4
    assert ": intact" in out and ": torn" in out


def test_missing_and_unreadable_logs(tmp_path: Path) -> None:
    code, _, err = run("--log", str(tmp_path / "nothing.jsonl"))
    assert code == 1
    assert f"cannot read event log '{tmp_path / 'nothing.jsonl'}': No such file or directory" in err
    code, _, err = run("--log", str(tmp_path / "none-*.jsonl"))
    assert code == 1 and "no event log matches" in err
    code, _, err = run(env={"AIPOLICY_LOG": ""})
    assert code == 1 and "(give --log FILE or set AIPOLICY_LOG)" in err
    assert "Traceback" not in err


def test_hostile_file_names_are_escaped(tmp_path: Path) -> None:
    write_log(tmp_path / "[red]x[blink].jsonl", 2)
    code, out, _ = run("--log", str(tmp_path / "*.jsonl"))
    assert code == 0 and "[red]x[blink].jsonl: intact" in out


# --- aipolicy proxy --log-max-size / --log-max-age ---------------------------------------------


@pytest.fixture
def no_exec(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record instead of replacing this process with mitmdump."""
    calls: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda program, args: calls.append([program, *args]))
    return calls


def test_proxy_passes_the_rotation_options(no_exec: list[list[str]], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["proxy", "--log", str(tmp_path / "e.jsonl"), "--log-max-size", "100M", "--log-max-age", "1d"]
    )
    assert result.exit_code == 0, result.output
    [command] = no_exec
    assert "aipolicy_log_max_size=100M" in command and "aipolicy_log_max_age=1d" in command


def test_proxy_without_rotation_sets_no_rotation_option(no_exec: list[list[str]], tmp_path: Path) -> None:
    assert CliRunner().invoke(main, ["proxy", "--log", str(tmp_path / "e.jsonl")]).exit_code == 0
    assert not [part for part in no_exec[0] if "aipolicy_log_max" in part]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--log-max-size", "ten", "'ten' is not a size"), ("--log-max-age", "1y", "'1y' is not a duration")],
)
def test_proxy_rejects_a_bad_rotation_option(no_exec: list[list[str]], option: str, value: str, message: str) -> None:
    result = CliRunner().invoke(main, ["proxy", option, value])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert no_exec == []


def test_head_option(files: list[Path]) -> None:
    code, out, _ = run("--log", f"{files[-1]}*", "--json")
    head = json.loads(out)["logs"][0]["head"]
    assert head.startswith("19:")
    assert run("--log", f"{files[-1]}*", "--head", head)[0] == 0
    write_lines(files[-1], read_lines(files[-1])[:-1])
    code, out, _ = run("--log", f"{files[-1]}*", "--head", head)
    assert code == 3 and "removed from the end" in out
    code, _, err = run("--log", f"{files[-1]}*", "--head", "nonsense")
    assert code == 2 and "'nonsense' is not a head" in err
