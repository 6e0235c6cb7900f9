"""Benchmark: what inspecting a request body costs, and that uploads to other hosts are not buffered.

Everything goes through real mitmdump processes to loopback upstreams. An HTTPS client sends
`CONNECT 127.0.0.1:PORT`, then TLS with the name (openrouter.ai, api.together.xyz,
files.bench.test, ...) as SNI and in the Host header; the enforcer judges the SNI, so no DNS
is needed. (The test suite's route addon rewrites the server address instead, which makes
mitmproxy open a new upstream connection for every request of a keep-alive connection and,
in this bench, stall after five: fine for tests, wrong for a per-request cost.) Two proxies:

  A  bare mitmdump (it decrypts every HTTPS connection, inspects nothing)
  B  mitmdump + aipolicy enforcing a copy of the shipped default policy, whose DeepSeek rule
     has a model match for every provider in policies/providers.yaml: requests to a provider
     host are decrypted, their body buffered and its JSON `model` field read

Part 1, cost per request: keep-alive POSTs of a chat-completions JSON body (2 KB, then 1 MB,
model `openai/gpt-4o`, allowed), many on one connection (CONNECT, TLS, POST, POST, ...),
to a TLS nginx that discards the body. Three cases alternate, order flipping every round:

  A-prov  bare mitmdump, openrouter.ai         (decrypted, no addon)
  B-prov  aipolicy, openrouter.ai              (decrypted, body buffered and parsed)
  B-tun   aipolicy, files.bench.test           (no rule: tunnelled untouched, not decrypted)

Reported per case: the client's latency per request (median of the round medians, min–max)
and mitmdump's CPU time per request (user + system from /proc/PID/stat over the round); and
B-prov - A-prov paired round by round.

Part 2, memory: one 200 MB upload per fresh mitmdump, to a Python sink that reads and
discards the body and reports how many bytes it got. mitmdump's VmRSS is sampled every
50 ms; reported: baseline (after one small warm-up request on the same path), peak, peak -
baseline, the response status and the bytes that reached the upstream.

Target: "memory stays flat while a 200 MB upload passes through" to a non-AI host:
peak - baseline < 32 MiB (see FLAT_MIB). Run from the repository root:
    .venv/bin/python bench/inspection.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import ssl
import statistics
import sys
import tempfile
import textwrap
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput  # noqa: E402  (processes, nginx, mitmdump commands)
import tunnels  # noqa: E402  (a self-signed certificate for the TLS upstreams)
from throughput import HOST, cpu_seconds, ensure_tools, free_port, start  # noqa: E402

PORTS: dict[str, int] = {}  # host name -> the loopback port that serves it
MIB = 1024 * 1024
FLAT_MIB = 32  # peak - baseline below this is "flat": see the README for why
BIG = 200 * MIB
CHUNK = 64 * 1024
PROVIDER = "openrouter.ai"  # a provider host of the default policy's DeepSeek model rule
PROVIDER_SINK = "api.together.xyz"  # another provider host, routed to the counting sink
OTHER = "files.bench.test"  # no rule matches: tunnelled (HTTPS) or streamed (HTTP)
OTHER_SINK = "sink.bench.test"
PLAIN_SINK = "plain.bench.test"

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    client_max_body_size 0;
    server {{
        listen {host}:{port} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        location / {{ default_type application/json; return 200 '{{"id":"bench","choices":[]}}'; }}
    }}
}}
"""

