"""`aipolicy proxy --state-dir`: where the processes on one port share the warn and quota state."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import aipolicy.cli._proxy
import pytest

from .test_cli import assert_clean_failure, run


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The mitmdump commands that would run: one for a single process, one per worker."""
    calls: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda program, args: calls.append([program, *args]))

    def workers(commands: list[list[str]], relay_stdout: bool = False) -> int:
        calls.extend(commands)
        return 0

    monkeypatch.setattr(aipolicy.cli._proxy, "run_workers", workers)
    return calls


def state_options(command: list[str]) -> list[str]:
    return [part for part in command if part.startswith("aipolicy_state_dir=")]


def test_workers_share_a_state_dir_in_the_confdir_by_default(started: list[list[str]], tmp_path: Path) -> None:
    result = run("proxy", "--workers", "3", "--confdir", str(tmp_path / "conf"), "--log", str(tmp_path / "e.jsonl"))
    assert result.exit_code == 0, result.output
    expected = f"aipolicy_state_dir={tmp_path / 'conf' / 'aipolicy-state'}"
    assert [state_options(command) for command in started] == [[expected]] * 3
    secret = tmp_path / "conf" / "aipolicy-state" / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600  # made once, before the workers start


def test_a_single_process_keeps_its_state_in_memory_unless_told(started: list[list[str]], tmp_path: Path) -> None:
    assert run("proxy", "--log", str(tmp_path / "e.jsonl")).exit_code == 0
    assert state_options(started[0]) == []
    assert run("proxy", "--log", str(tmp_path / "e.jsonl"), "--state-dir", str(tmp_path / "state")).exit_code == 0
    assert state_options(started[1]) == [f"aipolicy_state_dir={tmp_path / 'state'}"]
    assert (
        run("proxy", "--reuse-port", "--confdir", str(tmp_path / "c"), "--log", str(tmp_path / "e.jsonl")).exit_code
        == 0
    )
    assert state_options(started[2]) == [f"aipolicy_state_dir={tmp_path / 'c' / 'aipolicy-state'}"]


def test_workers_can_be_told_to_keep_state_per_process(started: list[list[str]], tmp_path: Path) -> None:
    result = run("proxy", "--workers", "2", "--state-dir", "", "--confdir", str(tmp_path), "--log", str(tmp_path / "e"))
    assert result.exit_code == 0, result.output
    assert [state_options(command) for command in started] == [[], []]


def test_a_corrupt_state_database_stops_the_start(started: list[list[str]], tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.db").write_bytes(b"not a database" * 500)
    result = run("proxy", "--workers", "2", "--state-dir", str(tmp_path / "state"), "--log", str(tmp_path / "e"))
    assert_clean_failure(result, 1)
    assert "state.db cannot be used: file is not a database" in result.output
    assert "the proxy was not started" in result.output
    assert started == []
