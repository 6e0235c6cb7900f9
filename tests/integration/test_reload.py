"""Hot reload: a good new policy takes effect within seconds; a broken one is
reported and the last good policy stays in force."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from .harness import Proxy, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reload_proxy(make_proxy) -> Proxy:  # type: ignore[no-untyped-def]
    return make_proxy("reload")


def status(proxy: Proxy, url: str) -> int:
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
        return client.get(url).status_code


def system_events(proxy: Proxy, kind: str) -> list[dict[str, object]]:
    return [e for e in proxy.events() if e.get("event") == kind]


def test_good_edit_applies_then_broken_edit_keeps_last_good(reload_proxy: Proxy) -> None:
    policy = reload_proxy.policy
    original = policy.read_text()
    mark = "m" + uuid.uuid4().hex[:8]
    assert status(reload_proxy, f"http://allowed.test/{mark}-before") == 200

    policy.write_text(original.replace("    - blocked.example\n", "    - blocked.example\n    - allowed.test\n"))
    assert wait_until(lambda: status(reload_proxy, f"http://allowed.test/{mark}-poll") == 403, timeout=10)
    loaded = system_events(reload_proxy, "policy_loaded")
    assert len(loaded) == 1 and loaded[0]["previous"] != loaded[0]["policy"]

    policy.write_text(original.replace("action: block", "action: blok", 1) + "\n  - {broken: [\n")
    assert wait_until(lambda: system_events(reload_proxy, "policy_rejected"), timeout=10)
    rejected = system_events(reload_proxy, "policy_rejected")
    assert len(rejected) == 1
    assert "policy.yaml:" in str(rejected[0]["reason"]) and rejected[0]["policy"] == loaded[0]["policy"]
    assert "rejected; still enforcing" in reload_proxy.stderr_text()
    # the last good policy, including the edit, is still enforced
    assert status(reload_proxy, f"http://allowed.test/{mark}-after") == 403
    assert status(reload_proxy, f"http://chat.deepseek.com/{mark}") == 403

    policy.unlink()  # a deleted policy file is also rejected, not obeyed
    wait_until(lambda: len(system_events(reload_proxy, "policy_rejected")) == 2, timeout=10)
    assert len(system_events(reload_proxy, "policy_rejected")) == 2
    assert status(reload_proxy, f"http://allowed.test/{mark}-deleted") == 403

    policy.write_text(original)
    assert wait_until(lambda: status(reload_proxy, f"http://allowed.test/{mark}-restored") == 200, timeout=10)
    events = [json.dumps(e) for e in reload_proxy.events()]
    assert sum(f"{mark}-after" in e for e in events) == 1
