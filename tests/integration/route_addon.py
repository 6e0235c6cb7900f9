"""Test-only mitmproxy addon: send chosen host names to loopback ports.

Stands in for DNS, at the network edge: the enforcer still sees exactly the
names the client presented. Hosts not listed keep their own address (and
blocked ones are never contacted at all)."""

from __future__ import annotations

from mitmproxy import ctx
from mitmproxy.proxy import server_hooks


class Routes:
    def __init__(self) -> None:
        self.routes: dict[str, int] = {}

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option("test_routes", str, "", "host=port,… pairs routed to 127.0.0.1")

    def configure(self, updated: set[str]) -> None:
        if "test_routes" in updated:
            pairs = [p.split("=", 1) for p in ctx.options.test_routes.split(",") if "=" in p]
            self.routes = {host: int(port) for host, port in pairs}

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        address = data.server.address
        if not address:
            return
        host = address[0].lower().rstrip(".")
        for name, port in self.routes.items():
            if host == name or host.endswith("." + name):
                data.server.address = ("127.0.0.1", port)
                return


addons = [Routes()]
