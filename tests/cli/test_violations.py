"""``aipolicy violations summary|export|tail`` on the hand-counted fixture logs.

The fixture and its numbers are described in tests/aipolicy/test_summary.py.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aipolicy.cli._selection
import aipolicy.cli._violations
import pytest
from aipolicy.cli import main
from click.testing import CliRunner, Result
from rich.console import Console

from tests.aipolicy.test_summary import (
    BY_ACTION,
    BY_GROUP,
    BY_RULE,
    BY_USER_AND_APP,
    FIRST,
    LAST,
    LOGS,
    SKIPPED,
    TOTAL,
    USERS,
)

ROOT = Path(__file__).resolve().parents[2]
ALL = "*/events.jsonl*"  # relative to LOGS, so that reported places read gw-1/events.jsonl:3


@pytest.fixture(autouse=True)
def in_the_fixture_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIPOLICY_LOG", raising=False)
    monkeypatch.delenv("AIPOLICY_POLICY", raising=False)
    monkeypatch.chdir(LOGS)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["violations", *args], env=env, catch_exceptions=True)


def run_json(*args: str) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_clean_failure(result: Result, code: int) -> None:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def table_rows(text: str) -> list[list[str]]:
    """The cells of each row of a rich table (body and footer)."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


def decision(n: int, ts: str, **fields: object) -> str:
    event: dict[str, object] = {"v": 1, "id": f"{n:032x}", "ts": ts, "event": "decision", "action": "block"}
    event.update(fields)
    return json.dumps(event, separators=(",", ":")) + "\n"


# --- summary --------------------------------------------------------------------------------


def test_summary_table() -> None:
    result = run("summary", "--log", ALL)
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert rows == [
        [rule, str(count), str(users), f"{first[:10]} {first[11:19]}", f"{last[:10]} {last[11:19]}"]
        for rule, count, users, first, last in BY_RULE
    ] + [["Total", str(TOTAL), str(USERS), "2026-10-28 09:00:00", "2026-11-05 18:00:00"]]
    # Days 10-28 … 11-05: 1 1 1 0 3 3 2 1 1, the busiest (3) a full bar.
    assert "Per day  2026-10-28 ▃▃▃·██▆▃▃ 2026-11-05  (most: 3 on a day)" in result.stdout
    assert result.stderr.strip() == SKIPPED


def test_summary_json() -> None:
    data = run_json("summary", "--log", ALL)
    assert list(data)[:5] == ["total", "since", "until", "by", "groups"]
    assert (data["total"], data["since"], data["until"], data["by"]) == (TOTAL, None, None, ["rule"])
    assert [(g["rule"], g["count"], g["users"], g["first"], g["last"]) for g in data["groups"]] == BY_RULE
    assert (data["users"], data["first"], data["last"]) == (USERS, FIRST, LAST)
    assert all(g["previous"] is None and g["change"] is None for g in data["groups"])
    assert data["skipped"]["total"] == 5
    assert {reason: value["first"] for reason, value in data["skipped"]["reasons"].items()} == {
        "not-json": ["gw-1/events.jsonl:3"],
        "not-utf8": ["gw-2/events.jsonl:5"],
        "not-object": ["gw-1/events.jsonl:7"],
        "truncated": ["gw-1/events.jsonl:8"],
        "newer-format": ["gw-1/events.jsonl:5"],
    }


@pytest.mark.parametrize(("key", "expected"), [("action", BY_ACTION), ("group", BY_GROUP)], ids=["action", "group"])
def test_summary_by_key_json(key: str, expected: dict) -> None:
    data = run_json("summary", "--log", ALL, "--by", key)
    assert data["total"] == TOTAL
    assert [(g[key], g["count"]) for g in data["groups"]] == list(expected.items())


@pytest.mark.parametrize("by", [["--by", "user", "--by", "app"], ["--by", "user,app"], ["--by", "User, APP,user"]])
def test_summary_by_user_and_app(by: list[str]) -> None:
    data = run_json("summary", "--log", ALL, *by)
    assert data["by"] == ["user", "app"]
    assert [(g["user"], g["app"], g["count"]) for g in data["groups"]] == BY_USER_AND_APP


