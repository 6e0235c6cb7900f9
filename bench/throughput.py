"""Benchmark: proxy throughput and latency, with and without the aipolicy addon.

Plain-HTTP keep-alive requests in absolute form (``GET http://127.0.0.1:U/``)
go from a load generator (wrk) through mitmdump, an explicit HTTP proxy, to a
fast loopback upstream (nginx). Each configuration is its own mitmdump process,
started with the options ``aipolicy proxy`` passes (aipolicy.cli._proxy.mitmdump_arguments)
plus ``-q``, so all do the same logging work:

  A  bare mitmdump: the same options without the addon and its aipolicy_* options
  B  ``mitmdump -s proxy_addons/addon.py``: the addon as a script (how ``aipolicy proxy``
     ran it before the launcher), enforcing the shipped default policy (a copy of it and
     its catalogue, so edits to the checkout cannot trigger reloads)
  D  the launcher ``aipolicy proxy`` runs now (aipolicy.cli._programs.launcher_command:
     ``python -m aipolicy.proxy_addons.launcher``), the Enforcer straight in mitmdump's
     addon chain, same policy
  C  (diagnostic, --same-hooks) an addon with the Enforcer's hooks, all empty:
     what mitmproxy charges for calling an addon at all

They run alternately, in many short rounds whose order flips every round
(A B D, D B A, A B D, ...), so a slow spell of the machine is shared and drift
cancels; B/A and D/A are medians of the per-round ratios. Reported per configuration:
requests/s, wrk's median and p99 latency, and the proxy's CPU time per request
(from /proc). Before that, without any network, the time mitmdump's addon chain
takes to run one request's HTTP hooks without the addon, with it as a script, and
with it straight in the chain: a steadier view of the addon's share than requests/s
on a busy machine.

Targets: B >= 0.95 x A and D >= 0.95 x A in requests/s; the addon's per-request cost
in the chain (in process) at least 25% below its cost as a script (expected: about a
third). Everything listens on 127.0.0.1 only; every process started is stopped at the
end. Run from the repo root:
    .venv/bin/python bench/throughput.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aipolicy.cli._programs import find_mitmdump, launcher_command  # noqa: E402  (what `aipolicy proxy` runs)
from aipolicy.cli._proxy import mitmdump_arguments  # noqa: E402
from aipolicy.proxy_addons import ENFORCER_SCRIPT  # noqa: E402

import aipolicy  # noqa: E402

HOST = "127.0.0.1"
TARGET_RATIO = 0.95
TARGET_SAVING = 0.25  # the addon's in-process cost in the chain against as a script: at least this much less
BODY = '{"upstream":"reached"}'

# An addon with the Enforcer's hooks, each doing nothing (configuration C).
SAME_HOOKS_ADDON = textwrap.dedent(
    """
    from mitmproxy import hooks
    from aipolicy.proxy_addons.enforcer import Enforcer

    class SameHooks:
        pass

    for _name in vars(Enforcer):
        if _name in hooks.all_hooks and _name != "load":
            setattr(SameHooks, _name, lambda self, *args: None)

    addons = [SameHooks()]
    """
)

# Fallback upstream when nginx is not available: a small asyncio HTTP/1.1 server.
PYTHON_UPSTREAM = textwrap.dedent(
    """
    import asyncio, sys
    BODY = sys.argv[2].encode()
    HEAD = b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: %d\\r\\n\\r\\n" % len(BODY)

    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\\r\\n\\r\\n")
                writer.write(HEAD + BODY)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
    """
)

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen {host}:{port};
        location / {{ default_type application/json; return 200 '{body}'; }}
    }}
}}
"""


# --- tools -------------------------------------------------------------------------


