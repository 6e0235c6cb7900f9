"""/healthz follows start-up: 503 until mitmproxy runs with the policy loaded, 200 then."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from aipolicy.proxy_addons.enforcer import Enforcer

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # proxyauth's ldap3 uses deprecated pyasn1 names
    from mitmproxy.test import taddons

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_healthz_is_unhealthy_until_start_up_is_over(tmp_path: Path) -> None:
    enforcer = Enforcer()
    context = taddons.context(enforcer)
    try:
        with context:
            context.configure(
                enforcer, aipolicy_policy=str(FIXTURES / "policy.yaml"), aipolicy_log=str(tmp_path / "e.jsonl")
            )
            starting = enforcer.admin.health()
            assert starting.status == 503
            assert json.loads(starting.body())["problems"] == ["the proxy is starting or stopping"]
            enforcer.startup.running()
            running = enforcer.admin.health()
            assert (running.status, json.loads(running.body())["problems"]) == (200, [])
            context.master.event_loop.run_until_complete(enforcer.done())
            assert enforcer.admin.health().status == 503  # stopping
    finally:
        context.master.event_loop.close()
