"""Benchmark: aipolicy against its peers, with the same blocklist, in one alternating run.

Plain-HTTP keep-alive requests for an *allowed* host go from wrk through each proxy to a
loopback nginx; every configuration holds the same N synthetic domains as a blocklist,
so each request pays for checking it against the list:

  A    bare mitmdump (no list)
  B    mitmdump + aipolicy, the shipped default policy
  L    mitmdump + aipolicy, a policy whose list file holds the N domains
  K1k  mitmdump's own `block_list` option with 1,000 of the domains (one `~d` filter each)
  K10k mitmdump's own `block_list` option with the N domains
  S    Squid with the N domains as a `dstdomain` ACL (if Squid is installed or installable)

The configurations run in rounds whose order rotates, so a slow spell of the machine is
shared. Reported: requests/s (median and min–max), wrk's p50 and p99, the proxy's CPU time
per request, and ratios against A and against K10k. Before the load, each configuration
must refuse a listed domain (proof that the list is in force).

Then, in process and without sockets, the cost of the check alone: aipolicy's decide()
against a request for an unlisted host with the N-entry list, and mitmproxy's BlockList
addon's request hook with 1,000 and N filters.

Targets (issue 7): L >= 0.95 x A; aipolicy >= 50 x block_list at 10,000 entries.
Run from the repository root:   .venv/bin/python bench/peers.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput  # noqa: E402  (this folder's throughput benchmark: processes, wrk, nginx)
from throughput import HOST, Config, Run, ensure_tools, free_port, start, start_upstream  # noqa: E402

import aipolicy  # noqa: E402  (throughput put the repository root on sys.path)

TARGET_VS_BARE = 0.95
TARGET_VS_BLOCK_LIST = 50.0

SQUID_CONF = """\
http_port {host}:{port}
pid_filename {dir}/squid.pid
cache_log {dir}/cache.log
access_log none
cache deny all
cache_mem 8 MB
coredump_dir {dir}
workers 1
acl banned dstdomain "{list}"
http_access deny banned
http_access allow all
"""


def domain(i: int) -> str:
    return f"s{i:07d}-{(i * 7919) % 100_000:05d}.com"


def write_lists(directory: Path, size: int) -> tuple[Path, list[str]]:
    domains = [domain(i) for i in range(size)]
    (directory / "big.txt").write_text("\n".join(domains) + "\n")
    policy = directory / "list-policy.yaml"
    policy.write_text(
        textwrap.dedent(
            """\
            version: 1
            lists: {big: {file: big.txt}}
            rules:
              - {id: big-list, action: block, match: {lists: [big]}}
            default: allow
            """
        )
    )
    return policy, domains


def block_list_config(directory: Path, domains: list[str], key: str) -> Path:
    """A mitmproxy confdir whose config.yaml sets block_list: one `~d` filter per domain."""
    confdir = directory / f"confdir-{key}"
    confdir.mkdir()
    lines = ["block_list:"] + [f"  - '|~d {name}|403'" for name in domains]
    (confdir / "config.yaml").write_text("\n".join(lines) + "\n")
    return confdir


def squid_binary(install: bool) -> str | None:
    found = throughput._which("squid")
    if found or not install or os.geteuid() != 0:
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("installing squid with apt-get ...", flush=True)
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "squid"], env=env, capture_output=True, timeout=600
    )
    return throughput._which("squid")


def make_configs(directory: Path, size: int, squid: str | None, stack: ExitStack) -> tuple[list[Config], str]:
    default_policy = throughput.snapshot_default_policy(directory)
    list_policy, domains = write_lists(directory, size)
    base_confdir = directory / "confdir"
    base_confdir.mkdir()
    port_b = free_port()
    command_b = throughput.addon_command(default_policy, port_b, directory / "events-B.jsonl", base_confdir)
    port_l = free_port()
    command_l = throughput.addon_command(list_policy, port_l, directory / "events-L.jsonl", base_confdir)
    bare = throughput.without_addon(command_b)
    configs = [
        Config("A", "bare mitmdump", throughput._with_port(bare, free_port()), 0),
        Config("B", "aipolicy, default policy", command_b, port_b),
        Config("L", f"aipolicy, {size:,}-domain list", command_l, port_l),
    ]
    for key, count in (("K1k", 1000), ("K10k", size)):
        confdir = block_list_config(directory, domains[:count], key)
        command = throughput._with_port(bare, free_port())
        command[command.index(f"confdir={base_confdir}")] = f"confdir={confdir}"
        configs.append(Config(key, f"mitmdump block_list, {count:,} entries", command, 0))
    for config in configs:
        if not config.port:
            config.port = int(config.command[config.command.index("--listen-port") + 1])
    note = "Squid: not installed"
    if squid:
        port = free_port()
        squid_dir = directory / "squid"
        squid_dir.mkdir(mode=0o777)
        os.chmod(squid_dir, 0o777)  # Squid started as root runs as the 'proxy' user
        listed = squid_dir / "banned.txt"
        listed.write_text("".join(f".{name}\n" for name in domains))
        conf = squid_dir / "squid.conf"
        conf.write_text(SQUID_CONF.format(host=HOST, port=port, dir=squid_dir, list=listed))
        configs.append(Config("S", f"Squid, {size:,}-domain dstdomain ACL", [squid, "-N", "-f", str(conf)], port))
        note = throughput.version_of([squid, "-v"])
    for config in configs:
        config.process = start(config.command, config.port, directory / f"{config.key}.out", stack, timeout=180)
    return configs, note


def refuses(config: Config, host: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://{HOST}:{config.port}"}))
    try:
        opener.open(f"http://{host}/", timeout=30)
    except urllib.error.HTTPError as error:
        return error.code == 403
    except OSError:
        return False
    return False


# --- the check alone, in process ------------------------------------------------------------

_BLOCK_LIST_CHILD = r"""
import sys, time, json
from mitmproxy.addons.blocklist import BlockList
from mitmproxy.test import taddons, tflow
names = open(sys.argv[1]).read().split()[: int(sys.argv[2])]
addon = BlockList()
with taddons.context(addon) as context:
    start = time.perf_counter()
    context.configure(addon, block_list=[f"|~d {n}|403" for n in names])
    configure_s = time.perf_counter() - start
    flow = tflow.tflow()
    flow.request.host = "www.unlisted-host.example"
    best = float("inf")
    calls = max(3, 30000 // len(names))
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            flow.response = None
            addon.request(flow)
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    assert flow.response is None
print(json.dumps({"us": best, "configure_s": configure_s}))
"""


def check_costs(directory: Path, size: int) -> dict[str, float]:
    policy = aipolicy.load_policy(directory / "list-policy.yaml")
    facts = aipolicy.RequestFacts(hosts=("www.unlisted-host.example",), path="/")
    best, uncached = float("inf"), float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(100_000):
            aipolicy.decide(policy, facts)
        best = min(best, (time.perf_counter() - start) / 100_000 * 1e6)
        start = time.perf_counter()
        for _ in range(100_000):
            policy.decisions.clear()
            aipolicy.decide(policy, facts)
        uncached = min(uncached, (time.perf_counter() - start) / 100_000 * 1e6)
    result = {"aipolicy": best, "aipolicy_uncached": uncached}
    for key, count in (("block_list_1k", 1000), ("block_list_10k", size)):
        done = subprocess.run(
            [sys.executable, "-c", _BLOCK_LIST_CHILD, str(directory / "big.txt"), str(count)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            raise RuntimeError(f"block_list measurement failed:\n{done.stderr[-2000:]}")
        figures = __import__("json").loads(done.stdout.strip().splitlines()[-1])
        result[key], result[key + "_configure_s"] = figures["us"], figures["configure_s"]
    return result


# --- run and report ---------------------------------------------------------------------------


def benchmark(args: argparse.Namespace, directory: Path, stack: ExitStack) -> None:
    tools = ensure_tools(not args.no_install)
    if not tools["wrk"] or not tools["nginx"]:
        raise SystemExit("wrk and nginx are needed: apt-get install -y wrk nginx")
    squid = None if args.no_squid else squid_binary(not args.no_install)
    upstream_port, upstream_name = start_upstream(tools, directory, stack)
    configs, squid_note = make_configs(directory, args.size, squid, stack)
    listed = {"B": "chat.deepseek.com", "K1k": f"www.{domain(0)}"}
    for config in configs[1:]:  # A has no list
        host = listed.get(config.key, f"www.{domain(args.size - 1)}")
        if not refuses(config, host):
            raise SystemExit(f"{config.key} ({config.title}) did not refuse {host}: its list is not in force")
    print(f"upstream: {upstream_name}; {squid_note}; wrk, {args.connections} connections")
    print(f"{args.rounds} rounds x {args.seconds:g} s per configuration, order rotating\n")
    for config in configs:
        throughput.run_load(tools, directory, config.port, upstream_port, args.warmup, args.connections)
    for number in range(args.rounds):
        order = configs[number % len(configs) :] + configs[: number % len(configs)]
        for config in order:
            run = throughput.measured_run(tools, directory, config, upstream_port, args.seconds, args.connections)
            config.runs.append(run)
        print(f"  round {number + 1}: " + "  ".join(f"{c.key} {c.runs[-1].rps:.0f}" for c in configs), flush=True)
    costs = check_costs(directory, args.size)
    report(configs, costs, args.size, args.seconds)


def _median(runs: list[Run], attribute: str) -> float:
    values = [getattr(r, attribute) for r in runs if getattr(r, attribute) is not None]
    return statistics.median(values) if values else float("nan")


def report(configs: list[Config], costs: dict[str, float], size: int, seconds: float) -> None:
    by_key = {c.key: c for c in configs}
    bare = _median(by_key["A"].runs, "rps")
    # K10k may complete no request at all in a run: then its rate is below one request per run
    k10_runs = by_key["K10k"].runs
    k10 = _median(k10_runs, "rps") or 1 / (seconds * len(k10_runs))
    below = "" if _median(k10_runs, "rps") else ">"
    print(
        f"\n{'configuration':<44} {'req/s':>8} {'min–max':>13} {'p50 ms':>7} {'p99 ms':>8} {'CPU µs/req':>10} {'vs A':>6} {'vs K10k':>8}"
    )
    for config in configs:
        rps = [r.rps for r in config.runs]
        median = statistics.median(rps)
        print(
            f"{config.key:<5}{config.title:<39} {median:>8.0f} {f'{min(rps):.0f}–{max(rps):.0f}':>13} "
            f"{_median(config.runs, 'p50_ms'):>7.1f} {_median(config.runs, 'p99_ms'):>8.1f} "
            f"{_median(config.runs, 'cpu_us_per_request'):>10.0f} {median / bare:>6.2f} {below + f'{median / k10:.1f}':>8}"
        )
    print("\nThe check alone, in process (µs per request for an unlisted host; best of 5):")
    print(
        f"  aipolicy decide(), {size:,}-domain list: {costs['aipolicy']:.2f} µs (cache emptied before each call: {costs['aipolicy_uncached']:.2f} µs)"
    )
    for key, count in (("block_list_1k", 1000), ("block_list_10k", size)):
        print(
            f"  mitmproxy BlockList.request, {count:,} filters: {costs[key]:,.1f} µs (configure: {costs[key + '_configure_s']:.1f} s)"
        )
    l_ratio = _median(by_key["L"].runs, "rps") / bare
    paired = [mine.rps / ref.rps for mine, ref in zip(by_key["L"].runs, by_key["A"].runs, strict=True)]
    through = _median(by_key["L"].runs, "rps") / k10
    check = costs["block_list_10k"] / costs["aipolicy_uncached"]
    print("\nTargets:")
    print(
        f"  aipolicy with the {size:,}-domain list >= {TARGET_VS_BARE} x bare mitmdump: "
        f"{'met' if l_ratio >= TARGET_VS_BARE else 'MISSED'} ({l_ratio:.3f}; median of per-round ratios {statistics.median(paired):.3f})"
    )
    print(f"  aipolicy >= {TARGET_VS_BLOCK_LIST:g} x block_list at {size:,} entries: requests/s {below}{through:.1f}x "
          f"({'met' if through >= TARGET_VS_BLOCK_LIST else 'MISSED'}); the check alone {check:,.0f}x "
          f"({'met' if check >= TARGET_VS_BLOCK_LIST else 'MISSED'})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 2 s")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 8; quick 3)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per run (default 4; quick 2)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unrecorded seconds per configuration first")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--size", type=int, default=10_000, help="blocklist size (default 10,000)")
    parser.add_argument("--no-squid", action="store_true", help="leave Squid out")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install anything")
    args = parser.parse_args()
    args.rounds = args.rounds or (3 if args.quick else 8)
    args.seconds = args.seconds or (2.0 if args.quick else 4.0)
    with tempfile.TemporaryDirectory(prefix="aipolicy-peers-") as tmp, ExitStack() as stack:
        benchmark(args, Path(tmp), stack)


if __name__ == "__main__":
    main()
