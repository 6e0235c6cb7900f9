"""Benchmark: decision time per request, and policy load time and memory.

Measures ``aipolicy.decide(policy, RequestFacts(hosts=(host,), path="/v1/chat"))``
in µs per call for:

* a policy whose big list is a list *file* (``lists: {big: {file: big.txt}}``,
  one rule ``match: {lists: [big]}``) with 10, 10,000 and 1,000,000 domains;
* a policy of N separate rules, each ``match: {domains: [one domain]}``, for
  N = 10 and 10,000 (a million separate YAML rules is impractical: the YAML
  parser alone would need minutes and gigabytes; big lists belong in list files);
* the shipped default policy: a non-AI host, chat.deepseek.com, api.openai.com
  and a DeepSeek weight download from huggingface.co.

For the synthetic policies, each case cycles through a pool of distinct hosts
(so a 1M-entry table is probed at many places, not one cache-hot slot): hosts
*not* in the list (the common case) and subdomains of listed entries.

Then, in fresh subprocesses, the wall time of ``load_policy`` on the
1M-entry list policy and the memory it costs: peak RSS of that process minus
peak RSS of a process that only imports aipolicy and loads the default policy,
plus tracemalloc's peak and retained figures.

Targets: load <= 2 s and <= 200 MB at 1M entries; decision median <= 2 µs,
flat in list size. Run from the repo root:  .venv/bin/python bench/decision.py
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aipolicy

PATH = "/v1/chat"
POOL = 1024  # distinct hosts cycled through per synthetic case
TLDS = ("com", "net", "org", "io", "ai", "dev", "cn")
FLAT_TOLERANCE = 1.25  # "flat": the 1M median is at most this times the 10-entry median

TARGET_LOAD_S = 2.0
TARGET_MEMORY_MB = 200.0
TARGET_DECISION_US = 2.0


# --- building policies ------------------------------------------------------


def domain(i: int) -> str:
    """The i-th synthetic list entry: two labels, ~20 characters, like a blocklist."""
    return f"s{i:07d}-{(i * 7919) % 100_000:05d}.{TLDS[i % len(TLDS)]}"


def unlisted_host(j: int) -> str:
    """A host with the same shape as a listed one's subdomain, under a name no list holds."""
    return f"www.u{j:07d}-unlisted.{TLDS[j % len(TLDS)]}"


def listed_host(j: int, size: int) -> str:
    """A subdomain of an entry spread over the list (matches via a parent-label probe)."""
    return "api." + domain((j * 2_654_435_761) % size)


def write_list_policy(directory: Path, size: int) -> Path:
    """A policy with one list file of `size` domains and one rule that uses it."""
    policy = directory / f"list-{size}.yaml"
    if policy.exists():
        return policy
    with (directory / f"big-{size}.txt").open("w") as out:  # streamed: keeps this process small
        out.writelines(domain(i) + "\n" for i in range(size))
    policy.write_text(
        "version: 1\n"
        "default: allow\n"
        "lists:\n"
        f"  big: {{file: big-{size}.txt}}\n"
        "rules:\n"
        "  - id: big-list\n"
        "    action: block\n"
        "    match: {lists: [big]}\n"
    )
    return policy


def write_rules_policy(directory: Path, size: int) -> Path:
    """A policy of `size` separate rules, each matching one domain."""
    rules = "".join(f"  - id: r{i}\n    action: block\n    match: {{domains: [{domain(i)}]}}\n" for i in range(size))
    policy = directory / f"rules-{size}.yaml"
    policy.write_text(f"version: 1\ndefault: allow\nrules:\n{rules}")
    return policy


# --- timing decide() ----------------------------------------------------------


@dataclass
class Case:
    """One thing to time: function(policy, facts) over a pool of request facts."""

    label: str
    policy: aipolicy.Policy | None
    pool: list[aipolicy.RequestFacts]
    action: str = ""
    rule: str = ""
    function: Callable[[Any, Any], object] = aipolicy.decide
    group: tuple[str, int, str, str] | None = None  # synthetic cases: (form, size, kind, mode: pool|same|uncached)
    runs_us: list[float] = field(default_factory=list)  # µs per call, one figure per repetition

    @property
    def median(self) -> float:
        return statistics.median(self.runs_us)


