"""Options and output helpers shared by every command."""

from __future__ import annotations

import datetime
import json
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

import aipolicy
from aipolicy.analytics import as_text

F = TypeVar("F", bound=Callable[..., Any])
# C0 and C1 controls, DEL, zero-width and bidirectional controls, line and paragraph separators:
# characters in an event that could move the cursor, recolour the terminal or reorder what is shown.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")

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


def clean(value: object) -> str:
    """A field's value for people: control characters removed."""
    return _CONTROL.sub("", as_text(value) or "")


def safe(value: object) -> str:
    """A field's value ready to place into rich markup."""
    text = escape(clean(value))
    # An odd run of trailing backslashes would escape the markup tag that follows.
    if (len(text) - len(text.rstrip("\\"))) % 2:
        text += "\\"
    return text


# --- the grammar of sizes, durations, times and dates (aipolicy._units), as click types ----------


def command_now(ctx: click.Context | None) -> datetime.datetime:
    """One 'now' per command, so --since 7d and --until 1d measure from the same moment."""
    if ctx is None:
        return datetime.datetime.now(datetime.UTC)
    if "aipolicy.now" not in ctx.meta:  # click shares meta between a command's contexts
        now = datetime.datetime.now(datetime.UTC)
        ctx.meta["aipolicy.now"] = now.replace(microsecond=now.microsecond // 1000 * 1000)
    moment: datetime.datetime = ctx.meta["aipolicy.now"]
    return moment


class _Grammar(click.ParamType):
    """A click type over one of the core's parsers: its ValueError becomes click's usage error (exit 2)."""

    already: type | tuple[type, ...] = ()  # a default, or a value converted before

    def parse(self, value: str, ctx: click.Context | None) -> Any:
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.already):
            return value
        try:
            return self.parse(value, ctx)
        except ValueError as error:
            self.fail(str(error), param, ctx)


class Size(_Grammar):
    """Bytes, written as the policy writes them: 1048576, 500KB, 64MiB (``aipolicy.parse_size``)."""

    name, already = "size", int

    def __init__(self, minimum: int = 1) -> None:
        self.minimum = minimum

    def parse(self, value: str, ctx: click.Context | None) -> int:
        size = aipolicy.parse_size(value)
        if size < self.minimum:
            raise ValueError(f"{value!r} is {size:,} bytes, less than the smallest allowed ({self.minimum:,})")
        return size


class Duration(_Grammar):
    """Seconds, written as the policy writes them: 90, 30s, 1.5h, 1h30m, 7d (``aipolicy.parse_duration``)."""

    name, already = "duration", float

    def parse(self, value: str, ctx: click.Context | None) -> float:
        return aipolicy.parse_duration(value)


class Time(_Grammar):
    """A moment: now, a duration before now (7d, 1h30m), a date or an RFC 3339 time (``aipolicy.parse_time``)."""

    name, already = "time", datetime.datetime

    def parse(self, value: str, ctx: click.Context | None) -> datetime.datetime:
        return aipolicy.parse_time(value, command_now(ctx))


class Date(_Grammar):
    """A calendar date, 2026-06-30 (``aipolicy.parse_date``)."""

    name, already = "date", datetime.date

    def parse(self, value: str, ctx: click.Context | None) -> datetime.date:
        return aipolicy.parse_date(value)
