"""``aipolicy report --html``: the page written, its figures, and errors without tracebacks."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from aipolicy.cli import main
from click.testing import CliRunner, Result

from tests.aipolicy.test_report import FIXTURE, P1, XSS_USER

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIPOLICY_LOG", raising=False)
    monkeypatch.delenv("AIPOLICY_POLICY", raising=False)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["report", *args], catch_exceptions=True)


def test_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = run("--html", str(out), "--log", FIXTURE)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and 'id="total-attempts">10<' in page
    assert XSS_USER not in page and "&lt;script&gt;" in page
    assert "Report written to" in result.stderr and "10 attempts, 3 evasion attempts" in result.stderr
    assert "1 line skipped: 1 not JSON" in result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it names people
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]  # no temporary file left


def test_filters_and_period(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = run("--html", str(out), "--log", FIXTURE, "--vendor", "deepseek", "--since", "2026-11-02")
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert 'id="total-attempts">2<' in page  # D9 and D10
    assert 'id="total-evasion">1<' in page  # V2 (V1 is qwen, V3 chatgpt)
    assert "vendor = deepseek" in page and "2026-11-02 00:00:00" in page


def test_to_stdout_with_policy() -> None:
    policy = ROOT / "policies" / "default.yaml"
    result = run("--html", "-", "--log", FIXTURE, "--policy", str(policy))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!DOCTYPE html>")
    assert P1 in result.stdout and "(the policy file given)" not in result.stdout  # the fixture's hashes are fake


def test_policy_hash_marked_when_it_matches(tmp_path: Path) -> None:
    from aipolicy import load_policy

    policy = ROOT / "policies" / "default.yaml"
    real = load_policy(policy).hash
    log = tmp_path / "events.jsonl"
    log.write_text(Path(FIXTURE).read_text().replace(P1, real))
    result = run("--html", "-", "--log", str(log), "--policy", str(policy))
    assert result.exit_code == 0, result.output
    assert f"<code>{real}</code> (the policy file given)" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--html", "{tmp}/r.html", "--log", "{tmp}/missing.jsonl"], 1, "cannot read event log"),
        (["--html", "{tmp}/no/such/dir/r.html", "--log", FIXTURE], 1, "cannot write"),
        (["--log", FIXTURE], 2, "Missing option '--html'"),
        (["--html", "{tmp}/r.html", "--log", FIXTURE, "--policy", "{tmp}/missing.yaml"], 1, "policy"),
        (["--html", "{tmp}/r.html", "--log", FIXTURE, "--since", "yesterday-ish"], 2, "is not a time"),
    ],
    ids=["missing-log", "unwritable", "no-html", "missing-policy", "bad-time"],
)
def test_errors_are_clean(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    result = run(*[arg.replace("{tmp}", str(tmp_path)) for arg in args])
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert message in result.output
    assert not (tmp_path / "r.html").exists()


def test_default_log_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("--html", "r.html")
    assert result.exit_code == 1 and "give --log FILE or set AIPOLICY_LOG" in result.output


def _chained_log(directory: Path, count: int) -> Path:
    """A log written by the proxy's own writer: hash-chained."""
    import aipolicy

    log = directory / "events.jsonl"
    policy = aipolicy.load_policy(aipolicy.default_policy())
    writer = aipolicy.EventLog(str(log))
    for number in range(count):
        facts = aipolicy.RequestFacts(hosts=("chat.deepseek.com",), path=f"/{number}", user=f"user{number % 3}")
        writer.write(aipolicy.decision_event(aipolicy.decide(policy, facts), facts, stage="request"))
    writer.close()
    return log


def test_report_says_whether_the_log_verified(tmp_path: Path) -> None:
    log = _chained_log(tmp_path, 5)
    good = tmp_path / "good.html"
    assert run("--html", str(good), "--log", str(log)).exit_code == 0
    page = good.read_text(encoding="utf-8")
    assert "5 lines in 1 log(s) checked: the hash chain is intact." in page
    lines = log.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("user2", "userX")  # an edited line
    log.write_text("".join(lines))
    bad = tmp_path / "bad.html"
    assert run("--html", str(bad), "--log", str(log)).exit_code == 0
    page = bad.read_text(encoding="utf-8")
    assert "The hash chain does not hold: 1 break(s)" in page and "events.jsonl:" in page
    assert "the hash chain is intact" not in page