# An HTTP/1.1 sink: reads each request body (content-length or chunked), discards it, answers
# with the number of bytes it got, and logs that number (one line per request) on stdout.
SINK = textwrap.dedent(
    """
    import asyncio, json, ssl, sys

    async def body_length(reader, headers):
        if headers.get("transfer-encoding", "").lower() == "chunked":
            total = 0
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:  # then trailers, if any, up to an empty line
                    while (await reader.readline()) not in (b"\\r\\n", b""):
                        pass
                    return total
                left = size
                while left:
                    left -= len(await reader.read(min(left, 1 << 20)))
                await reader.readline()
                total += size
        left = int(headers.get("content-length", "0"))
        total = left
        while left:
            data = await reader.read(min(left, 1 << 20))
            if not data:
                return total - left
            left -= len(data)
        return total

    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\\r\\n\\r\\n")
                lines = head.decode("latin-1").split("\\r\\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                received = await body_length(reader, headers)
                print(f"received {received}", flush=True)
                body = json.dumps({"received": received}).encode()
                writer.write(b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: %d\\r\\n\\r\\n" % len(body) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def main():
        context = None
        if len(sys.argv) > 2:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(sys.argv[2], sys.argv[3])
        server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), ssl=context, limit=1 << 20)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
    """
)


# --- bodies ---------------------------------------------------------------------------------


def chat_body(size: int, model: str = "openai/gpt-4o") -> bytes:
    """A chat-completions JSON body of exactly `size` bytes (the filler is the user's message)."""
    head = json.dumps({"model": model, "temperature": 0.2, "messages": [{"role": "system", "content": "Be brief."}]})
    prefix = head[:-2] + ', {"role": "user", "content": "'
    suffix = '"}]}'
    filler = size - len(prefix) - len(suffix)
    text = ("Summarise the quarterly report in three bullet points. " * (filler // 55 + 1))[:filler]
    body = (prefix + text + suffix).encode()
    json.loads(body)
    assert len(body) == size
    return body


def big_body_parts() -> tuple[bytes, bytes, bytes]:
    """(prefix, one filler chunk, suffix) of a big JSON body with a model field."""
    prefix = b'{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "'
    suffix = b'"}]}'
    return prefix, b"a" * CHUNK, suffix


# --- a small HTTP/1.1 client over a proxy -------------------------------------------------------


def _read_head(sock: socket.socket, buffer: bytearray) -> bytes:
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed before a response")
        buffer += data
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end])
    del buffer[:end]
    return head


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes]:
    head = _read_head(sock, buffer)
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(buffer) < length:
        data = sock.recv(65536)
        if not data:
            break
        buffer += data
    body = bytes(buffer[:length])
    del buffer[:length]
    return status, body