def test_summary_by_user_and_app_table() -> None:
    result = run("summary", "--log", ALL, "--by", "user", "--by", "app")
    rows = table_rows(result.stdout)
    assert [row[:3] for row in rows] == [[u, a, str(c)] for u, a, c in BY_USER_AND_APP] + [["Total", "", "13"]]


def test_summary_absolute_window_with_change() -> None:
    # 11-01 to 11-03: E3 E4 E8 E9 (deepseek-any-capacity), E5 E10 (ai-monitor).
    # The two days before (10-30 and 10-31): E2 (ai-monitor).
    data = run_json("summary", "--log", ALL, "--since", "2026-11-01", "--until", "2026-11-03T00:00:00Z")
    assert (data["total"], data["since"], data["until"]) == (6, "2026-11-01T00:00:00.000Z", "2026-11-03T00:00:00.000Z")
    assert (data["previous_since"], data["previous"], data["change"], data["change_percent"]) == (
        "2026-10-30T00:00:00.000Z",
        1,
        5,
        500.0,
    )
    assert data["groups"] == [
        {
            "rule": "deepseek-any-capacity",
            "count": 4,
            "users": 4,
            "first": "2026-11-01T08:15:00.000Z",
            "last": "2026-11-02T00:00:00.000Z",
            "previous": 0,
            "change": 4,
            "change_percent": None,
        },
        {
            "rule": "ai-monitor",
            "count": 2,
            "users": 2,
            "first": "2026-11-02T07:00:00.000Z",
            "last": "2026-11-02T12:00:00.000Z",
            "previous": 1,
            "change": 1,
            "change_percent": 100.0,
        },
    ]
    assert data["days"] == {"2026-11-01": 3, "2026-11-02": 3}


def test_summary_change_column() -> None:
    result = run("summary", "--log", ALL, "--since", "2026-11-01", "--until", "2026-11-03")
    assert result.exit_code == 0, result.output
    assert [(row[0], row[1], row[-1]) for row in table_rows(result.stdout)] == [
        ("deepseek-any-capacity", "4", "+4 (new)"),
        ("ai-monitor", "2", "+1 (+100%)"),
        ("Total", "6", "+5 (+500%)"),
    ]


def test_summary_period_boundaries() -> None:
    # --until is exclusive: E9 at 2026-11-02T00:00:00.000Z is out; E8 at 23:59:59.999 is in.
    data = run_json("summary", "--log", ALL, "--since", "2026-11-01", "--until", "2026-11-02", "--by", "day")
    assert [(g["day"], g["count"]) for g in data["groups"]] == [("2026-11-01", 3)]  # E3 E4 E8
    assert data["previous"] == 0  # nothing on 10-31


def test_summary_since_with_an_offset() -> None:
    # 2026-11-03T10:45+01:00 is 09:45Z: E6 (09:45) is in, then E11 E12 E13.
    data = run_json("summary", "--log", ALL, "--since", "2026-11-03T10:45:00+01:00", "--until", "2026-12-01")
    assert data["total"] == 4


def test_summary_since_in_the_future_has_no_previous_period() -> None:
    data = run_json("summary", "--log", ALL, "--since", "2999-01-01")
    assert (data["total"], data["since"], data["previous"], data["change"]) == (
        0,
        "2999-01-01T00:00:00.000Z",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("filters", "total"),
    [
        (["--action", "block"], 9),
        (["--action", "BLOCK"], 9),
        (["--action", "block", "--action", "monitor"], 13),
        (["--user", "alice"], 4),
        (["--user", "10.0.0.9"], 2),
        (["--group", "eng"], 8),
        (["--group", "finance", "--group", "admins"], 7),
        (["--app", "qwen"], 3),
        (["--vendor", "openai"], 4),
        (["--rule", "prc-genai"], 3),
        (["--directive", "USN-2025-01-24-DEEPSEEK"], 6),
        (["--user", "bob", "--action", "monitor"], 2),
    ],
)
def test_summary_filters(filters: list[str], total: int) -> None:
    assert run_json("summary", "--log", ALL, *filters)["total"] == total


def test_summary_block_only_by_rule() -> None:
    data = run_json("summary", "--log", ALL, "--action", "block")
    assert [(g["rule"], g["count"]) for g in data["groups"]] == [("deepseek-any-capacity", 6), ("prc-genai", 3)]


