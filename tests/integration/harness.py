"""Real parts for integration tests: loopback HTTP/HTTPS upstreams that record
what reaches them, and a real mitmdump process running the enforcer addon."""

from __future__ import annotations

import datetime
import http.server
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aipolicy.proxy_addons
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MITMDUMP = str(Path(sys.executable).with_name("mitmdump"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def make_certificate(directory: Path, names: list[str]) -> tuple[Path, Path, bytes]:
    """A self-signed certificate for the upstream: (cert file, key file, DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    alt = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n) for n in names]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "upstream-cert.pem", directory / "upstream-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file, cert.public_bytes(serialization.Encoding.DER)


@dataclass
class Upstream:
    """A loopback HTTP or HTTPS server that records every request it receives."""

    port: int
    tls: bool
    requests: list[dict[str, str]] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None
    cert_der: bytes = b""

    def hits(self, marker: str) -> list[dict[str, str]]:
        return [r for r in self.requests if marker in r["path"] or marker in r["host"]]

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def start_upstream(tls_files: tuple[Path, Path] | None = None) -> Upstream:
    upstream = Upstream(port=0, tls=tls_files is not None)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            received = self.rfile.read(length) if length else b""
            upstream.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "host": self.headers.get("host", ""),
                    "header_names": ",".join(sorted(k.lower() for k in self.headers)),
                    "body": received[: 1 << 20].decode("utf-8", "replace"),
                    "raw": received[: 1 << 20].decode("latin-1"),  # the bytes as sent: .encode("latin-1")
                    "content_encoding": self.headers.get("content-encoding", ""),
                }
            )
            chunked = re.search(r"/chunked/(\d{1,7})(?:/|$)", self.path)
            if chunked:  # a body of that many bytes in chunks of 1,000, with no Content-Length
                self._send_chunked(int(chunked.group(1)))
                return
            body = json.dumps({"upstream": "reached", "path": self.path}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.send_header("alt-svc", 'h3=":443"; ma=86400')
            self.end_headers()
            self.wfile.write(body)

        def _send_chunked(self, size: int) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for start in range(0, size, 1000):
                part = b"x" * min(1000, size - start)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls_files:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls_files[0]), str(tls_files[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    upstream.server = server
    upstream.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return upstream


@dataclass
class Proxy:
    """A running mitmdump with the enforcer addon."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path
    output: Path
    confdir: Path
    policy: Path
    handle: object = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def events(self) -> list[dict[str, object]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def events_for(self, marker: str, settle: float = 0.3, timeout: float = 10.0) -> list[dict[str, object]]:
        """Every decision event mentioning marker, waiting until at least one is written."""

        def matching() -> list[dict[str, object]]:
            return [e for e in self.events() if e.get("event") == "decision" and marker in json.dumps(e)]

        wait_until(matching, timeout)
        time.sleep(settle)  # a duplicate would have landed by now
        return matching()

    def stderr_text(self) -> str:
        return self.output.read_text(errors="replace")

    def stop(self) -> None:
        self._terminate()
        if self.handle is not None:
            self.handle.close()  # type: ignore[attr-defined]

    def _terminate(self) -> None:
        interrupt(self.process)


def interrupt(*processes: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Stop processes as Ctrl-C would (SIGINT, all at once), killing any still running after timeout."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.send_signal(signal.SIGINT)
    for process in running:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def start_proxy(
    workdir: Path,
    policy: Path,
    routes: dict[str, int] | None = None,
    extra: list[str] | None = None,
    block_page: bool = False,
    log: Path | None = None,
    via: str = "launcher",
) -> Proxy:
    """mitmdump with the enforcer: as `aipolicy proxy` runs it (``via="launcher"``: the Enforcer in
    mitmdump's chain), or as a script (``via="script"``: ``mitmdump -s proxy_addons/addon.py``).
    Options go in once each: mitmproxy drops addon options given twice with --set (the test routes
    went missing when aipolicy_log was repeated)."""
    port = free_port()
    confdir = workdir / "confdir"
    confdir.mkdir(exist_ok=True)
    log = log or workdir / "events.jsonl"
    output = workdir / "mitmdump.out"
    start = {
        "launcher": [sys.executable, "-m", aipolicy.proxy_addons.LAUNCHER_MODULE],
        "script": [MITMDUMP, "-s", aipolicy.proxy_addons.ENFORCER_SCRIPT],
    }[via]
    command = [
        *start,
        "-s", str(HERE / "route_addon.py"),  # after the Enforcer either way
        "--listen-host", "127.0.0.1",
        "--listen-port", str(port),
        "--set", f"confdir={confdir}",
        "--set", f"aipolicy_policy={policy}",
        "--set", f"aipolicy_log={log}",
        "--set", "aipolicy_reload=0.3",
        "--set", f"aipolicy_block_page={'true' if block_page else 'false'}",
        "--set", "aipolicy_proxy_id=test-proxy",
        "--set", "ssl_insecure=true",
        "--set", "flow_detail=0",
        "--set", "test_routes=" + ",".join(f"{h}={p}" for h, p in (routes or {}).items()),
    ] + (extra or [])  # fmt: skip
    handle = output.open("wb")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=workdir)
    proxy = Proxy(port, process, log, output, confdir, policy, handle)

    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"mitmdump exited with {process.returncode}:\n{proxy.stderr_text()}")
        if " listening at " not in proxy.stderr_text():
            return False  # the port may accept before the addons are configured (Python 3.12 / mitmproxy 12)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    if not wait_until(listening, timeout=30):
        proxy.stop()
        raise RuntimeError(f"mitmdump did not start listening:\n{proxy.stderr_text()}")
    return proxy


def connect_tls(proxy_port: int, target: str, sni: str | None, ca_files: list[Path], timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """CONNECT through the proxy and start TLS with a chosen SNI.

    Returns (CONNECT status line, TLS socket or None, peer certificate DER or the TLS error)."""
    sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        if not chunk:
            break
        response += chunk
    status = response.split(b"\r\n", 1)[0].decode()
    if " 200" not in status:
        sock.close()
        return status, None, response
    context = ssl.create_default_context()
    context.check_hostname = False  # the SNI under test may differ from the names in the certificate
    for ca in ca_files:
        context.load_verify_locations(str(ca))
    tls_sock = context.wrap_socket(sock, server_hostname=sni, do_handshake_on_connect=False)
    try:
        tls_sock.do_handshake()
    except (ssl.SSLError, OSError) as error:
        tls_sock.close()  # wrap_socket took over the socket: close the wrapper, or it leaks
        return status, None, error
    return status, tls_sock, tls_sock.getpeercert(binary_form=True)


def http_over(
    tls_sock: ssl.SSLSocket, host: str, path: str = "/", accept: str = "*/*"
) -> tuple[int, dict[str, str], bytes]:
    """Send one HTTP/1.1 request over an open socket and read the whole response."""
    tls_sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        try:
            chunk = tls_sock.recv(65536)
        except (ssl.SSLError, OSError):
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def env_without_proxy() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