def ensure_tools(install: bool) -> dict[str, str | None]:
    """Find nginx and wrk (or ab); install them from Debian if allowed and missing."""
    wanted = {"nginx": "nginx", "wrk": "wrk", "ab": "apache2-utils"}
    found = {name: _which(name) for name in wanted}
    missing = [wanted[n] for n in ("nginx", "wrk") if not found[n]]
    if missing and install and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {' '.join(missing)} with apt-get ...", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
        if subprocess.run(command, env=env, capture_output=True, timeout=300).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=300)
            subprocess.run(command, env=env, capture_output=True, timeout=300)
        found = {name: _which(name) for name in wanted}
    return found


def _which(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)


def version_of(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else "?"


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float, output: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode}:\n{output.read_text(errors='replace')[-2000:]}"
            )
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(
        f"nothing listening on {HOST}:{port} after {timeout} s:\n{output.read_text(errors='replace')[-2000:]}"
    )


def start(
    command: list[str], port: int, output: Path, stack: ExitStack, timeout: float = 30
) -> subprocess.Popen[bytes]:
    """Start a process in its own session, wait until it listens on port; stopped when stack closes."""
    handle = stack.enter_context(output.open("wb"))
    process = subprocess.Popen(
        command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, cwd=output.parent
    )
    stack.callback(stop, process)
    wait_listening(port, process, timeout, output)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT (mitmdump's clean shutdown), then SIGTERM, then SIGKILL, to the process's own group."""
    for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)  # the group this script created with start_new_session
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(process.pid, signal.SIGKILL)  # leftovers in the group (nginx workers)
    except (ProcessLookupError, PermissionError):
        pass


def start_upstream(tools: dict[str, str | None], directory: Path, stack: ExitStack) -> tuple[int, str]:
    port = free_port()
    if tools["nginx"]:
        conf = directory / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=directory, host=HOST, port=port, body=BODY))
        start([tools["nginx"], "-p", str(directory), "-c", str(conf)], port, directory / "nginx.out", stack)  # type: ignore[list-item]
        return port, version_of([tools["nginx"], "-v"])  # type: ignore[list-item]
    start([sys.executable, "-c", PYTHON_UPSTREAM, str(port), BODY], port, directory / "upstream.out", stack)
    return port, "Python asyncio server (nginx not available)"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- configurations --------------------------------------------------------------------


@dataclass
class Config:
    key: str
    title: str
    command: list[str]
    port: int
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    runs: list[Run] = field(default_factory=list)


@dataclass
class Run:
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    requests: int
    errors: int
    cpu_us_per_request: float


def snapshot_default_policy(directory: Path) -> Path:
    """A copy of the shipped policies folder (default policy, catalogue and what it
    includes) for B to enforce: the same rules, but edits to the checkout during a run
    cannot make B reload its policy. Falls back to the shipped file if the copy differs."""
    copied = directory / "policies"
    shutil.copytree(aipolicy.policies_dir(), copied, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    snapshot = copied / "default.yaml"
    text = snapshot.read_text(encoding="utf-8")
    if not re.search(r"^catalog:", text, re.M):
        snapshot.write_text("catalog: catalog.yaml  # the copy beside this file\n" + text, encoding="utf-8")
    original = aipolicy.load_policy(aipolicy.default_policy())
    try:
        copy = aipolicy.load_policy(snapshot)
    except aipolicy.PolicyError as error:
        print(f"note: the copy of the default policy does not load ({error}); B uses the shipped file")
        return aipolicy.default_policy()
    if [r.id for r in copy.rules] != [r.id for r in original.rules] or copy.hosts.size != original.hosts.size:
        print("note: the copy of the default policy differs from the original; B uses the shipped file")
        return aipolicy.default_policy()
    return snapshot


def script_command(policy: Path, port: int, log: Path, confdir: Path) -> list[str]:
    """`mitmdump -s proxy_addons/addon.py` with the options `aipolicy proxy` passes (B)."""
    arguments = mitmdump_arguments(str(policy), HOST, port, str(log), str(confdir), False, "bench", ())
    return [find_mitmdump(), "-s", ENFORCER_SCRIPT, *arguments, "-q"]


def launched_command(policy: Path, port: int, log: Path, confdir: Path) -> list[str]:
    """The command `aipolicy proxy` runs (D): the launcher, the Enforcer straight in mitmdump's chain."""
    arguments = mitmdump_arguments(str(policy), HOST, port, str(log), str(confdir), False, "bench", ())
    return launcher_command([*arguments, "-q"])


def without_addon(command: list[str]) -> list[str]:
    """The same command with no `-s SCRIPT` and no aipolicy_* options."""
    result, skip = [], False
    for i, arg in enumerate(command):
        if skip:
            skip = False
            continue
        following = command[i + 1] if i + 1 < len(command) else ""
        if arg == "-s" or (arg == "--set" and following.startswith("aipolicy_")):
            skip = True
            continue
        result.append(arg)
    return result


def make_configs(directory: Path, policy: Path, with_same_hooks: bool) -> list[Config]:
    confdir = directory / "confdir"
    confdir.mkdir()
    port_b, log = free_port(), directory / "events.jsonl"
    command_b = script_command(policy, port_b, log, confdir)
    port_d, log_d = free_port(), directory / "events-launcher.jsonl"
    command_d = launched_command(policy, port_d, log_d, confdir)
    port_a = free_port()
    command_a = _with_port(without_addon(command_b), port_a)
    configs = [
        Config("A", "bare mitmdump", command_a, port_a),
        Config("B", "mitmdump -s addon.py, default policy", command_b, port_b, log),
        Config("D", "launcher (aipolicy proxy), default", command_d, port_d, log_d),
    ]
    if with_same_hooks:
        script = directory / "same_hooks_addon.py"
        script.write_text(SAME_HOOKS_ADDON)
        port_c = free_port()
        command_c = _with_port(without_addon(command_b), port_c)
        configs.append(
            Config(
                "C", "mitmdump + empty addon, same hooks", command_c[:1] + ["-s", str(script)] + command_c[1:], port_c
            )
        )
    return configs


def _with_port(command: list[str], port: int) -> list[str]:
    index = command.index("--listen-port")
    return command[: index + 1] + [str(port)] + command[index + 2 :]


def check_enforcing(config: Config) -> None:
    """One request for a banned host through B or D must be refused by the addon (no upstream contacted)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://{HOST}:{config.port}"}))
    try:
        opener.open("http://chat.deepseek.com/", timeout=10)
    except urllib.error.HTTPError as error:
        if error.code == 403:
            return
        raise RuntimeError(f"{config.key}: expected 403 for chat.deepseek.com, got {error.code}") from None
    raise RuntimeError(f"{config.key}: chat.deepseek.com was not blocked: is the addon loaded?")


def count_events(log: Path | None, kind: str) -> int:
    if log is None or not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if line.strip() and json.loads(line).get("event") == kind)


# --- load generation ----------------------------------------------------------------------


def run_load(
    tools: dict[str, str | None], directory: Path, proxy_port: int, upstream_port: int, seconds: float, connections: int
) -> Run:
    if tools["wrk"]:
        return run_wrk(tools["wrk"], directory, proxy_port, upstream_port, seconds, connections)
    return run_ab(tools["ab"], proxy_port, upstream_port, seconds, connections)  # type: ignore[arg-type]


def run_wrk(
    wrk: str, directory: Path, proxy_port: int | None, upstream_port: int, seconds: float, connections: int
) -> Run:
    """wrk cannot use a proxy, but a script can put the request line in absolute form."""
    script = directory / "absolute-form.lua"
    script.write_text(f'wrk.path = "http://{HOST}:{upstream_port}/"\nwrk.headers["Host"] = "{HOST}:{upstream_port}"\n')
    port = proxy_port or upstream_port
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://{HOST}:{port}/",
    ]
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = _number(r"Requests/sec:\s+([\d.]+)", output)
    if rps is None:
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    requests = int(_number(r"(\d+) requests in", output) or 0)
    errors = int(_number(r"Non-2xx or 3xx responses:\s+(\d+)", output) or 0)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Run(rps, _latency_ms("50%", output), _latency_ms("99%", output), requests, errors, 0.0)


def run_ab(ab: str, proxy_port: int, upstream_port: int, seconds: float, connections: int) -> Run:
    """Fallback: ab through the proxy. Without keep-alive: `ab -k` gets its connections
    reset by mitmproxy (HTTP/1.0 keep-alive), so figures are not comparable with wrk's."""
    command = [
        ab,
        "-q",
        "-X",
        f"{HOST}:{proxy_port}",
        "-c",
        str(connections),
        "-t",
        f"{seconds:g}",
        "-n",
        "10000000",
        f"http://{HOST}:{upstream_port}/",
    ]
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = _number(r"Requests per second:\s+([\d.]+)", output)
    if rps is None:
        raise RuntimeError(f"could not read ab's output:\n{output}")
    p50, p99 = _number(r"\n\s+50%\s+(\d+)", output), _number(r"\n\s+99%\s+(\d+)", output)
    requests = int(_number(r"Complete requests:\s+(\d+)", output) or 0)
    errors = int(_number(r"Failed requests:\s+(\d+)", output) or 0) + int(
        _number(r"Non-2xx responses:\s+(\d+)", output) or 0
    )
    return Run(rps, p50, p99, requests, errors, 0.0)


def _number(pattern: str, text: str) -> float | None:
    found = re.search(pattern, text)
    return float(found.group(1)) if found else None


def _latency_ms(percentile: str, text: str) -> float | None:
    found = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not found:
        return None
    return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]


