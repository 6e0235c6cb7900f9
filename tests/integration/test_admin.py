"""The admin listener of a real mitmdump: /healthz, Prometheus /metrics, and never through the proxy."""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import aipolicy.proxy_addons
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aipolicy import load_policy

from .conftest import copy_fixture_policy
from .harness import MITMDUMP, Proxy, Upstream, free_port, start_proxy, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def admin_proxy(tmp_path_factory: pytest.TempPathFactory, http_upstream: Upstream) -> Iterator[tuple[Proxy, int]]:
    workdir = tmp_path_factory.mktemp("admin")
    admin_port = free_port()
    routes = {"allowed.test": http_upstream.port, "sneaky.test": admin_port}  # a name that leads to the admin port
    proxy = start_proxy(
        workdir, copy_fixture_policy(workdir), routes, extra=["--set", f"aipolicy_admin=127.0.0.1:{admin_port}"]
    )
    wait_for_admin(admin_port)
    yield proxy, admin_port
    proxy.stop()


def wait_for_admin(port: int) -> None:
    """mitmproxy 12 may accept on the proxy port a moment before the addon has configured the admin listener."""

    def up() -> bool:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return True
        except httpx.HTTPError:
            return False

    assert wait_until(up, timeout=15), f"admin listener on port {port} did not come up"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_what_the_proxy_did(admin_proxy: tuple[Proxy, int], http_upstream: Upstream) -> None:
    proxy, admin_port = admin_proxy
    marker = "m" + uuid.uuid4().hex[:8]
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
        before = samples(httpx.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=5).text)
        blocked = [client.get(f"http://blocked.example/{marker}/{n}").status_code for n in range(3)]
        exact = client.get(f"http://exact.example/{marker}").status_code
        allowed = [client.get(f"http://allowed.test/{marker}/{n}").status_code for n in range(2)]
    assert blocked == [403] * 3 and exact == 403 and allowed == [200, 200]
    assert len(proxy.events_for(marker)) == 4
    response = httpx.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=5)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = samples(response.text)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("aipolicy_decisions_total", action="block", rule="extra-list") == 3
    assert delta("aipolicy_decisions_total", action="block", rule="exact") == 1
    assert delta("aipolicy_decisions_total", action="allow", rule="default") == 2
    assert delta("aipolicy_requests_total", stage="request") == 6
    assert delta("aipolicy_decision_seconds_count") == 6
    assert delta("aipolicy_events_total", event="decision") == 4
    assert (
        after[("aipolicy_decision_seconds_bucket", (("le", "+Inf"),))] == after[("aipolicy_decision_seconds_count", ())]
    )
    policy_hash = proxy.events_for(marker)[0]["policy"]
    info = [labels for (name, labels) in after if name == "aipolicy_policy_info"]
    assert info and dict(info[0])["hash"] == policy_hash and dict(info[0])["path"] == str(proxy.policy)
    assert after[("aipolicy_policy_rules", ())] == 9 and after[("aipolicy_policy_loaded_timestamp_seconds", ())] > 0
    assert after[("aipolicy_log_write_failures_total", ())] == 0


def test_healthz_reports_the_policy(admin_proxy: tuple[Proxy, int]) -> None:
    proxy, admin_port = admin_proxy
    response = httpx.get(f"http://127.0.0.1:{admin_port}/healthz", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert (
        body["status"] == "ok"
        and body["log_writable"] is True
        and body["policy"] == load_policy(str(proxy.policy)).hash
    )
    assert httpx.get(f"http://127.0.0.1:{admin_port}/other", timeout=5).status_code == 404


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "sneaky.test"])
def test_admin_listener_is_not_reachable_through_the_proxy(admin_proxy: tuple[Proxy, int], host: str) -> None:
    proxy, admin_port = admin_proxy
    port = 80 if host == "sneaky.test" else admin_port  # sneaky.test reaches the admin port only by routing
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
        for path in ("/metrics", "/healthz"):
            response = client.get(f"http://{host}:{port}{path}")
            assert response.status_code == 502, response.text
            assert "aipolicy_" not in response.text and '"status"' not in response.text
    if host != "sneaky.test":
        assert wait_until(lambda: "admin listener is not reachable through the proxy" in proxy.stderr_text())


def test_healthz_is_503_when_the_log_cannot_be_written(tmp_path: Path) -> None:
    admin_port = free_port()
    (tmp_path / "events.jsonl").symlink_to("/dev/full")  # the harness's log: opens, but every write fails
    proxy = start_proxy(
        tmp_path, copy_fixture_policy(tmp_path), extra=["--set", f"aipolicy_admin=127.0.0.1:{admin_port}"]
    )
    try:
        wait_for_admin(admin_port)
        assert httpx.get(f"http://127.0.0.1:{admin_port}/healthz", timeout=5).status_code == 200
        with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
            assert client.get("http://blocked.example/x").status_code == 403
        response = httpx.get(f"http://127.0.0.1:{admin_port}/healthz", timeout=5)
        assert response.status_code == 503 and response.json()["log_writable"] is False
        assert "event log cannot be written" in response.json()["problems"][0]
        metrics = samples(httpx.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=5).text)
        assert metrics[("aipolicy_log_write_failures_total", ())] >= 1
    finally:
        proxy.stop()


def test_admin_address_in_use_stops_the_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [
            MITMDUMP, "-s", aipolicy.proxy_addons.ENFORCER_SCRIPT, "--listen-host", "127.0.0.1", "--listen-port", str(free_port()),
            "--set", f"confdir={tmp_path}", "--set", f"aipolicy_policy={copy_fixture_policy(tmp_path)}",
            "--set", f"aipolicy_log={tmp_path / 'events.jsonl'}", "--set", f"aipolicy_admin=127.0.0.1:{port}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode != 0
    assert "aipolicy_admin: [Errno" in result.stdout + result.stderr


def own_address() -> str:
    """This machine's address beyond loopback, as the kubelet sees a pod's (loopback when it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP: picks the outgoing address, sends nothing
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def test_an_admin_listener_on_every_interface_answers_probes_but_never_through_the_proxy(tmp_path: Path) -> None:
    """deploy/kubernetes: --admin=0.0.0.0:9464, probed by the kubelet at the pod's address."""
    admin_port, address = free_port(), own_address()
    proxy = start_proxy(
        tmp_path, copy_fixture_policy(tmp_path), extra=["--set", f"aipolicy_admin=0.0.0.0:{admin_port}"]
    )
    try:
        wait_for_admin(admin_port)
        response = httpx.get(f"http://{address}:{admin_port}/healthz", timeout=5)
        assert response.status_code == 200 and response.json()["status"] == "ok"
        with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
            for host in {address, "127.0.0.1"}:
                through = client.get(f"http://{host}:{admin_port}/healthz")
                assert through.status_code == 502 and '"status"' not in through.text, host
    finally:
        proxy.stop()
