"""The launcher's master, in process: the Enforcer straight in mitmdump's chain, where scripts run
(in ScriptLoader's own place when there are none), with its options known while the command line
is read and configured before the servers start."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest
from mitmproxy import ctx, exceptions, options
from mitmproxy.addonmanager import _get_name

with warnings.catch_warnings():
    # the default addons include proxyauth, whose ldap3 uses pyasn1 names deprecated upstream
    warnings.simplefilter("ignore", DeprecationWarning)
    from aipolicy.proxy_addons.launcher import EnforcingMaster
    from mitmproxy.tools.dump import DumpMaster

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def settings(tmp_path: Path) -> list[str]:
    return [
        f"aipolicy_policy={FIXTURES / 'policy.yaml'}",
        f"aipolicy_log={tmp_path / 'events.jsonl'}",
        f"confdir={tmp_path / 'confdir'}",
        "listen_host=127.0.0.1",
        "listen_port=0",
    ]


def master_with(*specs: str) -> EnforcingMaster:
    """Built and given its options as mitmproxy's run() does (must be called inside an event loop)."""
    opts = options.Options()
    master = EnforcingMaster(opts, with_termlog=False, with_dumper=False)
    opts.set(*specs, defer=True)
    return master


def chain_names(master: DumpMaster) -> list[str]:
    return [_get_name(addon) for addon in master.addons.chain]


def test_without_scripts_the_enforcer_takes_the_script_loaders_place(tmp_path: Path) -> None:
    async def chains() -> tuple[list[str], list[str]]:
        bare = DumpMaster(options.Options(), with_termlog=False, with_dumper=False)
        master = master_with(*settings(tmp_path))
        master.join_chain()
        await master.enforcer.done()
        return chain_names(bare), chain_names(master)

    bare, launched = asyncio.run(chains())
    assert launched == ["enforcer" if name == "scriptloader" else name for name in bare]
    assert launched.index("proxyauth") < launched.index("enforcer") < launched.index("nextlayer")


def test_with_scripts_the_enforcer_runs_just_before_them(tmp_path: Path) -> None:
    script = tmp_path / "other.py"
    script.write_text("addons = []\n")

    async def chain() -> tuple[list[str], int]:
        master = master_with(*settings(tmp_path), f"scripts={script}")
        master.join_chain()
        scripts = len(master.addons.get("scriptloader").addons)
        await master.enforcer.done()
        return chain_names(master), scripts

    names, scripts = asyncio.run(chain())
    assert names.count("enforcer") == 1 and scripts == 1  # the Enforcer is not one of ScriptLoader's scripts
    assert names.index("enforcer") == names.index("scriptloader") - 1  # the -s scripts run after it, as before
    assert names.index("proxyauth") < names.index("enforcer")


def test_without_scripts_at_start_up_none_can_be_added_later(tmp_path: Path) -> None:
    script = tmp_path / "late.py"
    script.write_text("addons = []\n")

    async def add_one() -> list[str]:
        master = master_with(*settings(tmp_path))
        master.join_chain()
        try:
            with pytest.raises(exceptions.OptionsError, match="started without -s scripts"):
                master.options.update(scripts=[str(script)])
            return list(master.options.scripts)
        finally:
            await master.enforcer.done()

    assert asyncio.run(add_one()) == []  # refused and rolled back, not silently never run


def test_the_policy_is_loaded_and_the_log_open_before_the_servers_start(tmp_path: Path) -> None:
    class StopWhenRunning:
        def running(self) -> None:
            ctx.master.shutdown()

    async def start() -> tuple[list[tuple[bool, bool]], int]:
        master = master_with(*settings(tmp_path))
        master.addons.add(StopWhenRunning())
        proxyserver = master.addons.get("proxyserver")
        setup_servers, seen = proxyserver.setup_servers, []

        async def watched_setup_servers() -> bool:
            seen.append((master.enforcer.policy is not None, master.enforcer.events is not None))
            return await setup_servers()  # type: ignore[no-any-return]

        proxyserver.setup_servers = watched_setup_servers
        await master.run()
        listened = len(proxyserver.listen_addrs())
        await proxyserver.servers.update([])  # mitmdump leaves closing them to the process exit
        return seen, listened

    seen, listened = asyncio.run(start())
    assert seen == [(True, True)]
    assert listened == 1  # the servers did start, after that
    assert (tmp_path / "events.jsonl").exists()


def test_the_enforcer_options_are_known_while_the_command_line_is_read() -> None:
    async def read() -> None:
        master_with("aipolicy_block_page=maybe")  # a script's option would be deferred, and refused later

    with pytest.raises(exceptions.OptionsError, match=r'(?i)boolean must be "true", "false"'):
        asyncio.run(read())


def test_every_option_reaches_the_enforcer_once_all_are_read(tmp_path: Path) -> None:
    """Options the command line leaves at their defaults are configured too: the shipped policy loads."""

    async def configured() -> tuple[str, int]:
        master = master_with(f"aipolicy_log={tmp_path / 'events.jsonl'}", f"confdir={tmp_path / 'confdir'}")
        assert master.enforcer.policy is None  # not configured while the options were read
        master.join_chain()
        policy = master.enforcer.policy
        assert policy is not None
        await master.enforcer.done()
        return policy.path, len(policy.rules)

    path, rules = asyncio.run(configured())
    assert path.endswith("default.yaml") and rules > 0