def measured_run(
    tools: dict[str, str | None], directory: Path, config: Config, upstream_port: int, seconds: float, connections: int
) -> Run:
    assert config.process is not None
    before = cpu_seconds(config.process.pid)
    run = run_load(tools, directory, config.port, upstream_port, seconds, connections)
    used = cpu_seconds(config.process.pid) - before
    run.cpu_us_per_request = used / run.requests * 1e6 if run.requests else 0.0
    return run


# --- the per-request hooks, in process ---------------------------------------------------

# Both children below: a DumpMaster (mitmdump's own addon chain), with the aipolicy script
# loaded if one is given ("direct": the launcher's master, the Enforcer straight in the chain),
# and a test flow pushed through the four per-request HTTP hooks.
_CHILD_PRELUDE = """
import asyncio, json, statistics, sys, time
from mitmproxy import http, options
from mitmproxy.proxy.layers import http as layers
from mitmproxy.test import tflow
from mitmproxy.tools.dump import DumpMaster

def make_flow(authority):
    flow = tflow.tflow(resp=True)
    flow.request = http.Request.make("GET", f"http://{authority}/", headers={"host": authority, "user-agent": "wrk"})
    flow.client_conn.peername = ("127.0.0.1", 50000)
    flow.client_conn.sni = None  # plain HTTP, as the load generator sends it (tflow says "address")
    return flow

async def one_request(trigger, flow, response):
    flow.response = None
    await trigger(layers.HttpRequestHeadersHook(flow))
    await trigger(layers.HttpRequestHook(flow))
    flow.response = response
    await trigger(layers.HttpResponseHeadersHook(flow))
    await trigger(layers.HttpResponseHook(flow))

def start_master(script, policy, log, confdir):
    opts = options.Options()
    if script == "direct":
        from aipolicy.proxy_addons.launcher import EnforcingMaster
        master = EnforcingMaster(opts, with_termlog=False, with_dumper=False)
    else:
        master = DumpMaster(opts, with_termlog=False, with_dumper=False)
    if script:
        opts.update_defer(aipolicy_policy=policy, aipolicy_log=log, aipolicy_reload="0")
    opts.update(connection_strategy="lazy", confdir=confdir, scripts=[script] if script not in ("", "direct") else [])
    if script == "direct":
        master.join_chain()  # what the launcher's master does before its servers start
    return master

async def loaded_flow(master, script, authority):
    \"\"\"A flow that has been through the hooks once the script (if any) has finished loading.\"\"\"
    flow = make_flow(authority)
    for _ in range(100):  # the script loader finishes loading on the event loop
        await one_request(master.addons.trigger_event, flow, flow.response)
        if not script or "aipolicy" in flow.metadata:
            break
        await asyncio.sleep(0.1)
    return flow
"""