def test_summary_csv() -> None:
    result = run("summary", "--log", ALL, "--since", "2026-11-01", "--until", "2026-11-03", "--csv")
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["rule", "count", "users", "first", "last", "previous", "change", "change_percent"],
        ["deepseek-any-capacity", "4", "4", "2026-11-01T08:15:00.000Z", "2026-11-02T00:00:00.000Z", "0", "4", ""],
        ["ai-monitor", "2", "2", "2026-11-02T07:00:00.000Z", "2026-11-02T12:00:00.000Z", "1", "1", "100.0"],
    ]
    assert result.stderr.strip() == SKIPPED


def test_summary_csv_by_group_without_period() -> None:
    result = run("summary", "--log", ALL, "--by", "group", "--csv")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["group", "count", "users", "first", "last", "previous", "change", "change_percent"]
    assert [(row[0], row[1], row[5]) for row in rows[1:]] == [
        ("eng", "8", ""),
        ("admins", "4", ""),
        ("finance", "3", ""),
        ("", "2", ""),
    ]


@pytest.mark.parametrize(("threshold", "code"), [("13", 3), ("1", 3), ("14", 0)])
def test_summary_fail_on(threshold: str, code: int) -> None:
    result = run("summary", "--log", ALL, "--fail-on", threshold)
    assert result.exit_code == code, result.output
    assert ("at or above --fail-on" in result.stderr) == (code == 3)


def test_summary_fail_on_with_json_still_prints_the_document() -> None:
    result = run("summary", "--log", ALL, "--action", "monitor", "--fail-on", "4", "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["total"] == 4
    assert "4 matching event(s): at or above --fail-on 4" in result.stderr


def write_relative(path: Path, now: datetime.datetime) -> None:
    # No age sits near a boundary (now - 30m, 1h, 24h, 48h, 7d, 14d, 21d, 28d).
    ago = [datetime.timedelta(hours=hours) for hours in (2, 50, 72)]
    ago += [datetime.timedelta(days=10), datetime.timedelta(days=20)]
    path.write_text(
        "".join(
            decision(n, (now - delta).isoformat(timespec="milliseconds")[:23] + "Z") for n, delta in enumerate(ago)
        ),
        encoding="utf-8",
    )


@pytest.mark.parametrize(
    ("period", "total", "previous"),
    [
        (["--since", "7d"], 3, 1),  # 2h 50h 72h; the 7 days before: 10d
        (["--since", "24h"], 1, 0),  # 2h; the day before: none (50h is older)
        (["--since", "2w"], 4, 1),  # 2h 50h 72h 10d; the 2 weeks before: 20d
        (["--since", "30m"], 0, 0),
        (["--until", "7d"], 2, None),  # 10d, 20d
        (["--since", "2w", "--until", "1w"], 1, 1),  # 10d; the week before: 20d
    ],
)
def test_summary_relative_times(tmp_path: Path, period: list[str], total: int, previous: int | None) -> None:
    log = tmp_path / "events.jsonl"
    write_relative(log, datetime.datetime.now(datetime.UTC))
    data = run_json("summary", "--log", str(log), *period)
    assert (data["total"], data["previous"]) == (total, previous)


def test_summary_reads_aipolicy_log(tmp_path: Path) -> None:
    # Like PATH: several files separated by os.pathsep. gw-1's current file: E4 E5 E6; gw-2's: E9 … E13.
    paths = os.pathsep.join(str(LOGS / proxy / "events.jsonl") for proxy in ("gw-1", "gw-2"))
    result = run("summary", "--json", env={"AIPOLICY_LOG": paths})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total"] == 8


def test_summary_reads_the_default_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(LOGS / "gw-2" / "events.jsonl", tmp_path / "aipolicy-events.jsonl")
    monkeypatch.chdir(tmp_path)
    assert run_json("summary")["total"] == 5  # E9 … E13


def test_summary_missing_default_log_says_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("summary")
    assert_clean_failure(result, 1)
    assert (
        "Error: cannot read event log 'aipolicy-events.jsonl': No such file or directory "
        "(give --log FILE or set AIPOLICY_LOG)" in result.stderr
    )


def test_summary_missing_log() -> None:
    result = run("summary", "--log", "/nonexistent/events.jsonl")
    assert_clean_failure(result, 1)
    assert "Error: cannot read event log '/nonexistent/events.jsonl': No such file or directory\n" in result.stderr


def test_summary_glob_matching_nothing() -> None:
    result = run("summary", "--log", "gw-9/*.jsonl")
    assert_clean_failure(result, 1)
    assert "Error: no event log matches 'gw-9/*.jsonl'" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last week"], "Invalid value for '--since': 'last week' is not a time"),
        (["--until", "7x"], "Invalid value for '--until': '7x' is not a time"),
        (["--since", "2026-11-03", "--until", "2026-11-01"], "must be before --until"),
        (["--by", "colour"], "'colour' is not a key to group by (valid: user, group, host"),
        (["--action", "deny"], "Invalid value for '--action'"),
        (["--json", "--csv"], "--json and --csv cannot be used together"),
        (["--fail-on", "0"], "Invalid value for '--fail-on'"),
    ],
)
def test_summary_usage_errors(args: list[str], message: str) -> None:
    result = run("summary", "--log", ALL, *args)
    assert_clean_failure(result, 2)
    assert message in result.stderr


