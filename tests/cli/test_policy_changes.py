"""aipolicy policy import|diff|replay through the click face."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from aipolicy.cli import main
from click.testing import CliRunner, Result

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
IMPORTS = FIXTURES / "imports"
DIFF = FIXTURES / "diff"
LOGS = FIXTURES / "logs"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIPOLICY_POLICY", raising=False)
    monkeypatch.delenv("AIPOLICY_LOG", raising=False)


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    shutil.copytree(IMPORTS, tmp_path / "imports")
    return tmp_path / "imports" / "policy.yaml"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def assert_clean_failure(result: Result, code: int) -> None:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


# --- import -----------------------------------------------------------------------------------


def test_import_dry_run_writes_nothing(policy: Path) -> None:
    before = policy.read_text()
    result = run(
        "policy", "import", str(IMPORTS / "hosts.txt"), "--into", "inline-bans", "--policy", str(policy), "--dry-run"
    )
    assert result.exit_code == 0, result.output
    assert "added           4" in result.output
    assert "+ ads.example  (line 4)" in result.output
    assert "dry run: nothing written" in result.output
    assert "line 8: invalid: expected 'ADDRESS NAME…'" in result.output
    assert "skipped 2 × hosts-file local name (localhost …) (lines 2, 3)" in result.output
    assert policy.read_text() == before


def test_import_json_then_again_is_idempotent(policy: Path) -> None:
    args = ("policy", "import", str(IMPORTS / "v2fly.txt"), "--into", "inline-bans", "--policy", str(policy), "--json")
    first = json.loads(run(*args).output)
    assert first["written"] is True and first["format"] == "v2fly"
    assert [a["entry"] for a in first["added"]] == ["deepseek.com", "=api.example.net", "=x.example"]
    assert first["duplicates"] == [{"line": 3, "text": "deepseek.example", "reason": "already in the list"}]
    assert first["skipped"] == {"regexp": 1, "keyword": 1, "include": 1}
    assert first["unsupported"] == [{"line": 7, "text": "include:category-ads", "reason": "include"}]
    assert first["invalid"][0]["line"] == 9
    assert first["attributes"] == {"ads": 2, "cn": 1}
    second = json.loads(run(*args).output)
    assert second["added"] == [] and second["written"] is False and second["changed"] is False
    assert second["entries_before"] == second["entries_after"] == 5
    human = run(*args[:-1])
    assert "nothing to change: the list already holds every entry" in human.output


def test_import_into_a_file_list_validates_with_the_loader(policy: Path) -> None:
    result = run("policy", "import", str(IMPORTS / "adblock.txt"), "--into", "community", "--policy", str(policy))
    assert result.exit_code == 0, result.output
    assert "written:" in result.output and "community.txt" in result.output
    assert run("policy", "validate", str(policy)).exit_code == 0
    tested = json.loads(run("policy", "test", "https://x.ads.example/", "--policy", str(policy), "--json").output)
    assert (tested["action"], tested["rule"]) == ("block", "community")


def test_import_from_a_url(policy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url == "https://lists.example/ai.txt"
        return httpx.Response(200, text="||served.example^\n", headers={"content-type": "text/plain"})

    real_client = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **kw: real_client(**{**kw, "transport": httpx.MockTransport(handler)}))
    result = run("policy", "import", "https://lists.example/ai.txt", "--into", "flowlist", "--policy", str(policy))
    assert result.exit_code == 0, result.output
    assert "served.example" in policy.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--into", "nope"), "has no list 'nope'"),
        (("--into", "inline-bans", "--format", "csv"), "Invalid value for '--format'"),
    ],
)
def test_import_errors(policy: Path, args: tuple[str, ...], message: str) -> None:
    result = run("policy", "import", str(IMPORTS / "plain.txt"), "--policy", str(policy), *args)
    assert_clean_failure(result, 2 if "--format" in args else 1)
    assert message in result.output


def test_import_missing_source(policy: Path) -> None:
    result = run("policy", "import", "/nonexistent/list.txt", "--into", "inline-bans", "--policy", str(policy))
    assert_clean_failure(result, 1)
    assert "cannot read '/nonexistent/list.txt': No such file or directory" in result.output


# --- diff -------------------------------------------------------------------------------------


def test_diff_same_exits_0() -> None:
    result = run("policy", "diff", str(DIFF / "a.yaml"), str(DIFF / "same.yaml"))
    assert result.exit_code == 0, result.output
    assert "decide alike" in result.output


def test_diff_different_exits_1_and_says_how() -> None:
    result = run("policy", "diff", str(DIFF / "a.yaml"), str(DIFF / "b.yaml"))
    assert result.exit_code == 1, result.output
    for line in (
        "default: allow -> monitor",
        "+ rule qwen (block, position 4)",
        "- rule watch (was monitor, position 4)",
        "~ rule deepseek",
        "match.domains: + new.example",
        "match.domains: - old.example",
        "rule order (first match wins): allow-docs, deepseek, bans -> deepseek, allow-docs, bans",
        "~ list big: +2 -1",
        "settings.oversize: block -> monitor",
    ):
        assert line in result.output


def test_diff_json() -> None:
    result = run("policy", "diff", str(DIFF / "a.yaml"), str(DIFF / "b.yaml"), "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["same"] is False
    assert data["changes"]["lists"]["changed"][0]["added_sample"] == ["four.example"]


def test_diff_trouble_exits_2() -> None:
    result = run("policy", "diff", str(DIFF / "a.yaml"), "/nonexistent.yaml")
    assert_clean_failure(result, 2)
    assert "a policy does not load" in result.output


# --- replay -----------------------------------------------------------------------------------


def test_replay_json_against_the_fixture_logs() -> None:
    result = run(
        "policy", "replay", "--log", str(LOGS / "*" / "events.jsonl*"), "--policy", str(DIFF / "b.yaml"), "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["events"] == 13 and data["same"] + data["changed"] + data["undetermined"] == 13
    pairs = {(t["old"]["rule"], t["new"]["rule"]): t["count"] for t in data["transitions"]}
    assert pairs[("deepseek-any-capacity", "deepseek")] == 6
    assert data["skipped"]["total"] == 5
    assert any("never allowed requests" in limit for limit in data["limits"])


def test_replay_human_output() -> None:
    result = run("policy", "replay", "--log", str(LOGS / "gw-1" / "events.jsonl*"), "--policy", str(DIFF / "b.yaml"))
    assert result.exit_code == 0, result.output
    assert "events replayed with policy" in result.output
    assert "What changes" in result.output and "By user" in result.output
    assert "What a replay cannot know" in result.output


def test_replay_missing_log_and_bad_policy() -> None:
    missing = run("policy", "replay", "--log", "/nonexistent/events.jsonl", "--policy", str(DIFF / "a.yaml"))
    assert_clean_failure(missing, 1)
    assert "/nonexistent/events.jsonl" in missing.output
    bad = run("policy", "replay", "--log", str(LOGS / "gw-1" / "events.jsonl"), "--policy", "/nonexistent.yaml")
    assert_clean_failure(bad, 1)
    assert "the candidate policy does not load" in bad.output
