"""`aipolicy proxy --workers 2`: two mitmdump workers on one port (SO_REUSEPORT), one policy, one log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import httpx
import pytest

from .harness import env_without_proxy, free_port, interrupt, wait_until

pytestmark = pytest.mark.integration

AIPOLICY = str(Path(sys.executable).with_name("aipolicy"))
REQUESTS = 80  # each on a new connection, so the kernel spreads them over the workers


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def listeners(port: int) -> int:
    """Sockets listening on the port (Linux /proc/net/tcp: local address field, state 0A = LISTEN)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


def test_two_workers_share_the_port_enforce_and_log_every_request(tmp_path: Path, http_upstream) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    log = tmp_path / "events.jsonl"
    output = (tmp_path / "out.txt").open("wb")
    command = [AIPOLICY, "proxy", "--workers", "2", "--port", str(port), "--log", str(log),
               "--confdir", str(tmp_path / "conf"), "--proxy-id", "gw"]  # fmt: skip
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env_without_proxy(), cwd=tmp_path)
    mark = "m" + uuid.uuid4().hex[:8]

    def fetch(number: int) -> tuple[int, int]:
        with httpx.Client(proxy=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client:
            banned = client.get(f"http://chat.deepseek.com/{mark}/{number}").status_code
            allowed = client.get(f"http://127.0.0.1:{http_upstream.port}/{mark}/{number}").status_code
        return banned, allowed

    try:
        assert wait_until(lambda: listeners(port) == 2 or process.poll() is not None, timeout=30)
        assert process.poll() is None, (tmp_path / "out.txt").read_text()
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(fetch, range(REQUESTS)))
        assert results == [(403, 200)] * REQUESTS
        assert len(http_upstream.hits(mark)) == REQUESTS

        def logged() -> list[str]:
            lines = log.read_text().splitlines() if log.exists() else []
            return [line for line in lines if mark in line]

        wait_until(lambda: len(logged()) >= REQUESTS, timeout=15)
        lines = logged()
        events = [json.loads(line) for line in lines]  # whole lines: every one parses
        assert len(events) == REQUESTS
        assert sorted(e["path"] for e in events) == sorted(f"/{mark}/{n}" for n in range(REQUESTS))
        assert {e["action"] for e in events} == {"block"}
        assert {e["proxy"] for e in events} == {"gw-w1", "gw-w2"}  # both workers served and logged
        assert log.read_bytes().endswith(b"\n")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            status = process.wait(5)
        output.close()
    assert status == 0, (tmp_path / "out.txt").read_text()
    assert wait_until(lambda: port_is_free(port), timeout=10), "a worker outlived the supervisor"
    assert len(list((tmp_path / "conf").glob("mitmproxy-ca.pem"))) == 1


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def start_two_workers(tmp_path: Path, port: int) -> tuple[subprocess.Popen[bytes], list[int]]:
    output = (tmp_path / "out.txt").open("wb")
    command = [AIPOLICY, "proxy", "--workers", "2", "--port", str(port), "--log", str(tmp_path / "e.jsonl"),
               "--confdir", str(tmp_path / "conf")]  # fmt: skip
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env_without_proxy(), cwd=tmp_path)
    output.close()
    assert wait_until(lambda: listeners(port) == 2, timeout=30), (tmp_path / "out.txt").read_text()
    assert wait_until(lambda: len(children(process.pid)) == 2, timeout=10)
    return process, children(process.pid)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(5)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc to find the workers")
def test_a_worker_that_dies_stops_the_set(tmp_path: Path) -> None:
    """Exit status 1 when a worker exits by itself, so that systemd or Kubernetes restarts the set."""
    port = free_port()
    process, workers = start_two_workers(tmp_path, port)
    try:
        os.kill(workers[0], signal.SIGKILL)
        assert process.wait(30) == 1
    finally:
        stop(process)
    assert "worker 1 exited with status -9" in (tmp_path / "out.txt").read_text()
    assert wait_until(lambda: port_is_free(port), timeout=10), "the other worker outlived the supervisor"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc to find the workers")