def test_summary_shows_a_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, width=100)
    monkeypatch.setattr(aipolicy.cli._selection, "stderr", terminal)
    monkeypatch.setattr(aipolicy.cli._selection, "PROGRESS_MIN_BYTES", 0)
    assert run_json("summary", "--log", ALL)["total"] == TOTAL
    assert "reading event logs" in terminal.file.getvalue()  # type: ignore[attr-defined]


# --- hostile fields ---------------------------------------------------------------------------

HOSTILE_USER = "[bold red]mallory[/]\x1b]0;pwned\x07\u202e"


@pytest.fixture
def hostile_log(tmp_path: Path) -> Path:
    log = tmp_path / "events.jsonl"
    log.write_text(
        decision(1, "2026-11-01T00:00:00.000Z", user=HOSTILE_USER, client_ip="10.0.0.5", rule="r[/]",
                 host="evil.example", path="/x\x1b[2J")
        + decision(2, "2026-11-01T00:00:01.000Z", user=None, client_ip="10.0.0.6\\\\\\", rule="plain",
                   host="ok.example", path="/")
        + decision(3, "2026-11-01T00:00:02.000Z", user="=HYPERLINK(\"http://x.example\",\"y\")", path="-2+3",
                   reason="@SUM(A1:A9)", host="+cmd|' /C calc'!A0", rule="plain", groups=["eng", "=evil"],
                   client_ip="\t10.0.0.7"),
        encoding="utf-8",
    )  # fmt: skip
    return log


def test_hostile_fields_cannot_style_the_tail(hostile_log: Path) -> None:
    result = run("tail", "--log", str(hostile_log))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert (
        lines[0] == "2026-11-01 00:00:00.000Z block   r[/]  [bold red]mallory[/]]0;pwned (10.0.0.5)  evil.example/x[2J"
    )
    # An odd run of backslashes before a closing tag: it still closes (rich shows two of the three).
    assert lines[1] == "2026-11-01 00:00:01.000Z block   plain  10.0.0.6\\\\  ok.example/"
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f\u202e]", result.stdout)


def test_hostile_fields_on_a_colour_terminal(hostile_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=200, highlight=False)
    monkeypatch.setattr(aipolicy.cli._violations, "stdout", terminal)
    assert run("tail", "--log", str(hostile_log)).exit_code == 0
    output = terminal.file.getvalue()  # type: ignore[attr-defined]
    assert "[bold red]mallory[/]" in output
    assert not re.search(r"\x1b(?!\[[0-9;]*m)", output)  # only colour changes, nothing else
    assert "\x07" not in output


def test_hostile_fields_in_the_summary_table(hostile_log: Path) -> None:
    result = run("summary", "--log", str(hostile_log), "--by", "user")
    assert result.exit_code == 0, result.output
    assert [row[0] for row in table_rows(result.stdout)] == [
        "10.0.0.6\\\\\\\\",  # rich's escaping shows an odd run of trailing backslashes one longer
        '=HYPERLINK("http://x.example","y")',
        "[bold red]mallory[/]]0;pwned",
        "Total",
    ]
    assert "\x1b" not in result.stdout


def test_summary_csv_guards_against_formulas(hostile_log: Path) -> None:
    result = run("summary", "--log", str(hostile_log), "--by", "user,host", "--csv")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[2][:2] == ['\'=HYPERLINK("http://x.example","y")', "'+cmd|' /C calc'!A0"]


