"""SIEM sinks through a real mitmdump: syslog receivers on loopback (UDP, TCP, TLS) and a webhook
that fails, then recovers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.siem import parse_cef, parse_rfc5424

from .harness import Proxy, wait_until
from .receivers import SyslogReceiver, WebhookReceiver

pytestmark = pytest.mark.integration
SD_ID = "aipolicy@32473"


def blocked_requests(proxy: Proxy, marker: str, count: int = 1) -> None:
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
        for number in range(count):
            response = client.get(f"http://blocked.example/{marker}/{number}")
            assert response.status_code == 403


@pytest.mark.parametrize(("transport", "syslog_format"), [("udp", "rfc5424"), ("tcp", "cef"), ("tls", "rfc5424")])
def test_syslog_receives_blocked_requests(
    make_proxy: Callable[..., Proxy], upstream_cert: tuple[Path, Path, bytes], transport: str, syslog_format: str
) -> None:
    receiver = SyslogReceiver(transport, (upstream_cert[0], upstream_cert[1]) if transport == "tls" else None)
    try:
        extra = ["--set", f"aipolicy_syslog={receiver.url}", "--set", f"aipolicy_syslog_format={syslog_format}"]
        if transport == "tls":
            extra += ["--set", f"aipolicy_syslog_ca={upstream_cert[0]}"]  # the receiver's self-signed certificate
        proxy = make_proxy(f"syslog-{transport}", extra=extra)
        marker = "m" + uuid.uuid4().hex[:8]
        blocked_requests(proxy, marker, 3)
        assert wait_until(lambda: len(receiver.matching(marker)) >= 3, timeout=15), proxy.stderr_text()
        logged = {e["id"]: e for e in proxy.events_for(marker)}
        assert len(logged) == 3
        for message in receiver.matching(marker):
            record = parse_rfc5424(message)
            assert record.app == "aipolicy" and record.hostname == "test-proxy" and record.msgid == "decision"
            assert record.priority == 16 * 8 + 4
            if syslog_format == "rfc5424":
                data = record.data[SD_ID]
                event = logged[data["id"]]  # the same event as in the JSON Lines log
                assert data["action"] == "block" and data["rule"] == "extra-list" == event["rule"]
                assert data["host"] == "blocked.example" and data["path"] == event["path"]
                assert data["client_ip"] == "127.0.0.1" and data["policy"] == event["policy"]
            else:
                cef = parse_cef(record.message)
                event = logged[cef.extension["externalId"]]
                assert cef.header[:3] == ["CEF:0", "aipolicy", "aipolicy"] and cef.header[4] == "decision:block"
                assert cef.extension["act"] == "block" and cef.extension["cs1"] == "extra-list"
                assert cef.extension["request"] == f"http://blocked.example{event['path']}"
                assert cef.extension["src"] == "127.0.0.1" and cef.extension["dvchost"] == "test-proxy"
        if transport != "udp":
            assert receiver.connections == 1  # one connection carries every message
    finally:
        receiver.stop()


def test_syslog_server_down_at_start_gets_events_once_it_is_up(make_proxy: Callable[..., Proxy]) -> None:
    receiver = SyslogReceiver("tcp")
    port = receiver.port
    receiver.stop()  # nothing listens there now: connections are refused
    proxy = make_proxy("syslog-late", extra=["--set", f"aipolicy_syslog=tcp://127.0.0.1:{port}"])
    marker = "m" + uuid.uuid4().hex[:8]
    blocked_requests(proxy, marker, 2)  # the proxy answers at once, whatever the syslog server does
    assert len(proxy.events_for(marker)) == 2
    late = None
    try:
        late = SyslogReceiver("tcp", port=port)
        assert wait_until(lambda: len(late.matching(marker)) == 2, timeout=20), proxy.stderr_text()
    finally:
        if late:
            late.stop()
    assert "syslog sink cannot deliver" in proxy.stderr_text()


def test_webhook_fails_then_recovers_with_drops_counted(make_proxy: Callable[..., Proxy], tmp_path: Path) -> None:
    webhook = WebhookReceiver()
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    try:
        proxy = make_proxy(
            "webhook",
            extra=[
                "--set", f"aipolicy_webhook={webhook.url}",
                "--set", f"aipolicy_webhook_token_file={token}",
                "--set", "aipolicy_sink_queue=5",
            ],
        )  # fmt: skip
        marker = "m" + uuid.uuid4().hex[:8]
        blocked_requests(proxy, marker, 3)
        assert wait_until(lambda: webhook.attempts >= 2, timeout=15)  # failed, and retried
        blocked_requests(proxy, marker + "-burst", 12)  # the queue holds 5 while the webhook is down
        webhook.failing = False
        logged = proxy.events_for(marker)
        assert len(logged) == 15  # the log has every event, whatever the sink does

        def report() -> list[dict[str, object]]:
            return [e for e in proxy.events() if e.get("event") == "sink_dropped"]

        assert wait_until(report, timeout=30), proxy.stderr_text()
        dropped = int(report()[0]["dropped"])  # type: ignore[call-overload]
        assert report()[0]["sink"] == "webhook" and dropped >= 12 - 5
        delivered = [e for e in webhook.events() if marker in str(e.get("path"))]
        assert wait_until(lambda: len([e for e in webhook.events() if marker in str(e.get("path"))]) + dropped == 15)
        delivered = [e for e in webhook.events() if marker in str(e.get("path"))]
        ids = [e["id"] for e in delivered]
        assert len(ids) == len(set(ids))  # at least once, and here exactly once: every POST was answered
        assert set(ids) <= {e["id"] for e in logged}
        assert {e["id"] for e in logged if f"{marker}/" in str(e["path"])} <= set(ids)  # held during the outage
        # the drop report reaches the webhook too
        assert wait_until(lambda: any(e.get("event") == "sink_dropped" for e in webhook.events()), timeout=10)
        assert set(webhook.authorizations) == {"Bearer s3cret-token"}
        assert "s3cret-token" not in proxy.stderr_text() and "s3cret-token" not in proxy.log.read_text()
        batch = webhook.batches[0]
        assert batch["source"] == "aipolicy" and batch["count"] == len(batch["events"])
    finally:
        webhook.stop()