def test_workers_do_not_outlive_a_killed_supervisor(tmp_path: Path) -> None:
    port = free_port()
    process, workers = start_two_workers(tmp_path, port)
    process.kill()
    process.wait(5)
    assert wait_until(lambda: port_is_free(port), timeout=15), "orphaned workers still listen"


def slow_copy(source: IO[bytes], sink: IO[bytes]) -> None:
    """A reader slower than the writers, so the pipe fills and large writes are split (as under back-pressure)."""
    while chunk := source.read1(1024):  # type: ignore[attr-defined]
        sink.write(chunk)
        time.sleep(0.002)


def test_workers_logging_to_stdout_never_interleave_long_lines(tmp_path: Path) -> None:
    """--log - with workers (containers): lines longer than a pipe's atomic write size (4 KiB) stay whole."""
    port = free_port()
    events_out = tmp_path / "stdout.txt"
    command = [AIPOLICY, "proxy", "--workers", "2", "--port", str(port), "--log", "-",
               "--confdir", str(tmp_path / "conf"), "--", "--set", "termlog_verbosity=warn"]  # fmt: skip
    with events_out.open("wb") as sink, (tmp_path / "stderr.txt").open("wb") as errors:
        # a pipe, as under a container runtime, drained into a file
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, env=env_without_proxy(), cwd=tmp_path
        )
        drain = ThreadPoolExecutor(1).submit(slow_copy, process.stdout, sink)
        mark = "m" + uuid.uuid4().hex[:8]

        def fetch(number: int) -> bytes:
            # backslashes (escaped as \\ in JSON) make a line of about 4.7 KB; httpx would percent-encode them
            path, agent = "\\" * 1500, "\\" * 500
            request = (
                f"GET http://chat.deepseek.com/{mark}/{number}/{path} HTTP/1.1\r\n"
                f"Host: chat.deepseek.com\r\nUser-Agent: {agent}\r\nConnection: close\r\n\r\n"
            )
            with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
                connection.sendall(request.encode())
                return connection.recv(12)

        try:
            assert wait_until(lambda: listeners(port) == 2 or process.poll() is not None, timeout=30)
            with ThreadPoolExecutor(8) as pool:
                assert list(pool.map(fetch, range(REQUESTS))) == [b"HTTP/1.1 403"] * REQUESTS
            wait_until(lambda: events_out.read_bytes().count(mark.encode()) >= REQUESTS, timeout=15)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            drain.result(timeout=10)
            process.stdout.close()  # type: ignore[union-attr]
    lines = [line for line in events_out.read_text().splitlines() if mark in line]
    events = [json.loads(line) for line in lines]
    assert len(events) == REQUESTS
    assert all(len(line) > 4096 for line in lines)
    assert {e["proxy"].rsplit("-", 1)[1] for e in events} == {"w1", "w2"}


def test_separate_reuse_port_processes_share_the_port(tmp_path: Path) -> None:
    """What the systemd template aipolicy@.service runs: independent processes on one port."""
    port = free_port()
    log = tmp_path / "events.jsonl"
    processes = []
    try:
        for number in (1, 2):
            command = [AIPOLICY, "proxy", "--reuse-port", "--port", str(port), "--log", str(log),
                       "--confdir", str(tmp_path / "conf"), "--proxy-id", f"unit-{number}"]  # fmt: skip
            processes.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env_without_proxy())
            )
            assert wait_until(lambda n=number: listeners(port) == n, timeout=30), f"process {number} is not listening"  # type: ignore[misc]
        mark = "m" + uuid.uuid4().hex[:8]
        for number in range(30):
            with httpx.Client(proxy=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client:
                assert client.get(f"http://chat.deepseek.com/{mark}/{number}").status_code == 403
        assert wait_until(lambda: log.read_text().count(mark) == 30, timeout=10)
        assert {json.loads(line)["proxy"] for line in log.read_text().splitlines()} == {"unit-1", "unit-2"}
    finally:
        interrupt(*processes, timeout=15)