# --- export ---------------------------------------------------------------------------------


def fixture_events() -> dict[int, dict]:
    """Every decision event of the fixture as written, by number (E1 … E13)."""
    import gzip

    events = {}
    for path in sorted(LOGS.glob("*/events.jsonl*")):
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        for line in data.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == "decision" and event.get("v") == 1:
                events[int(event["id"], 16)] = event
    return events


@pytest.mark.parametrize("flag", ["--json", "--nl"])
def test_export_json_lines(flag: str) -> None:
    result = run("export", "--log", ALL, "--action", "monitor", flag)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    events = fixture_events()
    assert [json.loads(line) for line in lines] == [events[n] for n in (2, 5, 10, 13)]  # in file order
    assert lines[0] == json.dumps(events[2], separators=(",", ":"))
    assert result.stderr.strip() == SKIPPED


def test_export_json_every_event_with_a_period() -> None:
    result = run("export", "--log", ALL, "--json", "--since", "2026-11-03")
    assert [int(json.loads(line)["id"], 16) for line in result.stdout.splitlines()] == [6, 11, 12, 13]


def test_export_csv() -> None:
    result = run("export", "--log", ALL, "--csv", "--user", "alice")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == [
        "ts", "action", "rule", "app", "vendor", "host", "method", "path",
        "client_ip", "user", "groups", "reason", "directive", "policy", "proxy", "id",
    ]  # fmt: skip
    assert [row[-1][-2:] for row in rows[1:]] == ["01", "03", "06", "0a"]  # E1 E3 E6 E10
    assert rows[2] == [
        "2026-11-01T08:15:00.000Z", "block", "deepseek-any-capacity", "deepseek", "deepseek", "api.deepseek.com",
        "POST", "/v1/chat/completions", "10.0.0.1", "alice", "eng;admins", "DeepSeek may not be used in any capacity",
        "USN-2025-01-24-DEEPSEEK", "bf02112e26ea43ef", "gw-1", "00000000000000000000000000000003",
    ]  # fmt: skip


