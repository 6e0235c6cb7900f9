"""Benchmark: HTTPS through the proxy, tunnelled (not decrypted) against decrypted.

A client opens new connections through mitmdump + aipolicy: `CONNECT 127.0.0.1:P`, TLS with
SNI `bench.test`, one GET, close. The upstream is nginx with TLS on loopback. Two policies:

  T  bench.test matches no rule: the addon tunnels the connection untouched (the common case
     for non-AI sites: no decryption, no second TLS handshake, no HTTP parsing)
  D  bench.test has a path rule (`urls: [bench.test/never]`): the addon must see each request,
     so mitmproxy decrypts, re-encrypts and parses HTTP

For each: new connections per second with a small response, and MB/s downloading a 4 MiB
file over a few concurrent connections. The configurations alternate in rounds.
Run from the repository root:   .venv/bin/python bench/tunnels.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ssl
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput  # noqa: E402
from throughput import HOST, ensure_tools, free_port, start  # noqa: E402

BIG = 4 * 1024 * 1024
NGINX_TLS = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    server {{
        listen {host}:{port} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        location / {{ root {dir}/www; }}
    }}
}}
"""


def certificate(directory: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("bench.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


async def one_connection(proxy: int, upstream: int, path: str, context: ssl.SSLContext) -> int:
    reader, writer = await asyncio.open_connection(HOST, proxy)
    try:
        writer.write(f"CONNECT {HOST}:{upstream} HTTP/1.1\r\nHost: {HOST}:{upstream}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"CONNECT refused: {head[:80]!r}")
        await writer.start_tls(context, server_hostname="bench.test")
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status = await reader.readline()
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"GET {path} through the tunnel: {status!r}")
        received = len(status)
        while chunk := await reader.read(262144):
            received += len(chunk)
        return received
    finally:
        writer.close()


async def load(proxy: int, upstream: int, path: str, seconds: float, concurrency: int) -> tuple[float, float]:
    """(connections per second, MB/s) over `seconds` with `concurrency` clients."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + seconds
    done, received = 0, 0

    async def client() -> None:
        nonlocal done, received
        while time.monotonic() < deadline:
            received += await one_connection(proxy, upstream, path, context)
            done += 1

    start_time = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.monotonic() - start_time
    return done / elapsed, received / elapsed / 1e6


def benchmark(args: argparse.Namespace, directory: Path, stack: ExitStack) -> None:
    tools = ensure_tools(not args.no_install)
    if not tools["nginx"]:
        raise SystemExit("nginx is needed: apt-get install -y nginx")
    certificate(directory)
    directory.chmod(0o755)  # nginx's worker drops root and must read the files
    (directory / "www").mkdir(mode=0o755)
    (directory / "www" / "small.txt").write_text("ok\n")
    (directory / "www" / "big.bin").write_bytes(b"\xa5" * BIG)
    upstream = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_TLS.format(dir=directory, host=HOST, port=upstream))
    start([tools["nginx"], "-p", str(directory), "-c", str(conf)], upstream, directory / "nginx.out", stack)
    policies = {
        "T": "version: 1\nrules: []\ndefault: allow\n",
        "D": "version: 1\nrules:\n  - {id: path-rule, action: block, match: {urls: [bench.test/never]}}\ndefault: allow\n",
    }
    ports = {}
    for key, text in policies.items():
        policy = directory / f"policy-{key}.yaml"
        policy.write_text(text)
        confdir = directory / f"confdir-{key}"
        confdir.mkdir()
        ports[key] = free_port()
        command = throughput.addon_command(policy, ports[key], directory / f"events-{key}.jsonl", confdir)
        start(command + ["--set", "ssl_insecure=true"], ports[key], directory / f"mitmdump-{key}.out", stack)
    results: dict[tuple[str, str], list[float]] = {}
    for number in range(args.rounds):
        for key in ("T", "D") if number % 2 == 0 else ("D", "T"):
            rate, _ = asyncio.run(load(ports[key], upstream, "/small.txt", args.seconds, args.concurrency))
            _, throughput_mb = asyncio.run(load(ports[key], upstream, "/big.bin", args.seconds, 4))
            results.setdefault((key, "conn"), []).append(rate)
            results.setdefault((key, "mb"), []).append(throughput_mb)
            print(f"  round {number + 1} {key}: {rate:7.1f} connections/s  {throughput_mb:7.1f} MB/s", flush=True)
    print(f"\n{'configuration':<46} {'connections/s':>14} {'min–max':>13} {'MB/s':>8} {'min–max':>13}")
    titles = {"T": "T  tunnelled, not decrypted", "D": "D  decrypted (a path rule needs the request)"}
    for key in ("T", "D"):
        conn, mb = results[(key, "conn")], results[(key, "mb")]
        print(
            f"{titles[key]:<46} {statistics.median(conn):>14.1f} {f'{min(conn):.0f}–{max(conn):.0f}':>13} "
            f"{statistics.median(mb):>8.1f} {f'{min(mb):.0f}–{max(mb):.0f}':>13}"
        )
    conn_ratio = statistics.median(results[("T", "conn")]) / statistics.median(results[("D", "conn")])
    mb_ratio = statistics.median(results[("T", "mb")]) / statistics.median(results[("D", "mb")])
    print(f"\ntunnelled / decrypted: {conn_ratio:.2f}x connections per second, {mb_ratio:.2f}x MB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 6; quick 2)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per measurement (default 4; quick 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients opening connections (default 8)")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install nginx")
    args = parser.parse_args()
    args.rounds = args.rounds or (2 if args.quick else 6)
    args.seconds = args.seconds or (2.0 if args.quick else 4.0)
    with tempfile.TemporaryDirectory(prefix="aipolicy-tunnels-") as tmp, ExitStack() as stack:
        benchmark(args, Path(tmp), stack)


if __name__ == "__main__":
    main()
