"""``aipolicy pac``: a proxy auto-config file that sends clients to the proxy."""

from __future__ import annotations

import ipaddress

import click

import aipolicy
from aipolicy.formats import PAC_MODES, Network, check_proxy_address, pac_file

from ._common import policy_option, stderr
from ._output import write_output


def _proxy_address(context: click.Context, parameter: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(check_proxy_address(value) for value in values)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _networks(context: click.Context, parameter: click.Parameter, values: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=True))
        except ValueError as error:
            raise click.BadParameter(f"{value!r}: {error} (expected a network such as 10.0.0.0/8)") from None
    return tuple(networks)


@click.command()
@click.option(
    "--proxy",
    "proxies",
    multiple=True,
    default=("127.0.0.1:8080",),
    show_default=True,
    callback=_proxy_address,
    help="The proxy as HOST:PORT; repeat to list fallbacks (e.g. one per replica), tried in order.",
)
@click.option(
    "--mode",
    type=click.Choice(PAC_MODES),
    default="ai",
    show_default=True,
    help="all: everything through the proxy; ai: only AI apps' hosts (and bare IP addresses).",
)
@click.option(
    "--direct",
    multiple=True,
    callback=_networks,
    metavar="CIDR",
    help="An internal network that never uses the proxy (repeatable). Plain host names and loopback are always direct.",
)
@policy_option
@click.option(
    "-o",
    "--output",
    default="-",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write here (default: stdout).",
)
def pac(proxies: tuple[str, ...], mode: str, direct: tuple[Network, ...], policy_path: str | None, output: str) -> None:
    """Write a proxy auto-config (PAC) file for browsers and operating systems.

    In ai mode only the names the policy and the catalogue know go to the proxy,
    so other traffic never touches it; in all mode everything does, except the
    --direct networks. AI names never fall back to DIRECT.

    \b
    Example:
        aipolicy pac --proxy proxy.example.org:3128 --direct 10.0.0.0/8 -o /var/www/proxy.pac
        aipolicy pac --mode all --proxy gw-1.example.org:3128 --proxy gw-2.example.org:3128
    """
    try:
        loaded = aipolicy.load_policy(policy_path or aipolicy.default_policy())
    except aipolicy.PolicyError as error:
        raise click.ClickException(f"the policy does not load:\n{error}") from None
    if mode == "ai" and (loaded.default != "allow" or loaded.always):
        stderr.print(
            "[yellow]warning:[/] the policy decides hosts it does not name (a default other than allow, "
            "or a rule matching any host); in ai mode those hosts bypass the proxy. Consider --mode all."
        )
    write_output(output, pac_file(loaded, proxies, mode, direct))
