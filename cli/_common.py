"""Options and output helpers shared by every command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])

# Wide enough for tables when piped to a file or pager (rich would assume 80 columns).
stdout = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def policy_option(
    function: F, help: str = "Policy file (default: $AIPOLICY_POLICY, else the shipped default policy)."
) -> F:
    return click.option(
        "--policy", "policy_path", envvar="AIPOLICY_POLICY", type=click.Path(dir_okay=False), default=None, help=help
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")(function)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# How each action is shown to people (rich colours); unknown values fall back to bold.
ACTION_COLOURS = {
    "block": "red",
    "quota": "red",
    "warn": "dark_orange",
    "proceed": "yellow",
    "read-only": "cyan",
    "monitor": "yellow",
    "allow": "green",
}