def open_tunnel(proxy: int, host: str, context: ssl.SSLContext) -> socket.socket:
    """CONNECT 127.0.0.1:<the port serving `host`>, then TLS with `host` as SNI."""
    sock = socket.create_connection((HOST, proxy), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    port = PORTS[host]
    sock.sendall(f"CONNECT {HOST}:{port} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
    buffer = bytearray()
    head = _read_head(sock, buffer)
    if not head.startswith(b"HTTP/1.1 200"):
        sock.close()
        raise RuntimeError(f"CONNECT {host} refused: {head[:80]!r}")
    return context.wrap_socket(sock, server_hostname=host)


def post_head(host: str, length: int | None, absolute: bool = False) -> bytes:
    target = f"http://{HOST}:{PORTS[host]}/v1/upload" if absolute else "/api/v1/chat/completions"
    size = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    return (
        f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sk-bench\r\n{size}\r\n\r\n"
    ).encode()


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # mitmproxy's CA, or a tunnel to self-signed
    return context


# --- part 1: cost per request -----------------------------------------------------------------


@dataclass
class Case:
    key: str
    title: str
    proxy: int
    pid: int
    host: str
    latency_us: list[float] = field(default_factory=list)  # one median per round
    cpu_us: list[float] = field(default_factory=list)  # one value per round


def run_requests(case: Case, body: bytes, count: int, warmup: int, context: ssl.SSLContext) -> tuple[float, float]:
    """(median latency µs, mitmdump CPU µs per request) over `count` keep-alive POSTs."""
    sock = open_tunnel(case.proxy, case.host, context)
    request = post_head(case.host, len(body)) + body
    buffer = bytearray()
    try:
        for _ in range(warmup):
            sock.sendall(request)
            read_response(sock, buffer)
        times = []
        cpu_before = cpu_seconds(case.pid)
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(request)
            status, _ = read_response(sock, buffer)
            times.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"{case.key}: status {status}")
        cpu = cpu_seconds(case.pid) - cpu_before
    finally:
        sock.close()
    return statistics.median(times) * 1e6, cpu / count * 1e6


def check_inspecting(proxy: int, context: ssl.SSLContext) -> None:
    """B must refuse a DeepSeek model on the provider host: proof that it reads the body."""
    sock = open_tunnel(proxy, PROVIDER, context)
    body = chat_body(2048, model="deepseek/deepseek-chat")
    try:
        sock.sendall(post_head(PROVIDER, len(body)) + body)
        status, _ = read_response(sock, bytearray())
    finally:
        sock.close()
    if status != 403:
        raise RuntimeError(f"B let a DeepSeek model through to {PROVIDER} (status {status}): is the addon inspecting?")


def peer_certificate_is_upstreams(proxy: int, host: str, cert: Path) -> bool:
    """True if the TLS server the client reached is the upstream itself (tunnelled), not mitmproxy."""
    sock = open_tunnel(proxy, host, client_context())
    try:
        der = sock.getpeercert(binary_form=True)
    finally:
        sock.close()
    return ssl.DER_cert_to_PEM_cert(der).strip() == cert.read_text().strip()


def part_one(args: argparse.Namespace, cases: list[Case]) -> dict[str, dict[str, Case]]:
    context = client_context()
    results: dict[str, dict[str, Case]] = {}
    for label, size, count, warmup in (
        ("2 KB", 2048, args.small, 20),
        ("1 MB", MIB, args.large, 2),
    ):
        body = chat_body(size)
        per = {c.key: Case(c.key, c.title, c.proxy, c.pid, c.host) for c in cases}
        print(f"\n{label} POSTs: {args.rounds} rounds x {count} requests per case", flush=True)
        for number in range(args.rounds):
            order = list(per.values()) if number % 2 == 0 else list(per.values())[::-1]
            line = []
            for case in order:
                latency, cpu = run_requests(case, body, count, warmup, context)
                case.latency_us.append(latency)
                case.cpu_us.append(cpu)
                line.append(f"{case.key} {latency:7.0f} µs / CPU {cpu:6.0f} µs")
            print(f"  round {number + 1}: " + "   ".join(line), flush=True)
        results[label] = per
    return results


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def _paired(per: dict[str, Case], name: str) -> str:
    """B-prov minus A-prov round by round (each round ran both under the same load)."""
    deltas = [b - a for a, b in zip(getattr(per["A-prov"], name), getattr(per["B-prov"], name), strict=True)]
    return f"{statistics.median(deltas):+.0f} ({min(deltas):+.0f} to {max(deltas):+.0f})"


def print_part_one(results: dict[str, dict[str, Case]]) -> None:
    print(f"\n{'request':<8} {'case':<52} {'latency µs, median (min–max)':>30} {'mitmdump CPU µs/req':>26}")
    for label, per in results.items():
        for case in per.values():
            print(
                f"{label:<8} {case.key + '  ' + case.title:<52} {_spread(case.latency_us):>30} {_spread(case.cpu_us):>26}"
            )
        a, b, t = (statistics.median(per[k].cpu_us) for k in ("A-prov", "B-prov", "B-tun"))
        la, lb, lt = (statistics.median(per[k].latency_us) for k in ("A-prov", "B-prov", "B-tun"))
        print(
            f"{'':<8} added by inspection (B-prov - A-prov): CPU {b - a:+.0f} µs/req, latency {lb - la:+.0f} µs; "
            f"inspected vs tunnelled (B-prov - B-tun): CPU {b - t:+.0f} µs/req, latency {lb - lt:+.0f} µs"
        )
        print(
            f"{'':<8} paired by round, median (min–max) of B-prov - A-prov: CPU {_paired(per, 'cpu_us')} µs/req, "
            f"latency {_paired(per, 'latency_us')} µs"
        )


# --- part 2: memory during a 200 MB upload ----------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak, self.samples = pid, interval, 0, 0
        self.running = threading.Event()
        self.running.set()

    def run(self) -> None:
        while self.running.is_set():
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except (OSError, RuntimeError):
                return
            self.samples += 1
            time.sleep(self.interval)

    def stop(self) -> int:
        self.running.clear()
        self.join(5)
        return self.peak


@dataclass
class Upload:
    title: str
    status: str
    sent: int
    received: str
    seconds: float
    baseline_kib: int
    peak_kib: int
    samples: int
    flat_expected: bool


def answered(sock: socket.socket, buffer: bytearray) -> bool:
    """True if the peer has sent response bytes (kept in buffer) or closed. A readable TLS socket
    may hold only a session ticket, which is no answer."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
        return False
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    finally:
        sock.settimeout(timeout)
    buffer += data
    return True


def send_upload(sock: socket.socket, head: bytes, size: int, chunked: bool) -> tuple[int, int | None, bytes]:
    """Send head and a `size`-byte JSON body; stop early if the proxy answers first.
    Returns (body bytes sent, status or None, response body)."""
    prefix, filler, suffix = big_body_parts()
    sock.sendall(head)
    sent = 0
    buffer = bytearray()

    def frame(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data) if chunked else data

    pieces_left = size - len(prefix) - len(suffix)
    try:
        sock.sendall(frame(prefix))
        sent += len(prefix)
        while pieces_left > 0:
            if answered(sock, buffer):
                break  # the proxy answered before the body was complete (a block)
            piece = filler if pieces_left >= len(filler) else filler[:pieces_left]
            sock.sendall(frame(piece))
            sent += len(piece)
            pieces_left -= len(piece)
        else:
            sock.sendall(frame(suffix) + (b"0\r\n\r\n" if chunked else b""))
            sent += len(suffix)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        pass
    try:
        status, body = read_response(sock, buffer)
    except (ConnectionError, OSError, ssl.SSLError, ValueError):
        return sent, None, b""
    return sent, status, body


def sink_total(log: Path) -> int:
    lines = [line for line in log.read_text().splitlines() if line.startswith("received ")]
    return int(lines[-1].split()[1]) if lines else 0


def memory_case(
    title: str,
    command: list[str],
    port: int,
    directory: Path,
    stack: ExitStack,
    target: tuple[str, bool],
    chunked: bool,
    sink_log: Path,
    flat_expected: bool,
) -> Upload:
    """A fresh mitmdump; one small request on the same path to warm it; then the 200 MB upload."""
    host, tls = target
    key = "".join(ch for ch in title if ch.isalnum())[:40]
    with ExitStack() as local:
        process = start(command, port, directory / f"mem-{key}.out", local, timeout=120)
        context = client_context()

        def connect() -> socket.socket:
            if tls:
                return open_tunnel(port, host, context)
            sock = socket.create_connection((HOST, port), timeout=120)
            return sock

        warm = connect()
        body = chat_body(2048)
        warm.sendall(post_head(host, len(body), absolute=not tls) + body)
        read_response(warm, bytearray())
        warm.close()
        time.sleep(1.0)
        before = sink_log.read_text().count("received ")
        baseline = rss_kib(process.pid)
        sampler = Sampler(process.pid)
        sampler.start()
        started = time.monotonic()
        sock = connect()
        try:
            sent, status, answer = send_upload(
                sock, post_head(host, None if chunked else BIG, absolute=not tls), BIG, chunked
            )
        finally:
            sock.close()
        seconds = time.monotonic() - started
        time.sleep(0.3)
        peak = max(sampler.stop(), baseline)
        time.sleep(0.2)
        after = sink_log.read_text().count("received ")
        received = f"{sink_total(sink_log):,}" if after > before else "0 (never contacted)"
        status_text = "no response" if status is None else str(status)
        if status == 403:
            reason = json.loads(answer or b"{}").get("reason", "") if answer.startswith(b"{") else ""
            status_text += f" ({reason[:60]}…)" if reason else ""
    return Upload(title, status_text, sent, received, seconds, baseline, peak, sampler.samples, flat_expected)


def part_two(
    directory: Path, commands: dict[str, tuple[list[str], int]], logs: dict[str, Path], stack: ExitStack, quick: bool
) -> list[Upload]:
    cases: list[tuple[str, str, tuple[str, bool], bool, bool]] = [
        ("B  plain HTTP, non-AI host, content-length", "B", (PLAIN_SINK, False), False, True),
        ("B  plain HTTP, non-AI host, chunked", "B", (PLAIN_SINK, False), True, True),
        ("B  HTTPS tunnel, non-AI host, content-length", "B", (OTHER_SINK, True), False, True),
        ("B  HTTPS tunnel, non-AI host, chunked", "B", (OTHER_SINK, True), True, True),
        ("B  HTTPS provider host, content-length", "B", (PROVIDER_SINK, True), False, False),
        ("B  HTTPS provider host, chunked", "B", (PROVIDER_SINK, True), True, False),
        ("A  bare mitmdump, plain HTTP, content-length", "A", (PLAIN_SINK, False), False, False),
    ]
    if quick:
        cases = [cases[0], cases[2], cases[4], cases[5]]
    results = []
    for title, key, target, chunked, flat in cases:
        command, port = commands[key]
        print(f"  {title} ...", end="", flush=True)
        upload = memory_case(title, command, port, directory, stack, target, chunked, logs[target[0]], flat)
        growth = (upload.peak_kib - upload.baseline_kib) / 1024
        print(f" status {upload.status}, peak - baseline {growth:.1f} MiB, {upload.seconds:.1f} s", flush=True)
        results.append(upload)
    return results


def print_part_two(uploads: list[Upload]) -> bool:
    print(
        f"\n{'200 MB upload':<46} {'response':<28} {'sent MB':>8} {'upstream got':>20} {'s':>6} "
        f"{'base MiB':>9} {'peak MiB':>9} {'peak-base':>10}"
    )
    ok = True
    for u in uploads:
        growth = (u.peak_kib - u.baseline_kib) / 1024
        print(
            f"{u.title:<46} {u.status[:28]:<28} {u.sent / 1e6:>8.1f} {u.received:>20} {u.seconds:>6.1f} "
            f"{u.baseline_kib / 1024:>9.1f} {u.peak_kib / 1024:>9.1f} {growth:>10.1f}"
        )
        if u.flat_expected and growth >= FLAT_MIB:
            ok = False
    return ok


# --- setup ------------------------------------------------------------------------------------


def benchmark(args: argparse.Namespace, directory: Path, stack: ExitStack) -> None:
    tools = ensure_tools(not args.no_install)
    if not tools["nginx"]:
        raise SystemExit("nginx is needed: apt-get install -y nginx")
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average at start: {' '.join(load)} ({os.cpu_count()} CPUs)")
    tunnels.certificate(directory)
    directory.chmod(0o755)  # nginx's worker drops root and must read the files
    nginx_port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=directory, host=HOST, port=nginx_port))
    start([tools["nginx"], "-p", str(directory), "-c", str(conf)], nginx_port, directory / "nginx.out", stack)
    tls_sink, plain_sink = free_port(), free_port()
    sink_log = directory / "sink.out"
    start(
        [sys.executable, "-c", SINK, str(tls_sink), str(directory / "cert.pem"), str(directory / "key.pem")],
        tls_sink,
        sink_log,
        stack,
    )
    plain_log = directory / "sink-plain.out"
    start([sys.executable, "-c", SINK, str(plain_sink)], plain_sink, plain_log, stack)

    PORTS.update(
        {PROVIDER: nginx_port, OTHER: nginx_port, PROVIDER_SINK: tls_sink, OTHER_SINK: tls_sink, PLAIN_SINK: plain_sink}
    )
    policy = throughput.snapshot_default_policy(directory)
    confdir = directory / "confdir"
    confdir.mkdir()
    extra = ["--set", "ssl_insecure=true"]
    port_b = free_port()
    command_b = throughput.addon_command(policy, port_b, directory / "events.jsonl", confdir) + extra
    port_a = free_port()
    bare = throughput._with_port(throughput.without_addon(command_b[: -len(extra)]), port_a)
    command_a = bare + extra
    print(f"mitmproxy: {throughput.version_of([command_b[0], '--version'])}; upstream: nginx (TLS) and a Python sink")
    print(f"  A: {' '.join(command_a)}\n  B: {' '.join(command_b)}")

    if not args.memory_only:
        with ExitStack() as running:
            process_a = start(command_a, port_a, directory / "A.out", running, timeout=120)
            process_b = start(command_b, port_b, directory / "B.out", running, timeout=120)
            check_inspecting(port_b, client_context())
            cert = directory / "cert.pem"
            if not peer_certificate_is_upstreams(port_b, OTHER, cert):
                raise RuntimeError(f"B decrypted {OTHER}: expected a tunnel (no rule matches it)")
            if peer_certificate_is_upstreams(port_b, PROVIDER, cert):
                raise RuntimeError(f"B tunnelled {PROVIDER}: expected it decrypted for the model rule")
            print(f"checked: B refuses a DeepSeek model on {PROVIDER}, decrypts {PROVIDER}, tunnels {OTHER}")
            cases = [
                Case("A-prov", f"bare mitmdump, {PROVIDER} (decrypted)", port_a, process_a.pid, PROVIDER),
                Case("B-prov", f"aipolicy, {PROVIDER} (decrypted, inspected)", port_b, process_b.pid, PROVIDER),
                Case("B-tun", f"aipolicy, {OTHER} (tunnelled)", port_b, process_b.pid, OTHER),
            ]
            results = part_one(args, cases)
        print_part_one(results)

    if not args.no_memory:
        print("\n200 MB uploads, one fresh mitmdump each, VmRSS sampled every 50 ms:", flush=True)
        logs = {PLAIN_SINK: plain_log, OTHER_SINK: sink_log, PROVIDER_SINK: sink_log}
        commands = {"A": (command_a, port_a), "B": (command_b, port_b)}
        uploads = part_two(directory, commands, logs, stack, args.quick)
        flat = print_part_two(uploads)
        print(
            f"\ntarget: memory stays flat (peak - baseline < {FLAT_MIB} MiB) while a 200 MB upload passes through "
            f"to a non-AI host: {'met' if flat else 'NOT met'}"
        )
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average at the end: {' '.join(load)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, fewer requests, 4 memory cases")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 8; quick 2)")
    parser.add_argument("--small", type=int, default=None, help="2 KB requests per case per round (default 1000)")
    parser.add_argument("--large", type=int, default=None, help="1 MB requests per case per round (default 50)")
    parser.add_argument("--memory-only", action="store_true", help="only the 200 MB uploads")
    parser.add_argument("--no-memory", action="store_true", help="skip the 200 MB uploads")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install nginx")
    args = parser.parse_args()
    args.rounds = args.rounds or (2 if args.quick else 8)
    args.small = args.small or (200 if args.quick else 1000)
    args.large = args.large or (10 if args.quick else 50)
    with tempfile.TemporaryDirectory(prefix="aipolicy-inspection-") as tmp, ExitStack() as stack:
        benchmark(args, Path(tmp), stack)


if __name__ == "__main__":
    main()
