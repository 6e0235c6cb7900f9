"""``aipolicy proxy``: start mitmdump with the enforcer addon in its chain (proxy_addons/launcher.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click
from rich.markup import escape

import aipolicy

from ._common import policy_option, stderr
from ._feed import feed_arguments, feed_options
from ._hardening import (
    blocked_vendors,
    check_admin,
    check_block_global,
    check_ca_key,
    check_public_key_ca,
    check_remote,
    sink_options,
    sink_settings,
)
from ._programs import launcher_command
from ._workers import prepare_ca, run_workers


def mitmdump_arguments(
    policy_path: str,
    host: str,
    port: int,
    log: str,
    confdir: str | None,
    block_page: bool,
    proxy_id: str,
    extra: tuple[str, ...],
    log_max_size: str = "0",
    log_max_age: str = "0",
) -> list[str]:
    """The mitmdump options `aipolicy proxy` runs the launcher with (cli/_programs.launcher_command); the same
    options work for `mitmdump -s proxy_addons/addon.py`."""
    command = [
        "--listen-host", host,
        "--listen-port", str(port),
        "--set", f"aipolicy_policy={policy_path}",
        "--set", f"aipolicy_log={log}",
        "--set", f"aipolicy_block_page={'true' if block_page else 'false'}",
        "--set", "connection_strategy=lazy",
        "--set", "flow_detail=0",
        "--set", "http3=false",  # never QUIC: no HTTP/3 upstream, h3 stripped from DNS HTTPS records
    ]  # fmt: skip
    if proxy_id:
        command += ["--set", f"aipolicy_proxy_id={proxy_id}"]
    if log_max_size != "0":
        command += ["--set", f"aipolicy_log_max_size={log_max_size}"]
    if log_max_age != "0":
        command += ["--set", f"aipolicy_log_max_age={log_max_age}"]
    if confdir:
        command += ["--set", f"confdir={confdir}"]
    return command + list(extra)


def shared_state_arguments(state_dir: str | None, confdir: str | None, several: bool) -> tuple[str, ...]:
    """mitmdump options for the warn and quota state that several processes on one port share."""
    if state_dir is None and several:
        state_dir = str(Path(confdir or "~/.mitmproxy").expanduser() / "aipolicy-state")
    if not state_dir:
        return ()
    state_dir = os.path.abspath(os.path.expanduser(state_dir))
    try:
        aipolicy.SharedState(state_dir).close()  # the secret and the tables made once, before the workers start
    except aipolicy.SharedStateError as error:
        raise click.ClickException(f"{error}; the proxy was not started") from None
    return ("--set", f"aipolicy_state_dir={state_dir}")


def _check(parse: Callable[[str], object]) -> Callable[[click.Context, click.Parameter, str], str]:
    """A click callback that rejects a value ``parse`` does not take (the value is passed on as given)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str) -> str:
        try:
            parse(value)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
        return value

    return callback