# Fresh processes, without the addon, with it as a script and straight in the chain: the best time of a few runs.
_DISPATCH_CHILD = (
    _CHILD_PRELUDE
    + """
script, policy, log, confdir, calls, repeats, *authorities = sys.argv[1:]

async def main():
    master = start_master(script, policy, log, confdir)
    trigger, results = master.addons.trigger_event, {}
    for authority in authorities:
        flow = await loaded_flow(master, script, authority)
        response, best = flow.response, float("inf")
        for _ in range(int(repeats)):
            start = time.perf_counter()
            for _ in range(int(calls)):
                await one_request(trigger, flow, response)
            best = min(best, (time.perf_counter() - start) / int(calls) * 1e6)
        decision = flow.metadata.get("aipolicy")
        assert not script or (decision and decision.action == "allow"), decision
        results[authority] = best
    print(json.dumps(results))

asyncio.run(main())
"""
)

DISPATCH_HOSTS = {
    f"{HOST}:8000": "127.0.0.1 (this benchmark's traffic)",
    "www.example.org": "www.example.org (typical)",
}


def dispatch_costs(directory: Path, policy: Path, rounds: int = 3, calls: int = 2_000) -> dict[str, dict[str, float]]:
    """µs per request for mitmdump's addon chain to run the four per-request HTTP hooks
    (requestheaders, request, responseheaders, response) on a test flow, without the addon
    (A), with the aipolicy script (B) and with the Enforcer straight in the chain as the
    launcher has it (D): B - A and D - A are the addon's share of a request, measured without
    sockets or a loaded event loop. Fresh processes, A, B and D alternated; the minimum over
    all repetitions (the figure least disturbed by other work on the machine)."""
    (directory / "dispatch-confdir").mkdir(exist_ok=True)
    common = [
        str(policy),
        str(directory / "dispatch-events.jsonl"),
        str(directory / "dispatch-confdir"),
        str(calls),
        "3",
    ]
    results: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for key, script in (("A", ""), ("B", ENFORCER_SCRIPT), ("D", "direct")):
            command = [sys.executable, "-c", _DISPATCH_CHILD, script, *common, *DISPATCH_HOSTS]
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"in-process hook measurement failed:\n{done.stderr[-2000:]}")
            for authority, us in json.loads(done.stdout.strip().splitlines()[-1]).items():
                label = DISPATCH_HOSTS[authority]
                results.setdefault(label, {})[key] = min(us, results.get(label, {}).get(key, float("inf")))
    return results


