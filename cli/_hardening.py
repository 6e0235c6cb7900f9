"""Start-up checks and options of ``aipolicy proxy`` for SIEM sinks, metrics and hardening."""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
import yaml

import aipolicy

F = TypeVar("F", bound=Callable[..., Any])


def sink_options(function: F) -> F:
    options = [
        click.option(
            "--syslog",
            default="",
            metavar="URL",
            help="Send events to syslog too: udp://HOST[:514], tcp://HOST[:514] or tls://HOST[:6514].",
        ),
        click.option(
            "--syslog-format",
            type=click.Choice(aipolicy.SYSLOG_FORMATS),
            default="rfc5424",
            show_default=True,
            help="rfc5424: fields as structured data; cef: ArcSight CEF in an RFC 5424 header.",
        ),
        click.option(
            "--syslog-ca",
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            help="CA file to verify a tls:// syslog server (default: the system's CAs).",
        ),
        click.option("--webhook", default="", metavar="URL", help="POST events as JSON batches to this URL too."),
        click.option(
            "--webhook-token-file",
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            help="File holding the webhook's bearer token (or set $AIPOLICY_WEBHOOK_TOKEN); never the token itself.",
        ),
        click.option(
            "--admin",
            default="off",
            show_default=True,
            metavar="HOST:PORT|off",
            help="Serve /healthz and Prometheus /metrics here, e.g. 127.0.0.1:9464 (never reachable through the proxy).",
        ),
        click.option(
            "--allow-remote",
            is_flag=True,
            help="Listen on a non-loopback address without proxy authentication (only behind a firewall).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def sink_settings(
    syslog: str,
    syslog_format: str,
    syslog_ca: str | None,
    webhook: str,
    webhook_token_file: str | None,
    admin: str,
) -> list[str]:
    """mitmdump ``--set`` arguments for the sinks and the admin listener; a UsageError for a bad value."""
    settings = []
    if syslog:
        try:
            aipolicy.parse_syslog_url(syslog)
        except aipolicy.SinkConfigError as error:
            raise click.UsageError(f"--syslog: {error}") from None
        settings += [f"aipolicy_syslog={syslog}", f"aipolicy_syslog_format={syslog_format}"]
        if syslog_ca:
            settings.append(f"aipolicy_syslog_ca={os.path.abspath(syslog_ca)}")
    if webhook:
        parts = urlsplit(webhook)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise click.UsageError(f"--webhook {webhook!r}: expected an http:// or https:// URL")
        if parts.username or parts.password:
            raise click.UsageError(
                "--webhook: the URL holds credentials, which would show in the process list; "
                "put the token in a file and pass --webhook-token-file FILE (or set $AIPOLICY_WEBHOOK_TOKEN)"
            )
        settings.append(f"aipolicy_webhook={webhook}")
        if webhook_token_file:
            settings.append(f"aipolicy_webhook_token_file={os.path.abspath(webhook_token_file)}")
    if admin.strip().lower() != "off":
        host, sep, port = admin.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise click.UsageError(f"--admin {admin!r}: expected HOST:PORT (e.g. 127.0.0.1:9464) or off")
        settings.append(f"aipolicy_admin={admin}")
    return [arg for setting in settings for arg in ("--set", setting)]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_remote(host: str, allow_remote: bool, mitmdump_args: tuple[str, ...]) -> str:
    """A warning to print, or a UsageError when the proxy would be open to the network unauthenticated."""
    if is_loopback(host):
        return ""
    authenticated = any("proxyauth=" in arg or arg == "--proxyauth" for arg in mitmdump_args)
    if authenticated:
        return ""
    if not allow_remote:
        raise click.UsageError(
            f"--host {host} listens beyond this machine without proxy authentication, so anyone who reaches the port "
            "can use the proxy. Add proxy authentication (-- --set proxyauth=@/etc/aipolicy/htpasswd), or pass "
            "--allow-remote when a firewall limits who reaches it."
        )
    return (
        f"listening on {host} WITHOUT proxy authentication (--allow-remote): make sure a firewall limits who reaches it"
    )


def check_admin(admin: str) -> str:
    """A warning when the admin listener (no authentication) listens on every interface or a public address."""
    host, _, port = admin.rpartition(":")
    host = host.strip("[]")
    if admin.strip().lower() == "off" or is_loopback(host):
        return ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_private and not address.is_unspecified:
        return ""  # an internal interface, as the README advises
    return (
        f"the admin listener {admin} answers /healthz and /metrics (policy path and hash, rule names) without "
        f"authentication beyond this machine: make sure a firewall or a NetworkPolicy limits who reaches port {port}"
    )


def check_block_global(mitmdump_args: tuple[str, ...]) -> str:
    if any(arg.replace(" ", "").lower() in ("block_global=false", "block_global=0") for arg in mitmdump_args):
        return "block_global is off: clients from public addresses may use this proxy"
    return ""


# mitmproxy 12.3's emudhra / emudhra_old: sign every interception certificate with eMudhra's compromised
# intermediate CA key (private key d=4, shipped in mitmproxy's certs.py), trusted by clients through the
# emSign and Sectigo roots. Anyone can forge certificates with that key, so it is refused.
PUBLIC_KEY_CA_OPTIONS = ("emudhra", "emudhra_old")


def _enabled_settings(mitmdump_args: tuple[str, ...]) -> list[str]:
    """The mitmdump arguments (`--set emudhra=true`, `--emudhra-old` …) that turn an option of
    PUBLIC_KEY_CA_OPTIONS on; `--set NAME` with no value and `=toggle` turn a bool on too."""
    found = []
    for index, arg in enumerate(mitmdump_args):
        if arg.startswith("--emudhra"):  # mitmdump's flags, and argparse's abbreviations of them
            found.append(arg)
        spec = arg.removeprefix("--set=") if arg.startswith("--set=") else ""
        if arg == "--set" and index + 1 < len(mitmdump_args):
            spec = mitmdump_args[index + 1]
        name, _, value = spec.partition("=")
        if name.strip() in PUBLIC_KEY_CA_OPTIONS and value.strip() != "false":
            found.append(f"--set {spec}")
    return found


def check_public_key_ca(mitmdump_args: tuple[str, ...], confdir: Path) -> None:
    """A UsageError when mitmproxy would sign certificates with a CA key that is public (mitmproxy 12.3's
    emudhra options), given after `--` or in CONFDIR/config.yaml (which mitmdump reads too)."""
    found = [f"-- {arg}" for arg in _enabled_settings(mitmdump_args)]
    for config in (confdir / "config.yaml", confdir / "config.yml"):
        try:
            settings = yaml.safe_load(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # absent; a broken file is mitmdump's to report
        if isinstance(settings, dict):
            found += [f"{name}: true in {config}" for name in PUBLIC_KEY_CA_OPTIONS if settings.get(name) is True]
    if found:
        raise click.UsageError(
            f"{'; '.join(found)}: mitmproxy's emudhra options sign every intercepted site's certificate with "
            "eMudhra's compromised intermediate CA key, which is public, so anyone on the network could forge "
            "certificates your clients accept. aipolicy refuses to start with them: remove the option and hand out "
            "the proxy's own CA (aipolicy ca export)."
        )


def check_ca_key(confdir: Path) -> str:
    """Make the CA's private key readable by its owner only (0600); say what was done."""
    key = confdir / "mitmproxy-ca.pem"
    try:
        mode = stat.S_IMODE(key.stat().st_mode)
    except OSError:
        return ""  # mitmproxy creates it, 0600, on first start
    if mode & 0o077 == 0:
        return ""
    try:
        key.chmod(0o600)
    except OSError as error:
        return (
            f"the CA private key {key} is readable by others (mode {mode:04o}) and could not be fixed: {error.strerror}"
        )
    return f"the CA private key {key} was readable by others (mode {mode:04o}); made it 0600"


def blocked_vendors(policy: aipolicy.Policy) -> list[str]:
    """Vendors whose first app's first host the policy blocks (the decision the proxy would make)."""
    vendors = []
    for vendor in policy.catalog.vendors.values():
        apps = [policy.catalog.apps[a] for a in vendor.apps if a in policy.catalog.apps]
        hosts = [t.host.lstrip("=").removeprefix("*.") for app in apps for t in app.targets if t.host and not t.path]
        if hosts and aipolicy.decide(policy, aipolicy.RequestFacts(hosts=(hosts[0],), method="CONNECT")).blocked:
            vendors.append(vendor.id)
    return sorted(vendors)
