"""The enforcer with aipolicy_state_dir / aipolicy_secret_file, in process: the shared objects it
uses, options it refuses (the last good state stays), and a broken database at run time (the
request is blocked and logged, never let through)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest
from mitmproxy import exceptions, http
from mitmproxy.test import tflow

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # as in test_hot_path: proxyauth's ldap3 and pyasn1
    from mitmproxy.test import taddons

from aipolicy.proxy_addons.enforcer import Enforcer

import aipolicy

POLICY = """\
version: 1
rules:
  - id: budget
    action: quota
    match: {hosts: [budget.example]}
    quota: {requests: 2, per: 1h}
default: allow
"""


@pytest.fixture
def context(tmp_path: Path) -> Iterator[tuple[Enforcer, taddons.context]]:
    (tmp_path / "policy.yaml").write_text(POLICY)
    addon = Enforcer()
    context = taddons.context(addon)
    try:
        with context:
            # options the enforcer reads that mitmproxy's proxyserver addon declares (not loaded by taddons)
            if "connection_strategy" not in context.options:
                context.options.add_option("connection_strategy", str, "lazy", "as mitmproxy's proxyserver")
            if "stream_large_bodies" not in context.options:
                context.options.add_option("stream_large_bodies", Optional[str], None, "as mitmproxy's proxyserver")  # noqa: UP045
            context.configure(
                addon,
                aipolicy_policy=str(tmp_path / "policy.yaml"),
                aipolicy_log=str(tmp_path / "events.jsonl"),
                aipolicy_reload="0",
            )
            yield addon, context
            context.master.event_loop.run_until_complete(addon.done())
    finally:
        context.master.event_loop.close()


def budget_flow() -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request = http.Request.make("GET", "http://budget.example/v1/models")
    flow.client_conn.peername = ("127.0.0.1", 50000)
    return flow


def test_without_a_state_dir_the_state_stays_in_memory(context: tuple[Enforcer, taddons.context]) -> None:
    enforcer, _ = context
    assert type(enforcer.acknowledgements) is aipolicy.Acknowledgements
    assert type(enforcer.quotas) is aipolicy.QuotaTracker


def test_a_state_dir_gives_shared_objects_that_count_one_budget(
    context: tuple[Enforcer, taddons.context], tmp_path: Path
) -> None:
    enforcer, ctx = context
    ctx.configure(enforcer, aipolicy_state_dir=str(tmp_path / "state"))
    assert isinstance(enforcer.acknowledgements, aipolicy.SharedAcknowledgements)
    assert isinstance(enforcer.quotas, aipolicy.SharedQuotaTracker)
    other = aipolicy.SharedState(tmp_path / "state")  # another worker on the same directory
    assert enforcer.acknowledgements.secret == other.secret
    settings = aipolicy.QuotaSettings(per=3600, requests=2)
    assert aipolicy.SharedQuotaTracker(other).charge("budget", "127.0.0.1", settings, 0, enforcer.clock()).allowed
    statuses = []
    for _ in range(2):
        flow = budget_flow()
        enforcer.requestheaders(flow)
        statuses.append(flow.response.status_code if flow.response else 200)
    assert statuses == [200, 429]
    other.close()


def test_a_bad_secret_file_is_refused_and_the_last_good_state_stays(
    context: tuple[Enforcer, taddons.context], tmp_path: Path
) -> None:
    enforcer, ctx = context
    ctx.configure(enforcer, aipolicy_state_dir=str(tmp_path / "state"))
    good = enforcer.acknowledgements
    secret = tmp_path / "shared-secret"
    secret.write_text("x" * 64)
    secret.chmod(0o640)
    with pytest.raises(exceptions.OptionsError, match="mode 0640 lets others read or change it"):
        ctx.configure(enforcer, aipolicy_secret_file=str(secret))
    assert enforcer.acknowledgements is good
    assert enforcer.quotas.charge("x", "y", aipolicy.QuotaSettings(per=60), 0, 0.0).allowed  # still open


def test_a_secret_file_alone_shares_the_form_key(context: tuple[Enforcer, taddons.context], tmp_path: Path) -> None:
    """Proxies on several hosts: tokens valid everywhere, the rest of the state per process."""
    enforcer, ctx = context
    secret = tmp_path / "shared-secret"
    ctx.configure(enforcer, aipolicy_secret_file=str(secret))  # created, mode 0600
    assert type(enforcer.acknowledgements) is aipolicy.Acknowledgements
    other = aipolicy.Acknowledgements(secret=aipolicy.ensure_secret(secret))
    assert other.valid_token(enforcer.acknowledgements.token("alice", "chatgpt", 1000.0), "alice", "chatgpt", 1001.0)


def test_a_corrupt_database_is_refused_at_start(context: tuple[Enforcer, taddons.context], tmp_path: Path) -> None:
    enforcer, ctx = context
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.db").write_bytes(b"garbage" * 1000)
    with pytest.raises(exceptions.OptionsError, match="state.db cannot be used: file is not a database"):
        ctx.configure(enforcer, aipolicy_state_dir=str(tmp_path / "state"))


def test_a_database_failing_at_run_time_blocks_and_logs(
    context: tuple[Enforcer, taddons.context], tmp_path: Path
) -> None:
    enforcer, ctx = context
    ctx.configure(enforcer, aipolicy_state_dir=str(tmp_path / "state"))
    assert isinstance(enforcer.quotas, aipolicy.SharedQuotaTracker)
    enforcer.quotas.state.db.execute("DROP TABLE quota_usage")
    flow = budget_flow()
    enforcer.requestheaders(flow)
    assert flow.response is not None and flow.response.status_code == 403
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(e["action"], e["host"]) for e in events if e.get("event") == "decision"] == [("block", "budget.example")]
    assert "SharedStateError" in events[-1]["reason"]  # the full message goes to the proxy's own log
