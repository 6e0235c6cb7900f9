"""The admin listener: ``/healthz`` and Prometheus ``/metrics`` on a port of its own.

It listens on its own address (option ``aipolicy_admin``, off by default), in
a thread, so a slow scrape never holds up the proxy. It is never reachable
*through* the proxy: a proxied connection to the admin address is refused at
``server_connect``, after resolving the name, and as a second line the listener
itself turns away any connection that the proxy opened (by its source port).
"""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable

from mitmproxy import ctx, exceptions
from mitmproxy.proxy import server_hooks

from aipolicy import Health, Metrics
from aipolicy.formats import METRICS_CONTENT_TYPE

logger = logging.getLogger("aipolicy")


def parse_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port); a ValueError saying what is valid."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"admin address {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9464, or 'off'")
    return host, int(port)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    admin: Admin

    def __init__(self, address: tuple[str, int], admin: Admin) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.admin = admin
        super().__init__(address, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        admin = self.server.admin
        if (self.client_address[0], self.client_address[1]) in admin.proxied:
            # Defence in depth: the proxy itself opened this connection, for a client. Checked once the
            # request is read, not at accept: the proxy sends it only after its server_connected hook.
            self.close_connection = True
            return
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            health = admin.health()
            self._answer(health.status, "application/json", health.body())
        elif path == "/metrics":
            self._answer(200, METRICS_CONTENT_TYPE, admin.metrics.render())
        else:
            self._answer(404, "text/plain; charset=utf-8", b"not found: try /healthz or /metrics\n")

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.send_header("cache-control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # scrapes every few seconds would drown the proxy's own log


class Admin:
    def __init__(self, metrics: Metrics, health: Callable[[], Health]) -> None:
        self.metrics, self.health = metrics, health
        self.server: _Server | None = None
        self.address: tuple[str, int] | None = None
        self.proxied: set[tuple[str, int]] = set()

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option(
            "aipolicy_admin", str, "",
            "Serve /healthz and Prometheus /metrics on HOST:PORT (e.g. 127.0.0.1:9464), never through the proxy. "
            "Empty or 'off': no admin listener.",
        )  # fmt: skip

    def configure(self, updated: set[str]) -> None:
        if "aipolicy_admin" not in updated:
            return
        value = ctx.options.aipolicy_admin.strip()
        self._stop()
        if value in ("", "off"):
            return
        try:
            address = parse_address(value)
            server = _Server(address, self)
        except (ValueError, OSError) as error:
            raise exceptions.OptionsError(f"aipolicy_admin: {error}") from None
        self.server, self.address = server, server.server_address[:2]
        threading.Thread(target=server.serve_forever, name="aipolicy-admin", daemon=True).start()
        logger.info(f"aipolicy: admin listener on http://{value}/healthz and /metrics")

    def done(self) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = self.address = None

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        address = data.server.address
        if self.address is None or address is None or address[1] != self.address[1]:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)
        except OSError:
            return  # mitmproxy will not reach it either
        if any(self._is_admin(info[4][0]) for info in infos):
            data.server.error = "aipolicy: the admin listener is not reachable through the proxy"

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        peer, local = data.server.peername, data.server.sockname
        if self.address and peer and local and peer[1] == self.address[1]:
            if self._is_admin(peer[0]) or peer[0] == local[0]:
                self.proxied.add((local[0], local[1]))

    def server_disconnected(self, data: server_hooks.ServerConnectionHookData) -> None:
        if data.server.sockname:
            self.proxied.discard((data.server.sockname[0], data.server.sockname[1]))

    def _is_admin(self, host: str) -> bool:
        assert self.address is not None
        bound = ipaddress.ip_address(self.address[0])
        try:
            target = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if bound.is_unspecified:
            return target.is_loopback or target.is_unspecified or target.is_private or target.is_link_local
        return target == bound or (bound.is_loopback and target.is_loopback)