def _noop(policy: object, facts: object) -> None:
    return None


def decide_uncached(policy: aipolicy.Policy, facts: aipolicy.RequestFacts) -> aipolicy.Decision:
    """decide() with the per-name decision cache emptied first: every call takes the miss path
    (normalise, index probes, verdict). Emptying a one-entry dict costs about 0.02 µs."""
    policy.decisions.clear()
    return aipolicy.decide(policy, facts)


def time_once(case: Case, calls: int) -> float:
    """µs per call of case.function(policy, facts), cycling through the pool."""
    function, policy, pool = case.function, case.policy, case.pool
    rounds = max(1, calls // len(pool))
    gc.collect()
    start = time.perf_counter()
    for _ in range(rounds):
        for facts in pool:
            function(policy, facts)
    return (time.perf_counter() - start) / (rounds * len(pool)) * 1e6


def run_interleaved(cases: list[Case], calls: int, repeats: int) -> None:
    """Time every case once per round, round after round, so that a slow spell of the
    machine spreads over all cases instead of skewing one; one untimed warm-up round."""
    for case in cases:
        time_once(case, min(calls, 3 * len(case.pool)))
    for _ in range(repeats):
        for case in cases:
            case.runs_us.append(time_once(case, calls))


def decide_case(
    label: str,
    policy: aipolicy.Policy,
    hosts: list[str],
    path: str = PATH,
    group: tuple[str, int, str, str] | None = None,
    uncached: bool = False,
) -> Case:
    """A decide() case; checks that the whole pool gets the same action."""
    pool = [aipolicy.RequestFacts(hosts=(h,), path=path) for h in hosts]
    decisions = [aipolicy.decide(policy, f) for f in pool]
    actions = {d.action for d in decisions}
    if len(actions) != 1:
        raise SystemExit(f"{label}: the pool's hosts get different actions: {actions}")
    rules = sorted({d.rule for d in decisions})
    rule = rules[0] if len(rules) == 1 else f"{len(rules)} different rules"
    action = actions.pop() + ("" if all(d.final for d in decisions) else ", not final: needs the body")
    case = Case(label, policy, pool, action, rule, group=group)
    if uncached:
        case.function = decide_uncached
    return case


def timed_load(path: Path) -> tuple[aipolicy.Policy, float]:
    start = time.perf_counter()
    policy = aipolicy.load_policy(path)
    return policy, time.perf_counter() - start


def synthetic_cases(directory: Path, sizes: list[int], rule_sizes: list[int]) -> tuple[list[Case], dict[str, float]]:
    """Four cases per synthetic policy: a host not in the list and a subdomain of an
    entry, each over 1,024 distinct hosts and with one host repeated (cache-hot);
    and the in-process load time of each policy."""
    cases: list[Case] = []
    loads: dict[str, float] = {}
    forms = [("list file", s, write_list_policy) for s in sizes] + [
        ("separate rules", s, write_rules_policy) for s in rule_sizes
    ]
    for form, size, writer in forms:
        policy, seconds = timed_load(writer(directory, size))
        loads[f"{form}, {size:,}"] = seconds
        pools = {
            "host not in list": [unlisted_host(j) for j in range(POOL)],
            "subdomain of an entry": [listed_host(j, size) for j in range(min(POOL, size))],
        }
        for kind, hosts in pools.items():
            for mode in ("pool", "same", "uncached"):
                chosen = hosts[:1] if mode == "same" else hosts
                label = (
                    f"{form}, {size:>9,}: {kind}, "
                    + {
                        "pool": f"{len(chosen):,} hosts",
                        "same": "same host",
                        "uncached": f"{len(chosen):,} hosts, no cache",
                    }[mode]
                )
                group = (form, size, kind, mode)
                cases.append(decide_case(label, policy, chosen, group=group, uncached=mode == "uncached"))
    return cases, loads


def default_policy_cases() -> list[Case]:
    policy = aipolicy.load_policy(aipolicy.default_policy())
    weights = "/deepseek-ai/DeepSeek-R1/resolve/main/model.safetensors"
    return [
        decide_case("default policy: www.example.org (non-AI)", policy, ["www.example.org"]),
        decide_case("default policy: www.example.org, no cache", policy, ["www.example.org"], uncached=True),
        decide_case("default policy: chat.deepseek.com, no cache", policy, ["chat.deepseek.com"], uncached=True),
        decide_case("default policy: 192.0.2.10 (an IP literal, non-AI)", policy, ["192.0.2.10"]),
        decide_case("default policy: 192.0.2.10, no cache", policy, ["192.0.2.10"], uncached=True),
        decide_case("default policy: chat.deepseek.com", policy, ["chat.deepseek.com"]),
        decide_case("default policy: api.openai.com", policy, ["api.openai.com"]),
        decide_case("default policy: huggingface.co DeepSeek weights", policy, ["huggingface.co"], weights),
    ]


# --- a traffic mix: the median decision as the proxy sees it ------------------------------

MIX_UNIVERSE = 200_000  # distinct host names in the mix
MIX_ZIPF = 1.0  # popularity falls as 1/rank**s, as web traffic does
MIX_AI_SHARE = 0.05  # of requests going to AI-app hosts from the catalogue


def mix_requests(policy: aipolicy.Policy, count: int, seed: int = 20261130) -> list[aipolicy.RequestFacts]:
    """``count`` requests over MIX_UNIVERSE names with Zipf popularity: most to non-AI sites, a
    MIX_AI_SHARE to the catalogue's AI hosts (subdomains of wildcard entries too), a few to IP
    literals; AI API hosts with API paths, the rest with "/". Each with its path, as at
    ``requestheaders``. The same requests for the same seed."""
    import random

    rng = random.Random(seed)
    ai_hosts = sorted(
        {
            ("www." if t.host.startswith("*.") else "") + t.host.lstrip("*.=")
            for app in policy.catalog.apps.values()
            for t in app.targets
            if t.kind == "domain" and t.host
        }
    )
    other = [unlisted_host(j) for j in range(MIX_UNIVERSE - len(ai_hosts) - 1_000)]
    addresses = [f"198.51.{j // 256 % 256}.{j % 256}" for j in range(1_000)]
    weights = [1 / (rank + 1) ** MIX_ZIPF for rank in range(len(other) + len(addresses))]
    names = rng.choices(other + addresses, weights=weights, k=count)
    ai_weights = [1 / (rank + 1) ** MIX_ZIPF for rank in range(len(ai_hosts))]
    for i in range(count):
        if rng.random() < MIX_AI_SHARE:
            names[i] = rng.choices(ai_hosts, weights=ai_weights)[0]
    return [
        aipolicy.RequestFacts(hosts=(name,), path="/v1/chat/completions" if name.startswith("api.") else "/")
        for name in names
    ]


def timer_cost_ns() -> float:
    clock = time.perf_counter_ns
    empty = []
    for _ in range(20_000):
        start = clock()
        empty.append(clock() - start)
    return statistics.median(empty)


def time_each(policy: aipolicy.Policy, requests: list[aipolicy.RequestFacts], timer: float, times: list[float]) -> int:
    """Each decide() timed on its own (µs, the timer's own cost taken off) into ``times``, with
    the policy's per-name cache as the proxy has it (kept between calls, emptied when full);
    returns how many names were not in the cache."""
    clock, decide, decisions = time.perf_counter_ns, aipolicy.decide, policy.decisions
    misses = 0
    for facts in requests:
        misses += facts.hosts[0] not in decisions
        start = clock()
        decide(policy, facts)
        times.append((clock() - start - timer) / 1000)
    return misses


def traffic_mix(directory: Path, count: int, sizes: list[int]) -> list[tuple[str, list[float], float]]:
    """The mix through the default policy and each list-file policy, interleaved in blocks of
    10,000 requests so that a slow spell of the machine hits every policy alike."""
    policies = [("default policy", aipolicy.load_policy(aipolicy.default_policy()))]
    policies += [
        (f"list file, {size:,} entries", aipolicy.load_policy(write_list_policy(directory, size))) for size in sizes
    ]
    requests = mix_requests(policies[0][1], count)
    timer = timer_cost_ns()
    for _, policy in policies:  # warm the code paths, then start from an empty cache as a new proxy does
        time_each(policy, requests[:10_000], timer, [])
        policy.decisions.clear()
    times: dict[str, list[float]] = {label: [] for label, _ in policies}
    misses = dict.fromkeys(times, 0)
    gc.collect()
    for block in range(0, count, 10_000):
        for label, policy in policies:
            misses[label] += time_each(policy, requests[block : block + 10_000], timer, times[label])
    return [(label, times[label], misses[label] / count) for label, _ in policies]


def print_mix(results: list[tuple[str, list[float], float]], count: int) -> None:
    print(
        f"\nA traffic mix: {count:,} requests over {MIX_UNIVERSE:,} names (Zipf s={MIX_ZIPF:g}; {MIX_AI_SHARE:.0%} to "
        "AI hosts from the catalogue), each decide() timed on its own, the per-name cache as in the proxy"
    )
    print(f"{'policy':<34} {'median':>7} {'p90':>7} {'p99':>7} {'names not cached':>17}")
    for label, times, miss in results:
        q = statistics.quantiles(times, n=100)
        print(f"{label:<34} {statistics.median(times):>7.2f} {q[89]:>7.2f} {q[98]:>7.2f} {miss:>17.1%}")


def overhead_case() -> Case:
    """The timing loop itself, calling a function that does nothing."""
    pool = [aipolicy.RequestFacts(hosts=(unlisted_host(j),), path=PATH) for j in range(POOL)]
    return Case("timing loop alone", None, pool, function=_noop)


# --- load time and memory in fresh processes -------------------------------------

_CHILD = r"""
import json, resource, sys, time
mode, path = sys.argv[1], sys.argv[2]
if mode == "tracemalloc":
    import tracemalloc
import aipolicy
aipolicy.load_policy(aipolicy.default_policy())  # same baseline as the 'baseline' child
result = {}
if mode == "load":
    start = time.perf_counter()
    policy = aipolicy.load_policy(path)
    result["seconds"] = time.perf_counter() - start
    result["entries"] = policy.hosts.size
elif mode == "tracemalloc":
    tracemalloc.start()
    policy = aipolicy.load_policy(path)
    current, peak = tracemalloc.get_traced_memory()
    result["current"], result["peak"] = current, peak
result["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:  # VmHWM: this process's own peak RSS (ru_maxrss also counts the parent's RSS at fork)
    status = open("/proc/self/status").read()
    result["hwm_kb"] = int(status.split("VmHWM:")[1].split()[0])
except (OSError, IndexError, ValueError):
    result["hwm_kb"] = result["maxrss_kb"]
print(json.dumps(result))
"""


def child(mode: str, path: Path, timeout: float = 120) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(path)], capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise SystemExit(f"child {mode} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def load_and_memory(policy_path: Path, loads: int, with_tracemalloc: bool) -> dict[str, object]:
    baselines = [child("baseline", policy_path) for _ in range(loads)]
    runs = [child("load", policy_path) for _ in range(loads)]
    baseline_kb = statistics.median(b["hwm_kb"] for b in baselines)
    result: dict[str, object] = {
        "entries": int(runs[0]["entries"]),
        "seconds": [r["seconds"] for r in runs],
        "rss_mb": [(r["hwm_kb"] - baseline_kb) / 1024 for r in runs],
        "baseline_rss_mb": baseline_kb / 1024,
        "maxrss_mb": [(r["maxrss_kb"] - b["maxrss_kb"]) / 1024 for r, b in zip(runs, baselines, strict=True)],
    }
    if with_tracemalloc:
        traced = child("tracemalloc", policy_path, timeout=300)
        result["traced_peak_mb"] = traced["peak"] / 2**20
        result["traced_current_mb"] = traced["current"] / 2**20
    return result


# --- output --------------------------------------------------------------------


def verdict(met: bool, figure: str) -> str:
    return f"met ({figure})" if met else f"MISSED ({figure})"


def print_timings(cases: list[Case], overhead: float) -> None:
    print(
        f"\nDecision time, µs per call (median [min–max] of {len(cases[0].runs_us)} repetitions; "
        f"includes the timing loop's own {overhead:.3f} µs per call)"
    )
    print(f"{'case':<70} {'median':>7} {'min–max':>12}  decision")
    for t in cases:
        spread = f"{min(t.runs_us):.2f}–{max(t.runs_us):.2f}"
        print(f"{t.label:<70} {t.median:>7.2f} {spread:>12}  {t.action} ({t.rule})")


def print_loads(loads: dict[str, float]) -> None:
    print("\nIn-process load_policy time of the synthetic policies (one run each, warm catalogue cache if any):")
    for label, seconds in loads.items():
        print(f"  {label:<28} {seconds:8.3f} s")


def print_memory(memory: dict[str, object]) -> None:
    seconds, rss = memory["seconds"], memory["rss_mb"]
    print(
        f"\nLoading the list-file policy with {memory['entries']:,} entries, each in a fresh process ({len(seconds)} runs):"
    )  # type: ignore[arg-type]
    print(
        f"  load_policy wall time   median {statistics.median(seconds):.2f} s  [{min(seconds):.2f}–{max(seconds):.2f}]"
    )  # type: ignore[type-var, arg-type]
    print(
        f"  peak RSS over baseline  median {statistics.median(rss):.0f} MB  [{min(rss):.0f}–{max(rss):.0f}]"  # type: ignore[type-var, arg-type]
        f"  (baseline: import aipolicy + default policy = {memory['baseline_rss_mb']:.0f} MB)"
    )
    maxrss = memory["maxrss_mb"]
    print(
        f"  same by ru_maxrss       median {statistics.median(maxrss):.0f} MB  [{min(maxrss):.0f}–{max(maxrss):.0f}]"  # type: ignore[type-var, arg-type]
        "  (for comparison; Linux carries a parent's peak RSS into its child's ru_maxrss, so VmHWM is the figure used)"
    )
    if "traced_peak_mb" in memory:
        print(
            f"  tracemalloc             peak {memory['traced_peak_mb']:.0f} MB, retained after load {memory['traced_current_mb']:.0f} MB"
        )


def flatness_rows(cases: list[Case], form: str, sizes: list[int]) -> list[tuple[str, str]]:
    """Largest size's median against the smallest's, per kind of host."""
    if len(sizes) < 2:
        return []
    small, large = min(sizes), max(sizes)
    groups = {c.group: c for c in cases if c.group}
    rows = []
    for kind in ("host not in list", "subdomain of an entry"):
        first, last = groups[(form, small, kind, "pool")], groups[(form, large, kind, "pool")]
        hot_first, hot_last = groups[(form, small, kind, "same")], groups[(form, large, kind, "same")]
        cold_first, cold_last = groups[(form, small, kind, "uncached")], groups[(form, large, kind, "uncached")]
        ratio, hot_ratio = last.median / first.median, hot_last.median / hot_first.median
        cold_ratio = cold_last.median / cold_first.median
        figure = (
            f"{first.median:.2f} -> {last.median:.2f} µs, {ratio:.2f}x; flat means <= {FLAT_TOLERANCE}x; "
            f"same host repeated: {hot_ratio:.2f}x; no decision cache: {cold_ratio:.2f}x"
        )
        rows.append((f"flat, {form}, {kind}, {small:,} -> {large:,}", verdict(ratio <= FLAT_TOLERANCE, figure)))
    return rows


def print_verdicts(
    cases: list[Case],
    memory: dict[str, object] | None,
    sizes: list[int],
    rule_sizes: list[int],
    mix: list[tuple[str, list[float], float]] | None = None,
) -> None:
    rows: list[tuple[str, str]] = []
    if memory is not None:
        load = statistics.median(memory["seconds"])  # type: ignore[arg-type]
        rss = statistics.median(memory["rss_mb"])  # type: ignore[arg-type]
        n = f"{memory['entries']:,}"
        rows.append((f"load {n} entries <= {TARGET_LOAD_S:g} s", verdict(load <= TARGET_LOAD_S, f"{load:.2f} s")))
        rows.append(
            (
                f"memory {n} entries <= {TARGET_MEMORY_MB:g} MB",
                verdict(rss <= TARGET_MEMORY_MB, f"{rss:.0f} MB peak RSS over baseline"),
            )
        )
    if mix:
        label, times, _ = mix[0]
        median = statistics.median(times)
        worst_label, worst_times, _ = max(mix, key=lambda m: statistics.median(m[1]))
        figure = f"{label} {median:.2f} µs; slowest: {worst_label} {statistics.median(worst_times):.2f} µs"
        met = all(statistics.median(m[1]) <= TARGET_DECISION_US for m in mix)
        rows.append((f"decision median <= {TARGET_DECISION_US:g} µs, traffic mix", verdict(met, figure)))
        medians = [statistics.median(m[1]) for m in mix[1:]]
        if len(medians) > 1:
            ratio = medians[-1] / medians[0]
            rows.append(
                ("flat, traffic mix, smallest -> largest list", verdict(ratio <= FLAT_TOLERANCE, f"{ratio:.2f}x"))
            )
    slow = [t for t in cases if t.median > TARGET_DECISION_US]
    worst = max(cases, key=lambda t: t.median)
    figure = f"{len(slow)} of {len(cases)} cases over; worst {worst.median:.2f} µs: {' '.join(worst.label.split())}"
    rows.append((f"decision <= {TARGET_DECISION_US:g} µs in every single case below", verdict(not slow, figure)))
    rows += flatness_rows(cases, "list file", sizes) + flatness_rows(cases, "separate rules", rule_sizes)
    print("\nTargets:")
    for label, result in rows:
        print(f"  {label:<58} {result}")
    for t in slow:
        print(f"    over {TARGET_DECISION_US:g} µs: {' '.join(t.label.split()):<70} {t.median:.2f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="short run: 3 repetitions of 10,000 calls, one load run, no tracemalloc"
    )
    parser.add_argument("--repeats", type=int, default=None, help="repetitions per case (default 7; quick 3)")
    parser.add_argument("--calls", type=int, default=None, help="calls per repetition (default 50,000; quick 10,000)")
    parser.add_argument(
        "--loads", type=int, default=None, help="fresh-process load runs at the largest size (default 3; quick 1)"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 10_000, 1_000_000], help="list-file sizes")
    parser.add_argument("--rule-sizes", type=int, nargs="+", default=[10, 10_000], help="numbers of separate rules")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the (slower) tracemalloc run")
    parser.add_argument(
        "--mix", type=int, default=None, help="requests in the traffic mix (default 300,000; quick 100,000; 0: none)"
    )
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 7)
    calls = args.calls or (10_000 if args.quick else 50_000)
    loads = args.loads or (1 if args.quick else 3)
    mix_count = args.mix if args.mix is not None else (100_000 if args.quick else 300_000)

    print(f"aipolicy {aipolicy.__version__}, Python {sys.version.split()[0]}; {repeats} x {calls:,} calls per case")
    with tempfile.TemporaryDirectory(prefix="aipolicy-bench-") as tmp:
        directory = Path(tmp)
        # Fresh-process load and memory first, while this process is still small.
        largest = write_list_policy(directory, max(args.sizes))
        memory = load_and_memory(largest, loads, not (args.quick or args.no_tracemalloc))
        cases, load_times = synthetic_cases(directory, args.sizes, args.rule_sizes)
        cases += default_policy_cases()
        overhead = overhead_case()
        run_interleaved(cases + [overhead], calls, repeats)
        mix = traffic_mix(directory, mix_count, args.sizes) if mix_count else None
        print_timings(cases, overhead.median)
        if mix:
            print_mix(mix, mix_count)
        print_loads(load_times)
        print_memory(memory)
        print_verdicts(cases, memory, args.sizes, args.rule_sizes, mix)


if __name__ == "__main__":
    main()
