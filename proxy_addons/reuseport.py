"""Run mitmdump with SO_REUSEPORT on its listening sockets: ``python -m aipolicy.proxy_addons.reuseport MITMDUMP-ARGS``.

mitmproxy has no option for SO_REUSEPORT; its proxy servers listen with
``asyncio.start_server(handler, host, port)``. This launcher makes that call
pass ``reuse_port=True`` and then runs mitmdump unchanged, so several worker
processes can listen on one address and port: the Linux kernel spreads new
connections across them, clients keep their own source address (the event
log's client_ip stays true, which a TCP load balancer in front would hide),
and a worker that dies takes only its own connections with it. Linux and
the BSDs only; workers must run as the same user (the kernel refuses a
reuse-port bind from another user's socket). Should a later mitmproxy listen
some other way, the second worker fails with "address in use" and the set stops
(exit 1); tests/integration/test_workers.py would show it.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
from typing import Any


def reuse_port_servers() -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise SystemExit("aipolicy: this system has no SO_REUSEPORT; run one worker per port behind a load balancer")
    start_server = asyncio.start_server

    @functools.wraps(start_server)
    async def start_shared_server(*args: Any, **kwargs: Any) -> asyncio.Server:
        kwargs.setdefault("reuse_port", True)
        return await start_server(*args, **kwargs)

    asyncio.start_server = start_shared_server  # type: ignore[assignment]


def main() -> None:
    reuse_port_servers()
    from mitmproxy.tools.main import mitmdump

    sys.argv[0] = "mitmdump"
    sys.exit(mitmdump(sys.argv[1:]))


if __name__ == "__main__":
    main()
