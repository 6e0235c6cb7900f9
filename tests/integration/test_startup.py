"""Traffic that arrives while mitmdump is still starting is enforced, and cannot stop the proxy.

Clients here connect in a tight loop from the moment mitmdump is spawned, so their requests
land in the first instants the port accepts (the kernel accepts before the addon scripts have
loaded on Python 3.12). mitmproxy's errorcheck addon stops the proxy on any ERROR logged
during start-up; a fail-closed block logs one, which on mitmproxy 12 / Python 3.12 made the
proxy exit until the enforcer held connections until start-up was over (proxy_addons/startup.py).

Each test runs both ways of starting the addon: ``mitmdump -s proxy_addons/addon.py`` (the way
people who run mitmdump themselves load it, and where the start-up gate is needed most) and
the launcher ``aipolicy proxy`` runs (the Enforcer in mitmdump's chain, configured before the
port opens).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import aipolicy.proxy_addons
import pytest

from .conftest import FIXTURES
from .harness import HERE, MITMDUMP, Upstream, free_port, wait_until

pytestmark = pytest.mark.integration

CLIENTS = 6
WAYS = {
    "script": [MITMDUMP, "-s", aipolicy.proxy_addons.ENFORCER_SCRIPT],
    "launcher": [sys.executable, "-m", aipolicy.proxy_addons.LAUNCHER_MODULE],
}


def early_requests(
    tmp_path: Path, upstream: Upstream, way: str, extra: list[str], host_header: str
) -> tuple[list[str], Path, subprocess.Popen[bytes], Path]:
    """Spawn mitmdump (the way given) and, from that instant, send CLIENTS requests as early as the port accepts them.

    Returns (the marks, the event log, the still-running process, its output file)."""
    for name in ("catalog.yaml", "providers.yaml", "policy.yaml"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    port, log, output = free_port(), tmp_path / "events.jsonl", tmp_path / "mitmdump.out"
    command = [
        *WAYS[way], *extra,
        "--listen-host", "127.0.0.1", "--listen-port", str(port),
        "--set", f"confdir={tmp_path / 'confdir'}",
        "--set", f"aipolicy_policy={tmp_path / 'policy.yaml'}",
        "--set", f"aipolicy_log={log}",
        "--set", "aipolicy_proxy_id=test-proxy",
    ]  # fmt: skip
    marks = ["m" + uuid.uuid4().hex[:10] for _ in range(CLIENTS)]
    statuses: list[str] = []
    started = time.monotonic()

    def client(mark: str) -> None:
        while time.monotonic() - started < 30:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=20)
                break
            except OSError:
                time.sleep(0.002)
        else:
            statuses.append("never connected")
            return
        with sock:
            request = f"GET http://127.0.0.1:{upstream.port}/{mark} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n"
            sock.sendall(request.encode())
            data = b""
            try:
                while chunk := sock.recv(65536):
                    data += chunk
            except OSError:
                pass
        statuses.append(data.split(b"\r\n", 1)[0].decode(errors="replace") or "no answer")

    handle = output.open("wb")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=tmp_path)
    handle.close()
    threads = [threading.Thread(target=client, args=(mark,)) for mark in marks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if statuses != ["HTTP/1.1 403 Forbidden"] * CLIENTS:
        stop(process)  # the caller's finally is not reached: do not leave the proxy running
        pytest.fail(f"{statuses}\n{output.read_text(errors='replace')}")
    return marks, log, process, output


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def decisions(log: Path, mark: str) -> list[dict[str, object]]:
    lines = log.read_text().splitlines() if log.exists() else []
    events = [json.loads(line) for line in lines if mark in line]
    return [e for e in events if e.get("event") == "decision"]


@pytest.mark.parametrize("way", WAYS)
def test_requests_in_the_first_instant_are_blocked_and_logged(
    tmp_path: Path, http_upstream: Upstream, way: str
) -> None:
    marks, log, process, output = early_requests(tmp_path, http_upstream, way, [], "blocked.example")
    try:
        assert all(http_upstream.hits(mark) == [] for mark in marks)
        assert wait_until(lambda: all(decisions(log, mark) for mark in marks))
        for mark in marks:
            [event] = decisions(log, mark)
            assert (event["action"], event["rule"], event["host"]) == ("block", "extra-list", "blocked.example")
        assert process.poll() is None, output.read_text(errors="replace")
    finally:
        stop(process)


@pytest.mark.parametrize("way", WAYS)
def test_an_error_in_a_hook_at_start_up_fails_closed_and_the_proxy_keeps_running(
    tmp_path: Path, http_upstream: Upstream, way: str
) -> None:
    extra = ["-s", str(HERE / "fault_addon.py")]
    marks, log, process, output = early_requests(tmp_path, http_upstream, way, extra, "x.fault.test")
    try:
        assert all(http_upstream.hits(mark) == [] for mark in marks)
        assert wait_until(lambda: all(decisions(log, mark) for mark in marks))
        for mark in marks:
            [event] = decisions(log, mark)
            assert (event["action"], event["rule"]) == ("block", "aipolicy:internal-error")
        time.sleep(0.5)  # errorcheck would have stopped it by now
        assert process.poll() is None, output.read_text(errors="replace")
        assert "Error logged during startup" not in output.read_text(errors="replace")
    finally:
        stop(process)
