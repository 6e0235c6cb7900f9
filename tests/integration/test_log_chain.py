"""The tamper-evident log through a real mitmdump: rotation under load, and a kill -9 in the middle of logging."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aipolicy.cli import main
from click.testing import CliRunner

from aipolicy import verify_logs

from .conftest import copy_fixture_policy, routes
from .harness import Proxy, Upstream, start_proxy, wait_until

pytestmark = pytest.mark.integration

MAX_SIZE = "8K"  # about ten events per file


def send_blocked(proxy: Proxy, count: int, mark: str) -> int:
    """``count`` requests to a banned host over one connection; how many were blocked."""
    blocked = 0
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
        for number in range(count):
            blocked += client.get(f"http://chat.deepseek.com/{mark}/{number}").status_code == 403
    return blocked


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout


def summary_total(log: Path) -> int:
    code, out = cli("violations", "summary", "--log", f"{log}*", "--json", "--by", "rule")
    assert code == 0, out
    return int(json.loads(out)["total"])


def read_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).splitlines()


def plain_rotated(log: Path) -> list[Path]:
    return [p for p in log.parent.glob(f"{log.name}-*") if p.suffix != ".gz"]


def test_rotation_under_load_loses_no_event(make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy("rotating", extra=["--set", f"aipolicy_log_max_size={MAX_SIZE}"])
    assert send_blocked(proxy, 120, "rot") == 120
    assert wait_until(lambda: not plain_rotated(proxy.log), timeout=20)  # compressed by the worker thread
    rotated = sorted(proxy.log.parent.glob("events.jsonl-*.gz"))
    assert len(rotated) >= 8
    assert all(path.stat().st_size < 8192 for path in rotated)

    code, out = cli("log", "verify", "--log", f"{proxy.log}*", "--json")
    assert code == 0, out
    [log] = json.loads(out)["logs"]
    assert (log["status"], log["lines"], log["first_seq"]) == ("intact", 120, 0)
    assert len(log["files"]) == len(rotated) + 1
    assert summary_total(proxy.log) == 120


def test_kill_9_while_logging_leaves_at_most_the_last_line_torn(
    tmp_path: Path, http_upstream: Upstream, https_upstream: Upstream
) -> None:
    policy = copy_fixture_policy(tmp_path)
    extra = ["--set", f"aipolicy_log_max_size={MAX_SIZE}"]
    proxy = start_proxy(tmp_path, policy, routes(http_upstream, https_upstream), extra=extra)
    answered = [0]
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(proxy=proxy.url, trust_env=False, timeout=5) as session:
            for number in range(100_000):
                if stop.is_set():
                    return
                try:
                    session.get(f"http://chat.deepseek.com/kill/{number}")
                    answered[0] += 1
                except httpx.HTTPError:
                    return

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        assert wait_until(lambda: answered[0] >= 150, timeout=60)
        proxy.process.kill()  # SIGKILL: no hook runs, nothing is flushed or closed
        proxy.process.wait(10)
    finally:
        stop.set()
        for thread in threads:
            thread.join(20)
        proxy.stop()

    [report] = verify_logs([f"{proxy.log}*"])
    assert report.problem is None, str(report.problem)
    assert report.status in ("intact", "torn")
    assert report.lines >= answered[0]  # every answered request was logged before its answer
    if report.status == "torn":
        [torn] = report.torn
        last = len(proxy.log.read_bytes().split(b"\n"))
        assert (torn.file, torn.line, torn.acknowledged) == (str(proxy.log), last, False)
    else:
        # A write of one line is rarely cut by a kill; leave part of a line as a power loss would,
        # so that the restart below always has a torn line to deal with. (Appended rather than cut
        # from the last line: the kill may have come right after a rotation, with the file empty.)
        with proxy.log.open("ab") as file:
            file.write(b'{"v":1,"id":"0123456789abcdef0123456789abcdef","ts":"2026-11-30T')
        assert verify_logs([f"{proxy.log}*"])[0].status == "torn"
    lines_before = report.lines

    restarted = start_proxy(tmp_path, policy, routes(http_upstream, https_upstream), extra=extra)
    try:
        assert send_blocked(restarted, 5, "after") == 5
    finally:
        restarted.stop()
    assert wait_until(lambda: not plain_rotated(proxy.log), timeout=20)  # leftovers compressed on start

    code, out = cli("log", "verify", "--log", f"{proxy.log}*", "--json")
    assert code == 0, out
    [log] = json.loads(out)["logs"]
    assert log["status"] == "intact"
    [torn] = log["torn"]
    assert torn["acknowledged"] is True
    assert log["lines"] >= lines_before + 5
    lines = [line for path in map(Path, log["files"]) for line in read_lines(path)]
    resumed = [json.loads(line) for line in lines if b'"log_resumed"' in line]
    assert len(resumed) == 1 and resumed[0]["proxy"] == "test-proxy"
    assert summary_total(proxy.log) == log["lines"] - 1  # every chained line a decision but the log_resumed one


def test_bad_rotation_option_is_reported_by_mitmdump(tmp_path: Path) -> None:
    # As a script, a refused option is logged and mitmdump goes on (the launcher refuses to start:
    # tests/integration/test_launcher.py)
    policy = copy_fixture_policy(tmp_path)
    proxy = start_proxy(tmp_path, policy, extra=["--set", "aipolicy_log_max_size=ten"], via="script")
    try:
        expected = "aipolicy_log_max_size / aipolicy_log_max_age: 'ten' is not a size"
        assert wait_until(lambda: expected in proxy.stderr_text(), timeout=20), proxy.stderr_text()
    finally:
        proxy.stop()