# The same four hooks in ONE process, alternating 100-request blocks through five chains:
# mitmdump's with the aipolicy script (ScriptLoader → Script → module → Enforcer); without it (an
# empty ScriptLoader, as bare mitmdump has); the same Enforcer object in ScriptLoader's place, as
# the launcher runs it when no -s script is given; the Enforcer just before an empty ScriptLoader,
# as the launcher runs it beside -s scripts (the script's nesting gone, ScriptLoader's own call
# left); and an empty addon that has the same hooks. The machine's slow spells then hit all alike
# (fresh processes, above, are compared by minimum).
_PAIRED_CHILD = (
    _CHILD_PRELUDE
    + """
script, policy, log, confdir, blocks, authority = sys.argv[1:]

class SameHooks:
    def requestheaders(self, flow): pass
    def request(self, flow): pass
    def responseheaders(self, flow): pass

async def main():
    from mitmproxy.addons.script import ScriptLoader

    master = start_master(script, policy, log, confdir)
    flow = await loaded_flow(master, script, authority)
    trigger, response = master.addons.trigger_event, flow.response
    assert flow.metadata["aipolicy"].action == "allow"
    chain = list(master.addons.chain)
    loader, empty = master.addons.get("scriptloader"), ScriptLoader()
    without = [empty if addon is loader else addon for addon in chain]
    place = without.index(empty)
    enforcer = master.addons.get("enforcer")
    direct = without[:place] + [enforcer] + without[place + 1:]  # the launcher, no -s script: in its place
    beside = without[:place] + [enforcer] + without[place:]  # the launcher with -s scripts: before them
    chains = {"with": chain, "without": without, "direct": direct, "beside": beside,
              "same hooks": without + [SameHooks()]}
    times = {key: [] for key in chains}
    for _ in range(int(blocks)):
        for key, addons in chains.items():
            master.addons.chain = addons
            start = time.perf_counter()
            for _ in range(100):
                await one_request(trigger, flow, response)
            times[key].append((time.perf_counter() - start) / 100 * 1e6)
    master.addons.chain = chain
    median = {key: statistics.median(values) for key, values in times.items()}
    added = {
        key: statistics.median(t - wo for t, wo in zip(times[key], times["without"]))
        for key in ("with", "direct", "beside", "same hooks")
    }
    print(json.dumps({"without": median["without"], "with": median["with"], "direct": median["direct"],
                      "aipolicy": added["with"], "aipolicy direct": added["direct"],
                      "aipolicy beside": added["beside"], "same hooks": added["same hooks"]}))

asyncio.run(main())
"""
)