def test_export_csv_guards_against_formulas(hostile_log: Path) -> None:
    result = run("export", "--log", str(hostile_log), "--csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 3
    hostile = rows[2]
    assert hostile["user"] == '\'=HYPERLINK("http://x.example","y")'
    assert hostile["path"] == "'-2+3"
    assert hostile["reason"] == "'@SUM(A1:A9)"
    assert hostile["host"] == "'+cmd|' /C calc'!A0"
    assert hostile["client_ip"] == "'\t10.0.0.7"
    assert hostile["groups"] == "eng;=evil"  # only the start of a cell is read as a formula
    assert rows[0]["user"] == HOSTILE_USER  # data files keep the value as logged


@pytest.mark.parametrize("flags", [[], ["--json", "--csv"]], ids=["neither", "both"])
def test_export_needs_one_format(flags: list[str]) -> None:
    result = run("export", "--log", ALL, *flags)
    assert_clean_failure(result, 2)
    assert "choose one of --json, --csv or --parquet DIR" in result.stderr


# --- tail -----------------------------------------------------------------------------------

LATEST = [  # every event by time, E1 … E13 sorted: the last ten are E3 onwards
    "2026-11-01 08:15:00.000Z block   deepseek-any-capacity  alice (10.0.0.1)  api.deepseek.com/v1/chat/completions",
    "2026-11-01 10:00:00.000Z block   deepseek-any-capacity  bob (10.0.0.2)  chat.deepseek.com/",
    "2026-11-01 23:59:59.999Z block   deepseek-any-capacity  carol (10.0.0.3)  chat.deepseek.com/",
    "2026-11-02 00:00:00.000Z block   deepseek-any-capacity  10.0.0.9  api.deepseek.com/v1/models",
    "2026-11-02 07:00:00.000Z monitor ai-monitor  alice (10.0.0.1)  chatgpt.com/",
    "2026-11-02 12:00:00.000Z monitor ai-monitor  carol (10.0.0.3)  chatgpt.com/",
    "2026-11-03 09:45:00.000Z block   prc-genai  alice (10.0.0.1)  chat.qwen.ai/",
    "2026-11-03 16:20:00.000Z block   deepseek-any-capacity  bob (10.0.0.2)  chat.deepseek.com/",
    "2026-11-04 13:00:00.000Z block   prc-genai  carol (10.0.0.3)  chat.qwen.ai/",
    "2026-11-05 18:00:00.000Z monitor ai-monitor  bob (10.0.0.2)  chatgpt.com/c/new",
]


def test_tail_prints_the_last_ten_by_time() -> None:
    result = run("tail", "--log", ALL)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == LATEST
    assert result.stderr.strip() == SKIPPED


def test_tail_last_n_with_filters() -> None:
    assert run("tail", "--log", ALL, "-n", "3").stdout.splitlines() == LATEST[-3:]
    assert run("tail", "--log", ALL, "--user", "10.0.0.9").stdout.splitlines() == [
        "2026-10-29 11:00:00.000Z block   prc-genai  10.0.0.9  chat.qwen.ai/api/chat",
        "2026-11-02 00:00:00.000Z block   deepseek-any-capacity  10.0.0.9  api.deepseek.com/v1/models",
    ]
    assert run("tail", "--log", ALL, "-n", "0").stdout == ""


def test_tail_bounds_need_follow() -> None:
    result = run("tail", "--log", ALL, "--timeout", "1")
    assert_clean_failure(result, 2)
    assert "--timeout and --max-events go with -f" in result.stderr


def test_tail_follow_stops_at_the_timeout() -> None:
    result = run("tail", "--log", ALL, "-n", "2", "-f", "--timeout", "0.3")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == LATEST[-2:]


def test_tail_follow_stops_after_max_events() -> None:
    result = run("tail", "--log", ALL, "-n", "3", "-f", "--max-events", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == LATEST[-3:]


def start_tail(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIPOLICY_")}
    return subprocess.Popen(
        [sys.executable, "-c", "from aipolicy.cli import main; main()", "violations", "tail", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell running the suite in the background ignores SIGINT, and the child would inherit
        # that; Python only turns SIGINT into KeyboardInterrupt when it starts with the default.
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop(process: subprocess.Popen[str]) -> None:
    """End the process if a failed assertion left it running, and close its pipes."""
    with process:
        if process.poll() is None:
            process.kill()


def numbered(n: int) -> str:
    return decision(n, f"2026-11-01T00:00:{n:02d}.000Z", rule=f"rule-{n}", user="u", client_ip="10.0.0.1")


def rule_of(line: str) -> str:
    return line.split()[3]


def test_tail_follow_across_appends_rotation_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text(numbered(1) + numbered(2), encoding="utf-8")
    tail = start_tail("-f", "--log", str(log), "--max-events", "7", "--timeout", "60")
    try:
        assert tail.stdout is not None
        assert [rule_of(tail.stdout.readline()) for _ in range(2)] == ["rule-1", "rule-2"]
        with log.open("a", encoding="utf-8") as file:
            file.write(numbered(3))
        assert rule_of(tail.stdout.readline()) == "rule-3"
        # Rotation: renamed, a late line in the old file, then a new file.
        os.rename(log, tmp_path / "events.jsonl.1")
        with (tmp_path / "events.jsonl.1").open("a", encoding="utf-8") as file:
            file.write(numbered(4))
        log.write_text(numbered(5) + numbered(6), encoding="utf-8")
        assert [rule_of(tail.stdout.readline()) for _ in range(3)] == ["rule-4", "rule-5", "rule-6"]
        # Truncation in place, then a seventh event: --max-events 7 ends the command.
        log.write_text(numbered(7), encoding="utf-8")
        assert rule_of(tail.stdout.readline()) == "rule-7"
        assert tail.wait(timeout=60) == 0
        assert tail.stdout.read() == ""
        assert tail.stderr is not None and tail.stderr.read() == ""
    finally:
        stop(tail)


def test_tail_follow_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text(numbered(1), encoding="utf-8")
    tail = start_tail("-f", "--log", str(log), "--timeout", "60")
    try:
        assert tail.stdout is not None
        assert rule_of(tail.stdout.readline()) == "rule-1"
        tail.send_signal(signal.SIGINT)
        _, errors = tail.communicate(timeout=60)
        assert tail.returncode == 0
        assert errors == ""
    finally:
        stop(tail)
