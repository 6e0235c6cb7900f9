"""Per-event cost of the SIEM sinks and metrics on the proxy's event loop.

What runs in the proxy's hooks for each decision and each event: Metrics.decision (a counter and
a histogram), formatting one syslog message (RFC 5424 or CEF), and queueing it. Compared with
aipolicy.decide() for the same request, measured in the same run.

    .venv/bin/python bench/sinks.py [--calls N] [--repeats R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

import aipolicy
from aipolicy import RequestFacts


def per_call(function: Callable[[], object], calls: int, repeats: int) -> float:
    """Median over repeats of the mean time per call, in microseconds."""
    results = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        results.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    policy = aipolicy.load_policy(str(aipolicy.default_policy()))
    facts = RequestFacts(hosts=("chat.deepseek.com",), method="GET", path="/a/chat", client_ip="10.1.2.3")
    decision = aipolicy.decide(policy, facts)
    event = aipolicy.decision_event(decision, facts, stage="request", proxy_id="gw-1", user_agent="Mozilla/5.0")
    metrics = aipolicy.Metrics()
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    def enqueue() -> None:
        queue.put_nowait(aipolicy.frame(aipolicy.format_message(event, "rfc5424", "gw-1"), "tcp"))
        queue.get_nowait()

    rows = [
        ("aipolicy.decide (reference)", lambda: aipolicy.decide(policy, facts)),
        ("Metrics.decision", lambda: metrics.decision(decision.action, decision.rule, 0.00002)),
        ("format RFC 5424", lambda: aipolicy.format_message(event, "rfc5424", "gw-1")),
        ("format CEF", lambda: aipolicy.format_message(event, "cef", "gw-1")),
        ("format + frame + queue (syslog send)", enqueue),
        ("render /metrics", metrics.render),
    ]
    for name, function in rows:
        print(f"{name:40} {per_call(function, args.calls, args.repeats):8.2f} us")


if __name__ == "__main__":
    main()