def paired_dispatch(directory: Path, policy: Path, blocks: int = 300) -> dict[str, float]:
    """µs per request, in one process: the four hooks without any script, the aipolicy addon's
    addition as a script and straight in the chain (medians of paired block differences), and
    an empty addon's with the same hooks."""
    (directory / "paired-confdir").mkdir(exist_ok=True)
    command = [
        sys.executable, "-c", _PAIRED_CHILD, ENFORCER_SCRIPT, str(policy), str(directory / "paired-events.jsonl"),
        str(directory / "paired-confdir"), str(blocks), f"{HOST}:8000",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"in-process paired measurement failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- output ------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_results(configs: list[Config], upstream_alone: Run | None) -> None:
    print(
        f"\n{'configuration':<40} {'req/s median':>12} {'min–max':>13} {'p50 ms':>7} {'p99 ms':>7} {'CPU µs/req':>10} {'errors':>6}"
    )
    for config in configs:
        rps = [r.rps for r in config.runs]
        p50 = [r.p50_ms for r in config.runs if r.p50_ms is not None]
        p99 = [r.p99_ms for r in config.runs if r.p99_ms is not None]
        cpu = statistics.median(r.cpu_us_per_request for r in config.runs)
        errors = sum(r.errors for r in config.runs)
        print(
            f"{config.key}  {config.title:<37} {statistics.median(rps):>12.0f} {f'{min(rps):.0f}–{max(rps):.0f}':>13} "
            f"{_fmt(statistics.median(p50) if p50 else None):>7} {_fmt(statistics.median(p99) if p99 else None):>7} {cpu:>10.0f} {errors:>6}"
        )
    if upstream_alone:
        print(
            f"   {'upstream alone, no proxy (one run)':<37} {upstream_alone.rps:>12.0f} {'':>13} {_fmt(upstream_alone.p50_ms, 2):>7} {_fmt(upstream_alone.p99_ms, 2):>7}"
        )


def paired_ratio(top: Config, bottom: Config) -> tuple[float, list[float]]:
    """Median over rounds of top/bottom requests/s, each pair measured back to back."""
    ratios = [t.rps / b.rps for t, b in zip(top.runs, bottom.runs, strict=True)]
    return statistics.median(ratios), ratios


def print_verdict(
    configs: list[Config], costs: dict[str, dict[str, float]], paired: dict[str, float] | None = None
) -> None:
    by_key = {c.key: c for c in configs}
    a = by_key["A"]
    cpu = {key: statistics.median(r.cpu_us_per_request for r in c.runs) for key, c in by_key.items()}
    ratio: dict[str, float] = {}
    for top, bottom in (("B", "A"), ("D", "A"), ("D", "B")):
        ratio[top + bottom], ratios = paired_ratio(by_key[top], by_key[bottom])
        of_medians = statistics.median(r.rps for r in by_key[top].runs) / statistics.median(
            r.rps for r in by_key[bottom].runs
        )
        print(
            f"\n{top}/{bottom} requests/s: {ratio[top + bottom]:.3f} median of per-round ratios "
            f"[{min(ratios):.3f}–{max(ratios):.3f}]; ratio of medians {of_medians:.3f}\n"
            f"  per round: {' '.join(f'{r:.2f}' for r in ratios)}"
        )
    print(
        f"Proxy CPU per request: A {cpu['A']:.0f} µs, B {cpu['B']:.0f} µs, D {cpu['D']:.0f} µs "
        f"(B - A = {cpu['B'] - cpu['A']:+.0f} µs, D - A = {cpu['D'] - cpu['A']:+.0f} µs)"
    )
    if "C" in by_key:
        ratio_c, ratios_c = paired_ratio(by_key["C"], a)
        print(
            f"C/A requests/s: {ratio_c:.3f} [{min(ratios_c):.3f}–{max(ratios_c):.3f}]; C - A CPU per request "
            f"{cpu['C'] - cpu['A']:+.0f} µs (mitmproxy calling empty hooks), B - C {cpu['B'] - cpu['C']:+.0f} µs "
            f"(aipolicy's own work and the script's nesting)"
        )

    def predicts(extra: float) -> str:
        return f"{cpu['A'] / (cpu['A'] + extra):.3f}"

    saving = None
    for host, cost in costs.items():
        script, direct = cost["B"] - cost["A"], cost["D"] - cost["A"]
        if saving is None and script > 0:
            saving = 1 - direct / script
        print(
            f"In fresh processes (best of all runs), one request's 4 HTTP hooks through mitmdump's addon chain, {host}: "
            f"A {cost['A']:.0f} µs, B {cost['B']:.0f} µs, D {cost['D']:.0f} µs: aipolicy adds {script:.0f} µs as a "
            f"script, {direct:.0f} µs in the launcher's chain, which alone predict "
            f"B/A = {predicts(script)}, D/A = {predicts(direct)}"
        )
    if paired:
        script, direct = paired["aipolicy"], paired["aipolicy direct"]
        saving = 1 - direct / script
        print(
            f"In one process, alternating blocks: the 4 hooks cost {paired['without']:.0f} µs a request without the "
            f"addon; aipolicy adds {script:.1f} µs as a script (ScriptLoader → Script → module → Enforcer), "
            f"{direct:.1f} µs in the launcher's chain ({saving:.0%} less); an empty addon with the same hooks "
            f"{paired['same hooks']:.1f} µs. Alone these predict B/A = {predicts(script)}, D/A = {predicts(direct)}.\n"
            f"  Of the saving: the launcher beside -s scripts (the Enforcer before an empty ScriptLoader, the "
            f"script's nesting gone) adds {paired['aipolicy beside']:.1f} µs"
        )
    for key in ("B", "D"):
        met = ratio[key + "A"] >= TARGET_RATIO
        print(f"Target {key} >= {TARGET_RATIO}x A: {'met' if met else 'MISSED'} ({ratio[key + 'A']:.3f}x)")
    if saving is not None:
        met = saving >= TARGET_SAVING
        print(
            f"Target: the addon's per-request cost in the chain at least {TARGET_SAVING:.0%} below its cost as a "
            f"script (in process; expected about a third): {'met' if met else 'MISSED'} ({saving:.0%} less)"
        )


# --- main --------------------------------------------------------------------------------------


def benchmark(args: argparse.Namespace, directory: Path, stack: ExitStack) -> None:
    policy = snapshot_default_policy(directory)
    costs = dispatch_costs(directory, policy, rounds=1 if args.quick else 3)
    paired = paired_dispatch(directory, policy, blocks=50 if args.quick else 300)
    tools = ensure_tools(not args.no_install)
    if args.upstream == "python":
        tools["nginx"] = None
    if args.generator == "ab":
        tools["wrk"] = None
    if not tools["wrk"] and not tools["ab"]:
        raise SystemExit("neither wrk nor ab is available: apt-get install -y wrk (or apache2-utils)")
    upstream_port, upstream_name = start_upstream(tools, directory, stack)
    configs = make_configs(directory, policy, args.same_hooks)
    for config in configs:
        config.process = start(config.command, config.port, directory / f"mitmdump-{config.key}.out", stack)
    enforcing = [c for c in configs if c.log is not None]  # B and D
    for config in enforcing:
        check_enforcing(config)
    events_before = {c.key: count_events(c.log, "decision") for c in enforcing}

    generator = version_of([tools["wrk"], "-v"]) if tools["wrk"] else "ab (no keep-alive)"
    print(
        f"upstream: {upstream_name} on {HOST}:{upstream_port}; load: {generator}, {args.connections} connections, "
        f"{args.rounds} rounds x {args.seconds:g} s per configuration"
    )
    for config in configs:
        print(f"  {config.key}: {' '.join(config.command)}")
    upstream_alone = (
        run_wrk(tools["wrk"], directory, None, upstream_port, min(args.seconds, 3), args.connections)
        if tools["wrk"]
        else None
    )
    for config in configs:  # warm-up, not recorded
        run_load(tools, directory, config.port, upstream_port, args.warmup, args.connections)
    for round_number in range(1, args.rounds + 1):
        for config in configs if round_number % 2 else configs[::-1]:
            run = measured_run(tools, directory, config, upstream_port, args.seconds, args.connections)
            config.runs.append(run)
            print(
                f"  round {round_number} {config.key}: {run.rps:8.0f} req/s  p50 {_fmt(run.p50_ms)} ms  p99 {_fmt(run.p99_ms)} ms  "
                f"CPU {run.cpu_us_per_request:.0f} µs/req  errors {run.errors}",
                flush=True,
            )
    print_results(configs, upstream_alone)
    for config in enforcing:
        events = count_events(config.log, "decision") - events_before[config.key]
        reloads = count_events(config.log, "policy_loaded")
        print(
            f"({config.key} wrote {events} decision events during the measured runs: loopback traffic is allowed by "
            f"the default policy and not logged; {config.key} reloaded its policy {reloads} times)"
        )
    print_verdict(configs, costs, paired)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short run: 2 rounds of 2 s per configuration")
    parser.add_argument(
        "--rounds", type=int, default=None, help="measured rounds per configuration (default 16; quick 2)"
    )
    parser.add_argument("--seconds", type=float, default=None, help="seconds per measured run (default 4; quick 2)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds of unrecorded load per configuration first (default 2; quick 1)",
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="concurrent keep-alive client connections (default 32)"
    )
    parser.add_argument(
        "--same-hooks", action="store_true", help="also run configuration C (an empty addon with the same hooks)"
    )
    parser.add_argument("--no-install", action="store_true", help="never apt-get install nginx or wrk")
    parser.add_argument(
        "--upstream",
        choices=("auto", "python"),
        default="auto",
        help="python: the asyncio fallback upstream even if nginx is there",
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "ab"),
        default="auto",
        help="ab: the ab fallback (no keep-alive) even if wrk is there",
    )
    args = parser.parse_args()
    args.rounds = args.rounds or (2 if args.quick else 16)
    args.seconds = args.seconds or (2.0 if args.quick else 4.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)

    with tempfile.TemporaryDirectory(prefix="aipolicy-throughput-") as tmp, ExitStack() as stack:
        benchmark(args, Path(tmp), stack)


if __name__ == "__main__":
    main()
