"""`aipolicy policy block` on the live policy file: the running proxy picks the edit up
by its own hot reload, and `unblock` lets the host through again."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from .harness import Proxy, env_without_proxy, wait_until

pytestmark = pytest.mark.integration

AIPOLICY = str(Path(sys.executable).with_name("aipolicy"))


def get(proxy: Proxy, url: str) -> httpx.Response:
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
        return client.get(url)


def aipolicy(*args: str) -> str:
    done = subprocess.run([AIPOLICY, *args], capture_output=True, text=True, timeout=60, env=env_without_proxy())
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_block_from_the_cli_reaches_the_running_proxy(make_proxy, http_upstream) -> None:  # type: ignore[no-untyped-def]
    proxy = make_proxy("edit")
    mark = "m" + uuid.uuid4().hex[:8]
    assert get(proxy, f"http://example-banned.test/{mark}-before").status_code == 200
    assert len(http_upstream.hits(f"{mark}-before")) == 1

    output = aipolicy(
        "policy", "block", "example-banned.test", "--reason", "Banned in test", "--policy", str(proxy.policy)
    )
    assert "added example-banned.test to new rule 'cli-block'" in output
    # the proxy reloads every 0.3 s (aipolicy_reload in the harness): a few seconds is plenty
    assert wait_until(lambda: get(proxy, f"http://example-banned.test/{mark}-poll").status_code == 403, timeout=10)
    blocked = get(proxy, f"http://example-banned.test/{mark}-after")
    assert blocked.status_code == 403
    assert blocked.json()["error"]["rule"] == "cli-block" and "Banned in test" in blocked.text
    assert http_upstream.hits(f"{mark}-after") == []
    after_hash = json.loads(proxy.policy.with_name("policy.yaml.audit.jsonl").read_text().splitlines()[-1])["after"]
    assert wait_until(
        lambda: any(e.get("event") == "policy_loaded" and e.get("policy") == after_hash for e in proxy.events())
    )
    event = [e for e in proxy.events() if str(e.get("path", "")).endswith(f"{mark}-after")][0]
    assert (event["action"], event["rule"], event["policy"]) == ("block", "cli-block", after_hash)

    aipolicy("policy", "unblock", "example-banned.test", "--policy", str(proxy.policy))
    assert wait_until(lambda: get(proxy, f"http://example-banned.test/{mark}-again").status_code == 200, timeout=10)
