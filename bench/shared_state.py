"""Cost per request of the shared warn and quota state (aipolicy_state_dir) on the proxy's event loop.

Run from the repository root: .venv/bin/python bench/shared_state.py [--quick] [--requests N] [--repeats R]

Cases, each N calls, the median and best of R runs in microseconds per call:

- memory charge:     QuotaTracker.charge (one process's memory, the default)
- shared charge:     SharedQuotaTracker.charge: one BEGIN IMMEDIATE transaction in SQLite (WAL)
- shared, 1,000 subjects: the same, spread over 1,000 (rule, subject) rows
- shared, 2 processes: two processes charging one table back to back with no other work, so one
                     always waits for the other (the cost each sees, waits included: the worst case;
                     a proxy does about 2 ms of other work per request). No target.
- add_bytes:         SharedQuotaTracker.add_bytes (a response's Content-Length; one UPDATE)
- acknowledged, hit: SharedAcknowledgements.acknowledged once cached in the process
- acknowledged, miss: a subject that has not acknowledged (one SELECT)
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipolicy import (  # noqa: E402
    QuotaSettings,
    QuotaTracker,
    SharedAcknowledgements,
    SharedQuotaTracker,
    SharedState,
)

# A quota rule's budget per request: the proxy spends about 2 ms of CPU per request (bench/README.md);
# 5% of it is 100 µs.
TARGET_US = 100.0
SETTINGS = QuotaSettings(per=3600, requests=10**9)
NOW = time.time()


def timed(function: Callable[[int], object], count: int) -> float:
    start = time.perf_counter()
    for number in range(count):
        function(number)
    return (time.perf_counter() - start) / count * 1e6


def _worker(directory: str, count: int, start: float, queue: multiprocessing.Queue[float]) -> None:
    state = SharedState(directory)
    tracker = SharedQuotaTracker(state)
    while time.time() < start:
        time.sleep(0.001)
    queue.put(timed(lambda n: tracker.charge("api", f"user{n % 100}", SETTINGS, 100, NOW), count))
    state.close()


def two_processes(directory: str, count: int) -> float:
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[float] = context.Queue()
    start = time.time() + 1.5
    processes = [context.Process(target=_worker, args=(directory, count, start, queue)) for _ in range(2)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(30)
    return statistics.mean(results)


def one_run(directory: str, count: int) -> dict[str, float]:
    state = SharedState(directory)
    shared, memory = SharedQuotaTracker(state), QuotaTracker()
    acknowledgements = SharedAcknowledgements(state)
    acknowledgements.remember("alice", "chatgpt", NOW, 3600)
    cases: dict[str, Callable[[int], object]] = {
        "memory charge": lambda n: memory.charge("api", "alice", SETTINGS, 100, NOW),
        "shared charge": lambda n: shared.charge("api", "alice", SETTINGS, 100, NOW),
        "shared, 1,000 subjects": lambda n: shared.charge("api", f"user{n % 1000}", SETTINGS, 100, NOW),
        "add_bytes": lambda n: shared.add_bytes("api", "alice", SETTINGS, 1000, NOW),
        "acknowledged, hit": lambda n: acknowledgements.acknowledged("alice", "chatgpt", NOW),
        "acknowledged, miss": lambda n: acknowledgements.acknowledged(f"bob{n % 1000}", "chatgpt", NOW),
    }
    results = {name: timed(case, count) for name, case in cases.items()}
    state.close()
    results["shared, 2 processes"] = two_processes(directory, count)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer calls and runs")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    count = 2_000 if arguments.quick else arguments.requests
    repeats = 2 if arguments.quick else arguments.repeats
    results: dict[str, list[float]] = {}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as directory:
            for name, value in one_run(directory, count).items():
                results.setdefault(name, []).append(value)
    print(
        f"µs per call, {count:,} calls, median [best] of {repeats} runs; SQLite {__import__('sqlite3').sqlite_version}"
    )
    for name, values in results.items():
        median = statistics.median(values)
        verdict = (
            ""
            if name.startswith(("memory", "acknowledged", "shared, 2"))
            else f"  target ≤ {TARGET_US:.0f} µs: " + ("met" if median <= TARGET_US else "MISSED")
        )
        print(f"{name:24} {median:8.1f} [{min(values):.1f}]{verdict}")


if __name__ == "__main__":
    main()
