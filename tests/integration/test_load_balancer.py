"""deploy/haproxy/haproxy.cfg, run for real on loopback in front of two enforcing proxies."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from .harness import Proxy, free_port, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy is not installed (.ci/run installs it)"),
]

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"
REQUESTS = 20


def loopback_config(port: int, gateways: list[int]) -> str:
    text = CONFIG.read_text().replace("bind :3128", f"bind 127.0.0.1:{port}")
    for number, gateway in enumerate(gateways, 1):
        text = text.replace(f"gw-{number}.example.org:3128", f"127.0.0.1:{gateway}")
    assert "example.org" not in text
    return text.replace("maxconn 20000", "maxconn 1000")  # within a test process's file descriptor limit


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_haproxy_spreads_clients_over_gateways_that_all_enforce(
    make_proxy: Callable[..., Proxy], tmp_path: Path
) -> None:
    gateways = [make_proxy("gw1"), make_proxy("gw2")]
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(loopback_config(port, [g.port for g in gateways]))
    output = (tmp_path / "haproxy.out").open("wb")
    balancer = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=output, stderr=subprocess.STDOUT)
    mark = "m" + uuid.uuid4().hex[:8]
    try:
        assert wait_until(lambda: listening(port) or balancer.poll() is not None, timeout=15)
        assert balancer.poll() is None, (tmp_path / "haproxy.out").read_text()
        statuses = []
        for number in range(REQUESTS):
            with httpx.Client(proxy=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client:
                statuses.append(client.get(f"http://chat.deepseek.com/{mark}/{number}").status_code)
        assert statuses == [403] * REQUESTS

        def logged() -> list[list[dict[str, object]]]:
            return [[e for e in g.events() if mark in json.dumps(e)] for g in gateways]

        wait_until(lambda: sum(map(len, logged())) >= REQUESTS, timeout=10)
        per_gateway = logged()
        assert sum(map(len, per_gateway)) == REQUESTS
        assert all(per_gateway), "leastconn sent every client to one gateway"
    finally:
        balancer.terminate()
        try:
            balancer.wait(10)
        except subprocess.TimeoutExpired:
            balancer.kill()
            balancer.wait(5)
        output.close()
