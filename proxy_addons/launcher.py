"""mitmdump with the Enforcer in its addon chain: ``python -m aipolicy.proxy_addons.launcher [--reuse-port] MITMDUMP-ARGS…``.

This is how ``aipolicy proxy`` starts the proxy. It runs mitmproxy's own mitmdump (its
command line, its DumpMaster, its signal handling: ``mitmproxy.tools.main.run``) with one
difference: the Enforcer is an addon of the master itself, not a script. With
``mitmdump -s proxy_addons/addon.py`` mitmproxy walks ScriptLoader → Script → module →
Enforcer on every hook of every request; here the Enforcer sits straight in the chain, at the
place where ScriptLoader's scripts run (after ``proxyauth`` and ``proxyserver``, before
``next_layer`` and the rest), so hooks run in the same order as with ``-s``, and scripts
given with ``-s`` still run after the Enforcer.

When no ``-s`` script is given, the Enforcer takes ScriptLoader's own place in the chain, which
saves one more addon call per hook: about a third of the addon's per-request cost in all
against ``-s`` (bench/throughput.py); scripts can then not be added later (mitmdump has no way
to add them after start-up anyway).

The Enforcer is registered when the master is built, so its options exist while the command
line is read (a bad ``--set aipolicy_…`` value is refused as mitmdump refuses its own, and
``--options`` lists them). It joins the chain and is configured with every option once they
are all read, just before the proxy servers start, as ScriptLoader configures a script: the
policy is loaded and the event log open before the port accepts a connection.

``--reuse-port`` (first, before the mitmdump arguments) makes the proxy listen with
SO_REUSEPORT, so that several processes share one address and port (``aipolicy proxy
--workers N`` and ``--reuse-port``). mitmproxy has no option for it; its proxy servers listen
with ``asyncio.start_server(handler, host, port)``, and ``reuse_port_servers`` makes that call
pass ``reuse_port=True``. The Linux kernel then spreads new connections across the
processes, clients keep their own source address (the event log's client_ip stays true,
which a TCP load balancer in front would hide), and a worker that dies takes only its own
connections with it. Linux and the BSDs only; the processes must run as the same user (the
kernel refuses a reuse-port bind from another user's socket). Should a later mitmproxy listen
some other way, the second worker fails with "address in use" and the set stops (exit 1);
tests/integration/test_workers.py would show it.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
from typing import Any

from mitmproxy import addonmanager, exceptions, hooks, options
from mitmproxy.tools import cmdline
from mitmproxy.tools.dump import DumpMaster
from mitmproxy.tools.main import run

from .enforcer import Enforcer

REUSE_PORT = "--reuse-port"


class EnforcingMaster(DumpMaster):
    """mitmdump's master with the Enforcer in its addon chain where ScriptLoader's scripts run."""

    def __init__(self, opts: options.Options, **kwargs: Any) -> None:
        super().__init__(opts, **kwargs)
        self.enforcer = Enforcer()
        # Registered now (its options exist while the command line is read), in the chain later:
        # until then option changes do not reach it, and one configure call gets them all.
        self.addons.register(self.enforcer)

    async def run(self) -> None:
        self.join_chain()
        await super().run()

    def join_chain(self) -> None:
        """Put the Enforcer where ScriptLoader's scripts run and configure it with every option, as
        ScriptLoader configures a script it loads (Script.loadscript), before the servers start."""
        self._take_place()
        # A refused option (a policy that does not load) ends the start-up as mitmdump ends it for
        # its own options; any other error is logged, and mitmproxy's errorcheck stops the start-up.
        try:
            with addonmanager.safecall():
                self.addons.invoke_addon_sync(self.enforcer, hooks.ConfigureHook(self.options.keys()))
        except exceptions.OptionsError as error:
            print(f"{sys.argv[0]}: {error}", file=sys.stderr)
            sys.exit(1)

    def _take_place(self) -> None:
        chain, loader = self.addons.chain, self.addons.get("scriptloader")
        if loader not in chain:
            chain.append(self.enforcer)
        elif self.options.scripts:
            chain.insert(chain.index(loader), self.enforcer)  # and the -s scripts run after it, as before
        else:
            # mitmproxy calls into every addon of the chain for every hook of every request, an empty
            # ScriptLoader too (6-19 µs a request, bench/README.md): with no script to run, the
            # Enforcer takes its place. Scripts are then given at start-up or not at all.
            chain[chain.index(loader)] = self.enforcer
            self.options.subscribe(self._refuse_scripts, ["scripts"])

    @staticmethod
    def _refuse_scripts(opts: options.Options, updated: set[str]) -> None:
        if opts.scripts:
            raise exceptions.OptionsError(
                "scripts: this proxy was started without -s scripts and cannot load one now; restart it with -s SCRIPT"
            )


def reuse_port_servers() -> None:
    """Make mitmproxy's listening sockets SO_REUSEPORT (it calls asyncio.start_server)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise SystemExit("aipolicy: this system has no SO_REUSEPORT; run one worker per port behind a load balancer")
    start_server = asyncio.start_server

    @functools.wraps(start_server)
    async def start_shared_server(*args: Any, **kwargs: Any) -> asyncio.Server:
        kwargs.setdefault("reuse_port", True)
        return await start_server(*args, **kwargs)

    asyncio.start_server = start_shared_server  # type: ignore[assignment]


def mitmdump_filters(args: Any) -> dict[str, str]:
    """mitmdump's own extra options: a trailing filter expression applies to saving, reading and dumping."""
    if not args.filter_args:
        return {}
    expression = " ".join(args.filter_args)
    return {"save_stream_filter": expression, "readfile_filter": expression, "dumper_filter": expression}


def main(arguments: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if arguments is None else arguments
    if arguments[:1] == [REUSE_PORT]:
        reuse_port_servers()
        arguments = arguments[1:]
    sys.argv[0] = "mitmdump"  # mitmdump's command line: its usage text and its errors say so
    run(EnforcingMaster, cmdline.mitmdump, arguments, mitmdump_filters)


if __name__ == "__main__":
    main()
