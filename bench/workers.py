"""Benchmark: `aipolicy proxy --workers N` against one worker, on the same port.

Each configuration is the real command, `aipolicy proxy --workers N` (SO_REUSEPORT: the kernel
spreads connections over the workers), enforcing a copy of the shipped default policy. wrk
(N threads, 64 keep-alive connections) sends plain-HTTP requests in absolute form for an
allowed loopback upstream (nginx) through it. Configurations alternate in rounds; the figure is
requests/s, with the CPU time of all the proxy's processes per request.

Target (issue 7): N workers >= 0.8 * N x one worker. On a machine with fewer free cores than
N + the load generator + the upstream, the target cannot be met, and the script says so.
Run from the repository root:   .venv/bin/python bench/workers.py [--quick] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput  # noqa: E402
from throughput import HOST, ensure_tools, free_port, start, start_upstream  # noqa: E402

TARGET = 0.8


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (the workers)."""
    total = throughput.cpu_seconds(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            try:
                total += tree_cpu(int(child))
            except (OSError, ValueError):
                pass
    return total


def wrk(tool: str, directory: Path, proxy: int, upstream: int, seconds: float, threads: int) -> tuple[float, int]:
    script = directory / "absolute-form.lua"
    script.write_text(f'wrk.path = "http://{HOST}:{upstream}/"\nwrk.headers["Host"] = "{HOST}:{upstream}"\n')
    command = [tool, f"-t{threads}", "-c64", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script)]
    output = subprocess.run([*command, f"http://{HOST}:{proxy}/"], capture_output=True, text=True, timeout=seconds + 60)
    rps = throughput._number(r"Requests/sec:\s+([\d.]+)", output.stdout)
    requests = throughput._number(r"(\d+) requests in", output.stdout)
    if rps is None or requests is None:
        raise RuntimeError(f"could not read wrk's output:\n{output.stdout}{output.stderr}")
    return rps, int(requests)


def benchmark(args: argparse.Namespace, directory: Path, stack: ExitStack) -> None:
    tools = ensure_tools(not args.no_install)
    if not tools["wrk"] or not tools["nginx"]:
        raise SystemExit("wrk and nginx are needed: apt-get install -y wrk nginx")
    upstream, _ = start_upstream(tools, directory, stack)
    policy = throughput.snapshot_default_policy(directory)
    aipolicy_cli = [sys.executable, "-c", "from aipolicy.cli import main; main()"]
    configs: dict[int, tuple[int, int]] = {}
    for count in (1, args.workers):
        port = free_port()
        confdir = directory / f"confdir-{count}"
        command = [
            *aipolicy_cli, "proxy", "--policy", str(policy), "--port", str(port), "--confdir", str(confdir),
            "--log", str(directory / f"events-{count}.jsonl"), "--workers", str(count), "--reuse-port", "--", "-q",
        ]  # fmt: skip
        process = start(command, port, directory / f"proxy-{count}.out", stack, timeout=120)
        configs[count] = (port, process.pid)
    cores = os.cpu_count() or 1
    print(f"{cores} CPUs; load before the run: {Path('/proc/loadavg').read_text().split()[:3]}")
    results: dict[int, list[tuple[float, float]]] = {count: [] for count in configs}
    for count, (port, _) in configs.items():  # warm-up
        wrk(tools["wrk"], directory, port, upstream, 1, count)  # type: ignore[arg-type]
    for number in range(args.rounds):
        order = list(configs) if number % 2 == 0 else list(configs)[::-1]
        for count in order:
            port, pid = configs[count]
            before = tree_cpu(pid)
            rps, requests = wrk(tools["wrk"], directory, port, upstream, args.seconds, count)  # type: ignore[arg-type]
            cpu = (tree_cpu(pid) - before) / max(requests, 1) * 1e6
            results[count].append((rps, cpu))
            print(f"  round {number + 1}, {count} worker(s): {rps:8.0f} req/s  {cpu:6.0f} µs CPU/request", flush=True)
    one = statistics.median(r for r, _ in results[1])
    many = statistics.median(r for r, _ in results[args.workers])
    print(f"\n{'workers':>8} {'req/s median':>13} {'min–max':>13} {'CPU µs/req':>11}")
    for count, runs in results.items():
        rates = [r for r, _ in runs]
        print(
            f"{count:>8} {statistics.median(rates):>13.0f} {f'{min(rates):.0f}–{max(rates):.0f}':>13} "
            f"{statistics.median(c for _, c in runs):>11.0f}"
        )
    ratio = many / one
    wanted = TARGET * args.workers
    verdict = "met" if ratio >= wanted else "MISSED"
    print(f"\n{args.workers} workers / 1 worker = {ratio:.2f}x; target >= {wanted:.1f}x: {verdict}")
    if cores < args.workers + 2:
        print(
            f"(this machine has {cores} CPUs for {args.workers} workers, wrk and nginx: the workers share cores "
            "with the load generator and the upstream, so the ratio is bounded by the free cores, not by aipolicy)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 3 s")
    parser.add_argument("--workers", type=int, default=2, help="workers to compare with one (default 2)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 8; quick 3)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per run (default 5; quick 3)")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install nginx or wrk")
    args = parser.parse_args()
    args.rounds = args.rounds or (3 if args.quick else 8)
    args.seconds = args.seconds or (3.0 if args.quick else 5.0)
    with tempfile.TemporaryDirectory(prefix="aipolicy-workers-") as tmp, ExitStack() as stack:
        benchmark(args, Path(tmp), stack)


if __name__ == "__main__":
    main()
