"""``aipolicy proxy --policy-url …``: the options that make the proxy follow a signed policy feed."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click
from rich.markup import escape

import aipolicy
from aipolicy.distribution import public_url

from ._common import Duration, stderr

MIN_REFRESH, MAX_REFRESH = 0.1, 7 * 86400.0  # seconds; aipolicy_policy_refresh checks the same


def feed_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option(
        "--policy-refresh",
        type=Duration(),
        default=300.0,
        show_default=True,
        callback=_refresh_in_range,
        help="Time between fetches of --policy-url: seconds, or 30s, 5m, 1h (from 0.1 s to 7 d).",
    )(function)
    function = click.option(
        "--policy-pubkey",
        type=click.Path(dir_okay=False, exists=True),
        default=None,
        help="Public key the feed's bundles must be signed with (aipolicy keys generate).",
    )(function)
    return click.option(
        "--policy-url",
        default=None,
        help="Follow a signed policy bundle (aipolicy policy sign) at this URL or path; --policy is enforced "
        "only until the first good bundle arrives (or a cached one is used).",
    )(function)


def _refresh_in_range(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not MIN_REFRESH <= value <= MAX_REFRESH:
        raise click.BadParameter(f"{value:g} seconds is not from {MIN_REFRESH:g} s to 7 days")
    return value


def feed_arguments(url: str | None, pubkey: str | None, refresh: float) -> tuple[str, ...]:
    """The mitmdump --set arguments for a feed, after checking the key."""
    if not url:
        if pubkey:
            raise click.UsageError("--policy-pubkey needs --policy-url")
        return ()
    arguments = ["--set", f"aipolicy_policy_url={url}", "--set", f"aipolicy_policy_refresh={refresh:g}"]
    if pubkey:
        try:
            key = aipolicy.load_public_key(pubkey)
        except aipolicy.BundleError as error:
            raise click.ClickException(str(error)) from None
        arguments += ["--set", f"aipolicy_policy_pubkey={os.path.abspath(pubkey)}"]
        stderr.print(
            f"  following the policy feed {escape(public_url(url))} (bundles signed by key {aipolicy.key_id(key)})"
        )
    else:
        stderr.print(
            f"  [yellow]following the policy feed {escape(public_url(url))} WITHOUT --policy-pubkey: signatures are not checked[/]"
        )
    return tuple(arguments)
