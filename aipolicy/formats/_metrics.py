"""What the proxy counts, and its health, in the Prometheus text format.

One ``Metrics`` object per proxy, with a registry of its own (never the
process-wide default, so that several objects in one test process do not
collide). Updated from the proxy's hooks; rendered by the admin listener.
No I/O here.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

# The classic text format, which every Prometheus version scrapes; metric names here need no escaping.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Deciding is a hash lookup (about a microsecond when the name was seen before), so buckets start at 1 µs.
_LATENCY_BUCKETS = (
    0.000001,
    0.0000025,
    0.000005,
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.05,
    0.25,
    1.0,
)


@dataclass(frozen=True)
class Health:
    """The answer of ``/healthz``: ok, the HTTP status and a short JSON body."""

    ok: bool
    policy: str
    log_writable: bool
    problems: tuple[str, ...]

    @property
    def status(self) -> int:
        return 200 if self.ok else 503

    def body(self) -> bytes:
        document = {
            "status": "ok" if self.ok else "unhealthy",
            "policy": self.policy or None,
            "log_writable": self.log_writable,
            "problems": list(self.problems),
        }
        return json.dumps(document).encode() + b"\n"


def health(policy_hash: str, log_writable: bool, running: bool = True) -> Health:
    problems = []
    if not running:
        problems.append("the proxy is starting or stopping")
    if not policy_hash:
        problems.append("no policy loaded")
    if not log_writable:
        problems.append("the event log cannot be written (AI-app traffic is blocked)")
    return Health(not problems, policy_hash, log_writable, tuple(problems))


class HotCounts(Collector):
    """The counters every request touches, kept as plain numbers and turned into Prometheus
    families only when ``/metrics`` is scraped. prometheus_client's own Counter and Histogram
    take several locks and walk their buckets on each update (about 3 µs a request, measured);
    here an update is a dict increment under one lock. ``stages`` is counted from the event loop
    only; decisions may also be made in a worker thread (large bodies), hence the lock."""

    def __init__(self) -> None:
        self.stages: dict[str, int] = {"connect": 0, "tls": 0, "request": 0}
        self.decisions: dict[tuple[str, str], int] = {}
        self.latency_counts = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last one: above every bound
        self.latency_sum = 0.0
        self._lock = threading.Lock()

    def decision(self, action: str, rule: str, seconds: float) -> None:
        key = (action, rule)
        decisions = self.decisions
        with self._lock:
            decisions[key] = decisions.get(key, 0) + 1
            self.latency_counts[bisect.bisect_left(_LATENCY_BUCKETS, seconds)] += 1
            self.latency_sum += seconds

    def collect(self) -> Iterator[Metric]:
        stages = CounterMetricFamily(
            "aipolicy_requests", "Requests and connections seen, by the stage that saw them", labels=["stage"]
        )
        for stage, count in self.stages.items():
            stages.add_metric([stage], count)
        yield stages
        decisions = CounterMetricFamily(
            "aipolicy_decisions", "Decisions made, by action and rule", labels=["action", "rule"]
        )
        with self._lock:
            counted = list(self.decisions.items())
            latency, latency_sum = list(self.latency_counts), self.latency_sum
        for (action, rule), count in counted:
            decisions.add_metric([action, rule], count)
        yield decisions
        buckets, total = [], 0
        for bound, count in zip((*_LATENCY_BUCKETS, float("inf")), latency, strict=True):
            total += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), total))  # as Prometheus spells them
        yield HistogramMetricFamily(
            "aipolicy_decision_seconds", "Time taken by one decision", buckets=buckets, sum_value=latency_sum
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.hot = HotCounts()
        registry.register(self.hot)
        self.stages = self.hot.stages  # the proxy counts into this dict: stage -> requests seen
        self.events = Counter(
            "aipolicy_events", "Events written to the event log, by kind", ["event"], registry=registry
        )
        self.log_failures = Counter(
            "aipolicy_log_write_failures", "Events the event log could not take", registry=registry
        )
        self.policy = Info("aipolicy_policy", "The policy enforced: its hash and file", registry=registry)
        self.policy_loaded = Gauge(
            "aipolicy_policy_loaded_timestamp_seconds", "When the policy in force was loaded", registry=registry
        )
        self.policy_rules = Gauge("aipolicy_policy_rules", "Rules in the policy in force", registry=registry)
        self.sink_sent = Counter("aipolicy_sink_sent", "Events delivered to a SIEM sink", ["sink"], registry=registry)
        self.sink_dropped = Counter(
            "aipolicy_sink_dropped", "Events a SIEM sink dropped (queue full or rejected)", ["sink"], registry=registry
        )
        self.sink_queued = Gauge("aipolicy_sink_queue", "Events waiting for a SIEM sink", ["sink"], registry=registry)
        self.sink_up = Gauge(
            "aipolicy_sink_up", "1 when the SIEM sink's last delivery succeeded, else 0", ["sink"], registry=registry
        )

    def decision(self, action: str, rule: str, seconds: float) -> None:
        self.hot.decision(action, rule, seconds)

    def loaded(self, policy_hash: str, path: str, rules: int) -> None:
        self.policy.info({"hash": policy_hash, "path": path})
        self.policy_loaded.set(time.time())
        self.policy_rules.set(rules)

    def render(self) -> bytes:
        return generate_latest(self.registry)
