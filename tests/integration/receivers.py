"""Real loopback receivers for the SIEM sinks: syslog over UDP, TCP and TLS, and a webhook."""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import ssl
import threading
from pathlib import Path
from typing import Any

from tests.siem import split_octet_counted


class SyslogReceiver:
    """Collects syslog messages: one per UDP datagram, or octet-counted frames over TCP/TLS."""

    def __init__(self, transport: str, tls_files: tuple[Path, Path] | None = None, port: int = 0) -> None:
        self.transport = transport
        self.messages: list[str] = []
        self.connections = 0
        self._stop = threading.Event()
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.settimeout(0.1)
            self.port = self.sock.getsockname()[1]
            self.thread = threading.Thread(target=self._udp, daemon=True)
            self.thread.start()
            return
        receiver = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                receiver.connections += 1
                self.request.settimeout(0.2)
                stream = b""
                while not receiver._stop.is_set():
                    try:
                        chunk = self.request.recv(65536)
                    except TimeoutError:
                        continue
                    except (OSError, ssl.SSLError):
                        return
                    if not chunk:
                        return
                    messages, stream = split_octet_counted(stream + chunk)
                    receiver.messages += [m.decode() for m in messages]

        self.server = _Server(("127.0.0.1", port), Handler)
        if tls_files:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls_files[0]), str(tls_files[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.transport}://127.0.0.1:{self.port}"

    def _udp(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append(data.decode())

    def matching(self, marker: str) -> list[str]:
        return [m for m in self.messages if marker in m]

    def stop(self) -> None:
        self._stop.set()
        if self.transport == "udp":
            self.thread.join(2)
            self.sock.close()
        else:
            self.server.shutdown()
            self.server.server_close()


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # a receiver may come back on the port a proxy already sends to
    daemon_threads = True


class WebhookReceiver:
    """An HTTP server that answers 500 while ``failing`` is set, and records the batches it accepts."""

    def __init__(self) -> None:
        self.failing = True
        self.attempts = 0
        self.batches: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.attempts += 1
                receiver.authorizations.append(self.headers.get("authorization", ""))
                status = 500 if receiver.failing else 200
                if status == 200:
                    receiver.batches.append(json.loads(body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def events(self) -> list[dict[str, Any]]:
        return [event for batch in self.batches for event in batch["events"]]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
