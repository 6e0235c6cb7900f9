"""``aipolicy proxy``: start mitmdump with the enforcer addon."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click
from rich.markup import escape

import aipolicy
from proxy_addons import ENFORCER_SCRIPT

from ._common import policy_option, stderr
from ._hardening import blocked_vendors, check_block_global, check_ca_key, check_remote, sink_options, sink_settings


def find_mitmdump() -> str:
    beside = Path(sys.executable).with_name("mitmdump")
    if beside.exists():
        return str(beside)
    found = shutil.which("mitmdump")
    if not found:
        raise click.ClickException(
            "mitmdump not found: install mitmproxy into this environment (pip install aipolicy brings it)"
        )
    return found


def mitmdump_command(
    policy_path: str,
    host: str,
    port: int,
    log: str,
    confdir: str | None,
    block_page: bool,
    proxy_id: str,
    extra: tuple[str, ...],
) -> list[str]:
    command = [
        find_mitmdump(),
        "-s", ENFORCER_SCRIPT,
        "--listen-host", host,
        "--listen-port", str(port),
        "--set", f"aipolicy_policy={policy_path}",
        "--set", f"aipolicy_log={log}",
        "--set", f"aipolicy_block_page={'true' if block_page else 'false'}",
        "--set", "connection_strategy=lazy",
        "--set", "flow_detail=0",
    ]  # fmt: skip
    if proxy_id:
        command += ["--set", f"aipolicy_proxy_id={proxy_id}"]
    if confdir:
        command += ["--set", f"confdir={confdir}"]
    return command + list(extra)


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
    syslog: str,
    syslog_format: str,
    syslog_ca: str | None,
    webhook: str,
    webhook_token_file: str | None,
    admin: str,
    allow_remote: bool,
    mitmdump_args: tuple[str, ...],
) -> None:
    """Run the enforcing proxy (mitmdump with the aipolicy addon).

    Arguments after -- go to mitmdump unchanged. The policy is validated first;
    the running proxy reloads it by itself when the file changes.

    \b
    Example:
        aipolicy proxy
        aipolicy proxy --policy /etc/aipolicy/policy.yaml --host 0.0.0.0 --port 3128 \\
            --log /var/log/aipolicy/events.jsonl -- --set proxyauth=@/etc/aipolicy/htpasswd
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
    warnings = [check_remote(host, allow_remote, mitmdump_args), check_block_global(mitmdump_args)]
    settings = sink_settings(syslog, syslog_format, syslog_ca, webhook, webhook_token_file, admin)
    command = mitmdump_command(path, host, port, log, confdir, block_page, proxy_id, (*settings, *mitmdump_args))
    ca = Path(confdir or "~/.mitmproxy").expanduser() / "mitmproxy-ca-cert.pem"
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
    os.execv(command[0], command)
