"""Time per event written to the event log: the hash-chained writer against a plain append.

Run from the repository root: .venv/bin/python bench/eventlog.py [--quick] [--events N] [--repeats R]

Cases, each writing N realistic decision events (about 900 bytes) to a fresh file in a
temporary directory, the best and median of R runs reported in microseconds per event:

- plain:      json.dumps + one os.write on an O_APPEND file (the writer before the chain)
- chained:    EventLog: flock, fstat + stat, the seq/prev link (SHA-256), one os.write
- rotating:   EventLog rotating every 1 MiB (rename, reopen, gzip in the worker thread)
- 2 writers:  two EventLogs on one file from two threads (the per-event cost of each)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipolicy import Decision, EventLog, RequestFacts, decision_event  # noqa: E402

# The writer's budget per logged event on the proxy's event loop: 5% of the proxy's CPU per request
# (about 2 ms on the benchmark machine, see bench/README.md). Only block and monitor decisions are logged.
TARGET_US = 100.0


def sample_event() -> dict[str, object]:
    decision = Decision(
        "block",
        "deepseek-any-capacity",
        "DeepSeek may not be used in any capacity (USN directive of 24 January 2025).",
        host="chat.deepseek.com",
        hosts=("chat.deepseek.com",),
        app="deepseek",
        vendor="deepseek",
        categories=("genai", "genai-prc"),
        policy="bf02112e26ea43ef",
    )
    facts = RequestFacts(
        hosts=("chat.deepseek.com",), path="/api/v0/chat/completion", method="POST", client_ip="10.1.2.3"
    )
    return decision_event(
        decision, facts, stage="request", user_agent="Mozilla/5.0 (X11; Linux x86_64)", proxy_id="gw-1"
    )


def plain(path: str, events: list[dict[str, object]]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        for event in events:
            os.write(fd, (json.dumps(event, ensure_ascii=True, separators=(",", ":"), default=str) + "\n").encode())
    finally:
        os.close(fd)


def chained(max_bytes: int = 0) -> Callable[[str, list[dict[str, object]]], None]:
    def run(path: str, events: list[dict[str, object]]) -> None:
        log = EventLog(path, max_bytes=max_bytes)
        try:
            for event in events:
                log.write(event)
        finally:
            log.close()  # waits for compression: counted, though it runs beside the writer

    return run


def two_writers(path: str, events: list[dict[str, object]]) -> None:
    logs = [EventLog(path), EventLog(path)]
    half = len(events) // 2
    threads = [threading.Thread(target=lambda log=log: [log.write(e) for e in events[:half]]) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in logs:
        log.close()


def measure(case: Callable[[str, list[dict[str, object]]], None], count: int, repeats: int) -> list[float]:
    events = [dict(sample_event(), id=f"{n:032x}") for n in range(count)]
    results = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "events.jsonl")
            start = time.perf_counter()
            case(path, events)
            results.append((time.perf_counter() - start) / count * 1e6)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5,000 events, 3 runs")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    count, repeats = (5_000, 3) if options.quick else (options.events, options.repeats)
    size = len(json.dumps(sample_event(), separators=(",", ":"))) + 90
    print(f"{count:,} events of about {size} bytes, {repeats} runs; microseconds per event (best / median)")
    cases = {
        "plain append": plain,
        "chained": chained(),
        "chained, rotating at 1 MiB": chained(1 << 20),
        "chained, 2 writers on one file": two_writers,
    }
    figures = {}
    for name, case in cases.items():
        results = measure(case, count, repeats)
        figures[name] = min(results)
        print(f"  {name:32} {min(results):7.1f} / {statistics.median(results):7.1f}")
    extra = figures["chained"] - figures["plain append"]
    verdict = "ok" if figures["chained, rotating at 1 MiB"] <= TARGET_US else "OVER"
    print(f"chain costs {extra:.1f} us more per event; rotating writer within {TARGET_US:.0f} us: {verdict}")


if __name__ == "__main__":
    main()
