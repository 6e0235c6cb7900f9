"""Hold client connections until mitmproxy has finished starting and the policy is loaded.

mitmdump opens its listening sockets before start-up is over. For the first moments the
kernel accepts connections while the addon scripts are still loading (on Python 3.12,
where mitmproxy runs asyncio tasks eagerly, the socket listens before the scripts load),
and until start-up ends mitmproxy's errorcheck addon stops the whole proxy on the first
ERROR record logged: on mitmproxy 12 with Python 3.12 a request that arrived early was
served inside that window, so a fail-closed block of it (which logs an error) or an event
log that could not be written made the proxy exit ("Error logged during startup,
exiting...").

This addon's ``client_connected`` hook (async: mitmproxy reads nothing from a client
until it returns) waits until the ``running`` hook has been called, the enforcer has a
policy, and errorcheck has stopped watching, then lets each connection proceed. The wait
is bounded: after ``HOLD_LIMIT`` seconds connections proceed anyway, and the enforcer
still fails closed (no policy: every decision raises and the flow is blocked). Background
tasks that may log errors (the policy feed's first fetch) wait here too.

Both ways of starting the addon need it, for different parts of the wait:

- ``mitmdump -s proxy_addons/addon.py``: ScriptLoader loads the script from a task, so on
  Python 3.12 the port accepts before the Enforcer exists or has a policy.
- The launcher (``python -m aipolicy.proxy_addons.launcher``, what ``aipolicy proxy`` runs):
  the Enforcer is configured before the servers start, so ``policy_loaded`` is already true
  when the first connection arrives and that part of the wait is a no-op. But the port still
  accepts before the ``running`` hook and while errorcheck watches: with the gate turned off,
  tests/integration/test_startup.py's fault test stops the launcher too on Python 3.12 /
  mitmproxy 12 ("Errors logged during startup, exiting..."). Once start-up is over
  (``open``), each connection costs one check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mitmproxy import connection, ctx

logger = logging.getLogger("aipolicy")

HOLD_LIMIT = 30.0  # seconds a connection is held at most
POLL = 0.01  # seconds between checks


class StartupGate:
    def __init__(self, policy_loaded: Callable[[], bool]) -> None:
        self.policy_loaded = policy_loaded
        self.is_running = False
        self.open = False

    def running(self) -> None:
        self.is_running = True

    def done(self) -> None:
        self.is_running = False

    async def client_connected(self, client: connection.Client) -> None:
        await self.wait()

    async def wait(self) -> None:
        """Return once start-up is over (or after HOLD_LIMIT seconds)."""
        if self.open:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HOLD_LIMIT
        while not self.started() and loop.time() < deadline:
            await asyncio.sleep(POLL)
        if not self.open and not self.started():
            logger.warning(f"aipolicy: start-up not over after {HOLD_LIMIT:g}s; letting the held connection proceed")
        self.open = self.open or self.started()

    def started(self) -> bool:
        """Start-up is over: mitmproxy runs, the policy is loaded, no start-up error check is watching."""
        return self.is_running and self.policy_loaded() and not _errorcheck_watching()


def _errorcheck_watching() -> bool:
    """True while mitmproxy's errorcheck addon still treats an ERROR record as a failed start-up."""
    errorcheck = ctx.master.addons.get("errorcheck") if hasattr(ctx, "master") else None
    handler = getattr(errorcheck, "logger", None)
    return isinstance(handler, logging.Handler) and handler in logging.getLogger().handlers
