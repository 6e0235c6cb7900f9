"""The webhook sink's retry, drop and report rules, with httpx.MockTransport at the network edge."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from aipolicy.proxy_addons import sinks
from aipolicy.proxy_addons.sinks import WebhookSink, check_webhook_url

from aipolicy import Metrics


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sinks, "BACKOFF_FIRST", 0.01)
    monkeypatch.setattr(sinks, "WEBHOOK_LINGER", 0.01)


def run_sink(
    statuses: list[int], events: int, queue: int = 100
) -> tuple[list[list[str]], list[tuple[str, int]], Metrics]:
    """Send events to a webhook answering the given statuses in turn (then 200); return the batches it accepted."""
    answers = iter(statuses)
    accepted: list[list[str]] = []
    reports: list[tuple[str, int]] = []
    metrics = Metrics()

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers, 200)
        if status == 200:
            accepted.append([e["id"] for e in json.loads(request.content)["events"]])
        return httpx.Response(status)

    async def main() -> None:
        sink = WebhookSink(
            "https://siem.example/in", "", metrics, lambda name, n: reports.append((name, n)), queue,
            transport=httpx.MockTransport(handler),
        )  # fmt: skip
        for number in range(events):
            sink.event({"id": f"e{number}", "event": "decision"}, "gw")
        sink.start()
        for _ in range(200):
            await asyncio.sleep(0.01)
            if sink.queue.empty() and not sink.failing and (accepted or not events):
                break
        await sink.stop(grace=1)

    asyncio.run(main())
    return accepted, reports, metrics


def sample(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name, {"sink": "webhook"}) or 0.0


def test_server_errors_are_retried_until_delivered() -> None:
    accepted, reports, metrics = run_sink([500, 503, 429], 3)
    assert [i for batch in accepted for i in batch] == ["e0", "e1", "e2"]
    assert reports == [] and sample(metrics, "aipolicy_sink_sent_total") == 3


def test_a_client_error_drops_the_batch_and_reports_it() -> None:
    accepted, reports, metrics = run_sink([400], 2)
    assert accepted == []
    assert sample(metrics, "aipolicy_sink_dropped_total") == 2


def test_a_full_queue_drops_and_the_drop_is_reported_after_delivery() -> None:
    accepted, reports, metrics = run_sink([], 5, queue=2)
    assert [i for batch in accepted for i in batch] == ["e0", "e1"]
    assert reports == [("webhook", 3)] and sample(metrics, "aipolicy_sink_dropped_total") == 3


@pytest.mark.parametrize(
    ("url", "message"),
    [("https://u:p@siem.example/x", "holds credentials"), ("siem.example/x", "expected an http:// or https:// URL")],
)
def test_webhook_url_checks(url: str, message: str) -> None:
    with pytest.raises(sinks.SinkConfigError, match=message):
        check_webhook_url(url)
