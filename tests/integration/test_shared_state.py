"""`aipolicy proxy --workers 2` with warn and quota rules: the workers share the warning form's
key, the acknowledgements and the quota counters (aipolicy_state_dir), so a user who is handed
from one worker to the other is neither refused nor warned again, and a budget stays one budget."""

from __future__ import annotations

import html
import json
import re
import shutil
import signal
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .conftest import FIXTURES
from .harness import HERE, Upstream, env_without_proxy, free_port, wait_until
from .test_workers import AIPOLICY, listeners, port_is_free

pytestmark = pytest.mark.integration

APPS = 40  # warn hosts, one token each: enough to see tokens cross between the workers
BUDGET = 5
REQUESTS = 30  # against the budget, each on a new connection
POLICY = f"""\
version: 1
catalog: catalog.yaml
rules:
  - id: confirm-first
    action: warn
    match: {{hosts: [{", ".join(f"w{n}.warn.example" for n in range(APPS))}]}}
    warn: {{justification: none, remember: 1h}}
  - id: small-budget
    action: quota
    match: {{hosts: [budget.example]}}
    quota: {{requests: {BUDGET}, per: 1h}}
default: allow
"""
HTML = {"accept": "text/html"}


@dataclass
class Workers:
    port: int
    admin: int  # worker 1's admin port; worker 2's is the next one
    log: Path
    workdir: Path
    process: subprocess.Popen[bytes]

    def get(self, url: str, **options: object) -> httpx.Response:
        """One request on a connection of its own, so that the kernel picks a worker for it."""
        with httpx.Client(proxy=f"http://127.0.0.1:{self.port}", trust_env=False, timeout=10) as client:
            return client.request(url=url, **options)  # type: ignore[arg-type]

    def events(self, marker: str = "") -> list[dict[str, object]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [json.loads(line) for line in lines if marker in line]

    def controls(self, host: str) -> list[dict[str, object]]:
        """The warn and proceed events of one host."""
        return [e for e in self.events(host) if e.get("host") == host and e["action"] in ("warn", "proceed")]

    def requests_seen(self) -> list[int]:
        """Requests each worker has seen (its /metrics)."""
        counts = []
        for admin in (self.admin, self.admin + 1):
            text = httpx.get(f"http://127.0.0.1:{admin}/metrics", trust_env=False, timeout=10).text
            match = re.search(r'^aipolicy_requests_total\{stage="request"\} (\d+)', text, re.MULTILINE)
            assert match, text
            counts.append(int(match.group(1)))
        return counts


def two_free_ports() -> int:
    for _ in range(50):
        port = free_port()
        if port < 65535 and port_is_free(port + 1):
            return port
    raise RuntimeError("no two free ports in a row")


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, http_upstream: Upstream) -> Iterator[Workers]:
    workdir = tmp_path_factory.mktemp("shared-state")
    shutil.copy(FIXTURES / "catalog.yaml", workdir / "catalog.yaml")
    shutil.copy(FIXTURES / "providers.yaml", workdir / "providers.yaml")
    (workdir / "policy.yaml").write_text(POLICY)
    port, admin = free_port(), two_free_ports()
    log = workdir / "events.jsonl"
    routes = f"warn.example={http_upstream.port},budget.example={http_upstream.port}"
    command = [AIPOLICY, "proxy", "--workers", "2", "--port", str(port), "--log", str(log), "--policy",
               str(workdir / "policy.yaml"), "--confdir", str(workdir / "conf"), "--proxy-id", "gw",
               "--admin", f"127.0.0.1:{admin}",
               "--", "-s", str(HERE / "route_addon.py"), "--set", f"test_routes={routes}"]  # fmt: skip
    with (workdir / "out.txt").open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env_without_proxy(), cwd=workdir
        )
    running = Workers(port, admin, log, workdir, process)
    try:
        assert wait_until(lambda: listeners(port) == 2 or process.poll() is not None, timeout=30)
        assert process.poll() is None, (workdir / "out.txt").read_text()
        assert wait_until(lambda: listeners(admin) + listeners(admin + 1) == 2, timeout=30)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    assert wait_until(lambda: port_is_free(port), timeout=10), "a worker outlived the supervisor"


def test_the_workers_share_one_private_state_directory(workers: Workers) -> None:
    state = workers.workdir / "conf" / "aipolicy-state"
    assert stat.S_IMODE((state / "secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "state.db").stat().st_mode) == 0o600


def test_a_token_from_one_worker_is_accepted_by_the_other_and_the_acknowledgement_holds_in_both(
    workers: Workers, http_upstream: Upstream
) -> None:
    """For each app: the warning page from one worker, the confirmation posted to whichever worker
    the kernel picks. Without the shared key, every pair that crossed would be refused (400)."""
    marker = "t" + uuid.uuid4().hex[:8]
    crossed = []
    for number in range(APPS):
        host = f"w{number}.warn.example"
        page = workers.get(f"http://{host}/{marker}/page", method="GET", headers=HTML)
        assert page.status_code == 403 and "Check before you continue" in page.text
        token = re.search(r'name="token" value="([^"]+)"', page.text)
        assert token
        done = workers.get(
            f"http://{host}/.aipolicy/proceed",
            method="POST",
            data={"token": html.unescape(token.group(1)), "return": f"/{marker}/page"},
            headers=HTML,
        )
        assert (done.status_code, done.headers.get("location")) == (303, f"/{marker}/page"), done.text
        assert wait_until(lambda h=host: len(workers.controls(h)) == 2)  # type: ignore[misc]
        by_action = {e["action"]: e["proxy"] for e in workers.controls(host)}
        if by_action["warn"] != by_action["proceed"]:
            crossed.append(number)
        if len(crossed) >= 3:
            break
    assert crossed, "every confirmation went to the worker that showed the page: the test proved nothing"
    # The acknowledgement was made in one worker: both honour it, on connections of their own.
    before = workers.requests_seen()
    for number in range(20):
        response = workers.get(f"http://w{crossed[0]}.warn.example/{marker}/after/{number}", method="GET", headers=HTML)
        assert response.status_code == 200, response.text
    after = workers.requests_seen()
    assert all(b > a for a, b in zip(before, after, strict=True)), (before, after)  # both workers served some
    assert len(http_upstream.hits(f"{marker}/after")) == 20
    warned_again = [e for e in workers.controls(f"w{crossed[0]}.warn.example") if e["action"] == "warn"]
    assert len(warned_again) == 1  # only the first page, before the acknowledgement


def test_a_request_budget_is_exact_across_workers(workers: Workers, http_upstream: Upstream) -> None:
    marker = "q" + uuid.uuid4().hex[:8]
    statuses = [
        workers.get(f"http://budget.example/{marker}/{number}", method="POST", json={"n": number}).status_code
        for number in range(REQUESTS)
    ]
    assert statuses == [200] * BUDGET + [429] * (REQUESTS - BUDGET)
    assert len(http_upstream.hits(marker)) == BUDGET
    assert wait_until(lambda: len(workers.events(marker)) == REQUESTS - BUDGET)
    refused = workers.events(marker)
    assert {(e["action"], e["rule"], e["window_requests"]) for e in refused} == {("quota", "small-budget", BUDGET)}
    assert {e["proxy"] for e in refused} == {"gw-w1", "gw-w2"}  # both workers counted against the one budget
