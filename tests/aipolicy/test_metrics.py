"""Metrics in the Prometheus text format, and the health answer."""

from __future__ import annotations

import json
import sys
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aipolicy import Metrics, health


def parsed(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            families.setdefault(sample.name, []).append((sample.labels, sample.value))
    return families


def test_decisions_latency_and_policy_info() -> None:
    metrics = Metrics()
    metrics.decision("block", "deepseek", 0.00002)
    metrics.decision("block", "deepseek", 0.003)
    metrics.decision("allow", "default", 2.0)
    metrics.loaded("abc123", "/etc/aipolicy/policy.yaml", 7)
    families = parsed(metrics)
    assert ({"action": "block", "rule": "deepseek"}, 2.0) in families["aipolicy_decisions_total"]
    assert families["aipolicy_decision_seconds_count"] == [({}, 3.0)]
    buckets = dict((labels["le"], value) for labels, value in families["aipolicy_decision_seconds_bucket"])
    assert buckets["2.5e-05"] == 1 and buckets["0.005"] == 2 and buckets["1.0"] == 2 and buckets["+Inf"] == 3
    assert families["aipolicy_policy_info"] == [({"hash": "abc123", "path": "/etc/aipolicy/policy.yaml"}, 1.0)]
    assert families["aipolicy_policy_rules"] == [({}, 7.0)]


def test_hostile_rule_names_are_escaped_in_labels() -> None:
    metrics = Metrics()
    rule = 'evil"} 1\naipolicy_fake 99\\'
    metrics.decision("block", rule, 0.001)
    text = metrics.render().decode()
    assert "\naipolicy_fake 99" not in text
    assert ({"action": "block", "rule": rule}, 1.0) in parsed(metrics)["aipolicy_decisions_total"]


def test_two_metrics_objects_do_not_share_counts() -> None:
    first, second = Metrics(), Metrics()
    first.decision("block", "r", 0.0)
    assert "aipolicy_decisions_total" not in {n for n, v in parsed(second).items() if v}


def test_health() -> None:
    good = health("abc", True)
    assert good.status == 200 and json.loads(good.body()) == {
        "status": "ok",
        "policy": "abc",
        "log_writable": True,
        "problems": [],
    }
    bad = health("", False, running=False)
    assert bad.status == 503
    assert json.loads(bad.body())["problems"] == [
        "the proxy is starting or stopping",
        "no policy loaded",
        "the event log cannot be written (AI-app traffic is blocked)",
    ]


def test_latency_buckets_resolve_microsecond_decisions() -> None:
    metrics = Metrics()
    for seconds in (0.0000008, 0.000001, 0.0000015, 0.000004, 0.3):
        metrics.decision("allow", "default", seconds)
    buckets = dict((labels["le"], value) for labels, value in parsed(metrics)["aipolicy_decision_seconds_bucket"])
    assert (buckets["1e-06"], buckets["2.5e-06"], buckets["5e-06"], buckets["0.25"], buckets["1.0"]) == (2, 3, 4, 4, 5)
    assert parsed(metrics)["aipolicy_decision_seconds_sum"][0][1] == pytest.approx(0.3000073)


def test_decisions_counted_from_several_threads_are_all_counted() -> None:
    """The proxy decides large bodies in a worker thread while the event loop decides others."""
    metrics = Metrics()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [
            threading.Thread(target=lambda: [metrics.decision("allow", "default", 1e-6) for _ in range(20_000)])
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    families = parsed(metrics)
    assert ({"action": "allow", "rule": "default"}, 80_000.0) in families["aipolicy_decisions_total"]
    assert families["aipolicy_decision_seconds_count"] == [({}, 80_000.0)]
