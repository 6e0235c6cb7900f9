"""Benchmark: `aipolicy violations summary` over a large event log, beside DuckDB; and its memory.

1. Writes one JSON Lines file of N events (default 1,000,000) laid out as the proxy writes
   them (``decision_event``'s fields, compact JSON, ASCII), from a fixed seed: the same file
   on every run.
2. Times our aggregation on it, the code path of ``violations summary`` (``read_events`` →
   ``filter_events`` → ``summarise``), for ``--by rule`` and ``--by user,app``, and DuckDB's
   equivalent ``GROUP BY`` over ``read_json`` of the same file, in the same run, interleaved,
   and prints both and the ratio. DuckDB runs with its default threads (every core) and with
   one thread, for a like-for-like comparison with our single-threaded reader.
3. Peak RSS of a fresh process running the summary at N and at 10 × N events (the big file
   written streaming, then deleted): memory must not grow with the number of events.

Run from the repository root (DuckDB is a bench-only dependency: ``pip install -e '.[bench]'``):

    .venv/bin/python bench/summary.py                 # 1M compared, 1M vs 10M memory
    .venv/bin/python bench/summary.py --quick         # 200,000 events, 2,000,000 for memory
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.25  # ours at most this times DuckDB's time
USERS = 5000
DAYS = 90
APPS = (
    ("deepseek", "deepseek", "chat.deepseek.com", "deepseek-any-capacity", "block", "USN-2025-01-24-DEEPSEEK"),
    ("deepseek", "deepseek", "api.deepseek.com", "deepseek-any-capacity", "block", "USN-2025-01-24-DEEPSEEK"),
    ("qwen", "alibaba", "chat.qwen.ai", "prc-genai", "block", "ORG-2025-07-PRC"),
    ("kimi", "moonshot", "kimi.moonshot.cn", "prc-genai", "block", "ORG-2025-07-PRC"),
    ("chatgpt", "openai", "chatgpt.com", "ai-monitor", "monitor", None),
    ("claude", "anthropic", "claude.ai", "ai-monitor", "monitor", None),
    ("gemini", "google", "gemini.google.com", "ai-monitor", "monitor", None),
    ("copilot", "microsoft", "copilot.microsoft.com", "ai-monitor", "monitor", None),
)
GROUPS = (["eng"], ["eng", "admins"], ["finance"], ["sales"], [])

SUMMARY_CODE = """
import resource, sys, time
from aipolicy.eventlog._reader import read_events
from aipolicy.analytics._summary import EventFilter, filter_events, summarise
start = time.perf_counter()
result = summarise(filter_events(read_events([sys.argv[1]]), EventFilter()), sys.argv[2].split(","))
elapsed = time.perf_counter() - start
peak_kib = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        peak_kib = int(line.split()[1])
print(result.total, len(result.groups), f"{elapsed:.3f}", peak_kib)
"""

DUCKDB_CODE = """
import sys, time, duckdb
path, by, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")  # it would print to stdout
if threads:
    con.execute(f"SET threads = {threads}")
keys = {"rule": "rule", "user": "coalesce(\\"user\\", client_ip)", "app": "app"}
columns = ", ".join(keys[key] for key in by.split(","))
query = f'''
    SELECT {columns}, count(*) AS count, count(DISTINCT coalesce("user", client_ip)) AS users,
           min(ts) AS first, max(ts) AS last
    FROM read_json(?, format = 'newline_delimited', columns = {{
        'event': 'VARCHAR', 'ts': 'VARCHAR', 'rule': 'VARCHAR', 'app': 'VARCHAR',
        'user': 'VARCHAR', 'client_ip': 'VARCHAR'}})
    WHERE event = 'decision'
    GROUP BY ALL ORDER BY count DESC
'''
start = time.perf_counter()
rows = con.execute(query, [path]).fetchall()
elapsed = time.perf_counter() - start
print(sum(row[-4] for row in rows), len(rows), f"{elapsed:.3f}")
"""


def write_log(path: Path, count: int, seed: int = 20261130) -> int:
    """The same ``count`` events for the same seed; returns the file's size in bytes."""
    rng = random.Random(seed)
    base = 1_761_955_200  # 2025-11-01T00:00:00Z
    dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
    with open(path, "w", encoding="ascii") as out:
        lines = []
        for number in range(count):
            app, vendor, host, rule, action, directive = APPS[rng.randrange(len(APPS))]
            user_number = min(int(rng.paretovariate(1.2)), USERS)
            second = base + (number * DAYS * 86400) // count
            event = {
                "v": 1,
                "id": f"{rng.getrandbits(128):032x}",
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)) + f".{number % 1000:03d}Z",
                "event": "decision",
                "action": action,
                "rule": rule,
                "app": app,
                "vendor": vendor,
                "category": "genai",
                "categories": ["genai"],
                "host": host,
                "hosts": [host],
                "sni": host,
                "method": "POST" if number % 3 else "GET",
                "scheme": "https",
                "port": 443,
                "path": "/api/v0/chat/completion" if number % 3 else "/",
                "client_ip": f"10.{user_number // 65536}.{user_number // 256 % 256}.{user_number % 256}",
                "user": None if number % 50 == 0 else f"user{user_number:05d}",
                "groups": GROUPS[user_number % len(GROUPS)],
                "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0",
                "reason": "DeepSeek may not be used in any capacity" if vendor == "deepseek" else "AI apps are watched",
                "model": None,
                "directive": directive,
                "policy": "bf02112e26ea43ef",
                "stage": "request",
                "proxy": f"gw-{number % 4 + 1}",
            }
            lines.append(dumps(event))
            if len(lines) == 10000:
                out.write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            out.write("\n".join(lines) + "\n")
    return path.stat().st_size