@click.command(context_settings={"ignore_unknown_options": True})
@policy_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Beyond loopback, needs proxy authentication (or --allow-remote behind a firewall).",
)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--log",
    "log_path",
    envvar="AIPOLICY_LOG",
    default="aipolicy-events.jsonl",
    show_default=True,
    help="Event log (JSON Lines); '-' for standard output.",
)
@click.option(
    "--confdir",
    type=click.Path(file_okay=False),
    default=None,
    help="mitmproxy configuration directory, where the CA lives (default: ~/.mitmproxy).",
)
@click.option(
    "--block-page/--no-block-page",
    default=False,
    show_default=True,
    help="For blocked HTTPS sites, decrypt and show the block page instead of refusing the CONNECT (clients must trust the CA).",
)
@click.option("--proxy-id", default="", help="This proxy's name in events (default: the host name).")
@feed_options
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="mitmdump worker processes sharing the port (SO_REUSEPORT; Linux). Events name them ID-w1, ID-w2 …",
)
@click.option(
    "--reuse-port",
    is_flag=True,
    help="Listen with SO_REUSEPORT, so that several aipolicy proxy processes (e.g. systemd aipolicy@N units) share the port.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory where the processes share warn acknowledgements, quota counters and the warning form's key "
    "(default with --workers or --reuse-port: CONFDIR/aipolicy-state; otherwise kept in memory).",
)
@click.option(
    "--log-max-size",
    default="0",
    callback=_check(aipolicy.parse_log_size),
    metavar="SIZE",
    help="Rotate the event log before it grows past SIZE (100M, 1G); rotated files are gzip-compressed. 0: never.",
)
@click.option(
    "--log-max-age",
    default="0",
    callback=_check(aipolicy.parse_log_age),
    metavar="AGE",
    help="Rotate the event log once its first line is older than AGE (24h, 7d). 0: never.",
)
@sink_options
@click.argument("mitmdump_args", nargs=-1, type=click.UNPROCESSED)
def proxy(
    policy_path: str | None,
    host: str,
    port: int,
    log_path: str,
    confdir: str | None,
    block_page: bool,
    proxy_id: str,
    policy_url: str | None,
    policy_pubkey: str | None,
    policy_refresh: float,
    workers: int,
    reuse_port: bool,
    state_dir: str | None,
    log_max_size: str,
    log_max_age: str,
    syslog: str,
    syslog_format: str,
    syslog_ca: str | None,
    webhook: str,
    webhook_token_file: str | None,
    admin: str,
    allow_remote: bool,
    mitmdump_args: tuple[str, ...],
) -> None:
    """Run the enforcing proxy (mitmdump with the aipolicy addon in its addon chain).

    Arguments after -- go to mitmdump unchanged. The policy is validated first;
    the running proxy reloads it by itself when the file changes.

    \b
    Example:
        aipolicy proxy
        aipolicy proxy --policy /etc/aipolicy/policy.yaml --host 0.0.0.0 --port 3128 \\
            --log /var/log/aipolicy/events.jsonl --log-max-size 100M --log-max-age 1d \\
            -- --set proxyauth=@/etc/aipolicy/htpasswd
        aipolicy proxy --policy-url https://policy.example.org/policy-bundle.json \\
            --policy-pubkey /etc/aipolicy/aipolicy-signing.pub
        aipolicy proxy --workers 4 --host 0.0.0.0 --port 3128 -- --set proxyauth=@/etc/aipolicy/htpasswd
        aipolicy proxy --syslog tls://siem.example:6514 --syslog-format cef --admin 127.0.0.1:9464
    """
    path = os.path.abspath(policy_path) if policy_path else str(aipolicy.default_policy())
    try:
        loaded = aipolicy.load_policy(path)
    except aipolicy.PolicyError as error:
        raise click.ClickException(f"the policy does not load, so the proxy was not started:\n{error}") from None
    if mitmdump_args and mitmdump_args[0] == "--":
        mitmdump_args = mitmdump_args[1:]
    log = log_path if log_path == "-" else os.path.abspath(log_path)
    feed = feed_arguments(policy_url, policy_pubkey, policy_refresh)
    rotation = (log_max_size, log_max_age)
    warnings = [check_remote(host, allow_remote, mitmdump_args), check_block_global(mitmdump_args)]
    settings = sink_settings(syslog, syslog_format, syslog_ca, webhook, webhook_token_file, admin)
    warnings.append(check_admin(admin))
    shared = shared_state_arguments(state_dir, confdir, workers > 1 or reuse_port)
    extra = (*feed, *shared, *settings, *mitmdump_args)
    arguments = mitmdump_arguments(path, host, port, log, confdir, block_page, proxy_id, extra, *rotation)
    command = launcher_command(arguments, reuse_port)
    ca = Path(confdir or "~/.mitmproxy").expanduser() / "mitmproxy-ca-cert.pem"
    check_public_key_ca(mitmdump_args, ca.parent)
    warnings.append(check_ca_key(ca.parent))
    vendors = blocked_vendors(loaded)
    sinks = [f"syslog {syslog} ({syslog_format})" if syslog else "", f"webhook {webhook}" if webhook else ""]
    stderr.print(
        f"[bold]aipolicy[/] enforcing [cyan]{escape(path)}[/] (policy {loaded.hash}, {len(loaded.rules)} rules, default {loaded.default})\n"
        f"  blocked vendors: {escape(', '.join(vendors) or 'none')}\n"
        f"  listening on [bold]http://{escape(host)}:{port}[/]  — set it as the HTTP and HTTPS proxy of your clients\n"
        f"  events to {escape(log)}\n"
        f"  SIEM sinks: {escape(', '.join(s for s in sinks if s) or 'none')}\n"
        f"  admin (/healthz, /metrics): {escape('off' if admin.strip().lower() == 'off' else 'http://' + admin)}\n"
        f"  CA for block pages over HTTPS: {escape(str(ca))} (or browse to http://mitm.it through the proxy)"
    )
    for warning in filter(None, warnings):
        stderr.print(f"[bold red]warning:[/] {escape(warning)}")
    sys.stderr.flush()
    if workers > 1:
        prepare_ca(confdir)  # one CA for all workers, made before they race to create their own
        base = proxy_id or aipolicy.default_proxy_id()

        def worker_extra(number: int) -> tuple[str, ...]:
            """Each worker its own admin port (PORT, PORT+1, …): they cannot share one listener."""
            shifted = admin
            if admin.strip().lower() != "off":
                admin_host, _, admin_port = admin.rpartition(":")
                shifted = f"{admin_host}:{int(admin_port) + number - 1}"
            own = sink_settings(syslog, syslog_format, syslog_ca, webhook, webhook_token_file, shifted)
            return (*feed, *shared, *own, *mitmdump_args)

        commands = [
            launcher_command(
                mitmdump_arguments(
                    path, host, port, log, confdir, block_page, f"{base}-w{n}", worker_extra(n), *rotation
                ),
                reuse_port=True,
            )
            for n in range(1, workers + 1)
        ]
        sys.exit(run_workers(commands, relay_stdout=log == "-"))
    os.execv(command[0], command)