def run(code: str, *args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"bench/summary.py: a measurement failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1].split()


def compare(path: Path, count: int, repeats: int) -> bool:
    print(f"\n## {count:,} events: our summary beside DuckDB (median of {repeats}, [min–max], seconds)\n")
    print("| --by | ours | DuckDB, all threads | ours ÷ DuckDB | DuckDB, 1 thread | ours ÷ DuckDB 1 thread |")
    print("|---|---|---|---|---|---|")
    ok = True
    for by in ("rule", "user,app"):
        times: dict[str, list[float]] = {"ours": [], "duck": [], "duck1": []}
        for _ in range(repeats):  # interleaved, so that a slow spell hits every contender
            total, groups, seconds, _ = run(SUMMARY_CODE, str(path), by)
            times["ours"].append(float(seconds))
            duck_total, duck_groups, duck_seconds = run(DUCKDB_CODE, str(path), by, "0")
            times["duck"].append(float(duck_seconds))
            duck1_total, duck1_groups, duck1_seconds = run(DUCKDB_CODE, str(path), by, "1")
            times["duck1"].append(float(duck1_seconds))
            if (total, groups) != (duck_total, duck_groups) or (total, groups) != (duck1_total, duck1_groups):
                sys.exit(f"results differ: ours {total} events/{groups} groups, DuckDB {duck_total}/{duck_groups}")
        med = {name: statistics.median(values) for name, values in times.items()}
        span = {name: f"{med[name]:.2f} [{min(v):.2f}–{max(v):.2f}]" for name, v in times.items()}
        ratio, ratio1 = med["ours"] / med["duck"], med["ours"] / med["duck1"]
        ok = ok and ratio <= TARGET_RATIO
        print(f"| {by} | {span['ours']} | {span['duck']} | **{ratio:.2f}×** | {span['duck1']} | {ratio1:.2f}× |")
        print(f"|  | {count / med['ours']:,.0f} events/s | {count / med['duck']:,.0f} events/s | | "
              f"{count / med['duck1']:,.0f} events/s | |")  # fmt: skip
    verdict = "met" if ok else "NOT met"
    print(f"\nTarget ours ≤ {TARGET_RATIO}× DuckDB (all threads): {verdict}. Both agree on every count.")
    return ok


def memory(directory: Path, small: int, large: int) -> None:
    """Peak RSS per --by: ``rule`` has the same 3 groups at any size (memory must stay flat);
    ``user,app`` meets more distinct users as the file grows (memory follows the groups)."""
    print(f"\n## Peak RSS of a summary process, {small:,} vs {large:,} events\n")
    print("| --by | events | file size | summary time | peak RSS (VmHWM) | groups |")
    print("|---|---|---|---|---|---|")
    peaks: dict[str, list[float]] = {"rule": [], "user,app": []}
    for count in (small, large):
        path = directory / f"events-{count}.jsonl"
        size = path.stat().st_size if path.exists() else write_log(path, count)
        for by, values in peaks.items():
            total, groups, seconds, peak_kib = run(SUMMARY_CODE, str(path), by)
            assert int(total) == count, (total, count)
            values.append(int(peak_kib) / 1024)
            print(
                f"| {by} | {count:,} | {size / 1e9:.2f} GB | {float(seconds):.1f} s | {values[-1]:.1f} MB | {groups} |"
            )
        if count == large:
            path.unlink()
    for by, values in peaks.items():
        print(f"\n--by {by}: peak RSS at {large:,} ÷ at {small:,}: {values[1] / values[0]:.2f} (1.00: no growth).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the compared file")
    parser.add_argument("--memory-events", type=int, default=10_000_000, help="events in the big file for memory")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the files (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="200,000 events, 2,000,000 for memory, 3 repeats")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--no-compare", action="store_true", help="skip the comparison with DuckDB")
    options = parser.parse_args()
    if options.quick:
        options.events, options.memory_events, options.repeats = 200_000, 2_000_000, 3
    try:
        import duckdb
    except ImportError:
        sys.exit("bench/summary.py needs DuckDB: .venv/bin/pip install -e '.[bench]'")
    print(f"Python {sys.version.split()[0]}, DuckDB {duckdb.__version__}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(dir=options.dir, prefix="aipolicy-bench-") as temporary:
        directory = Path(temporary)
        path = directory / f"events-{options.events}.jsonl"
        started = time.perf_counter()
        size = write_log(path, options.events)
        print(f"Wrote {options.events:,} events ({size / 1e6:.0f} MB) in {time.perf_counter() - started:.0f} s: {path}")
        if not options.no_compare:
            compare(path, options.events, options.repeats)
        if not options.no_memory:
            memory(directory, options.events, options.memory_events)


if __name__ == "__main__":
    main()
