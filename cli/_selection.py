"""The events a command reads: ``--log``, ``--since``, ``--until`` and the filters, handed to the
command as one ``Selection``, and a reader of them with a progress bar when there is much to read.
Shared by ``violations``, ``report``, ``log`` and ``policy replay``."""

from __future__ import annotations

import contextlib
import datetime
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import click
from click.core import ParameterSource
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from aipolicy import ACTIONS, EventLogError
from aipolicy.analytics import EventFilter, previous_period
from aipolicy.eventlog import EventReader, format_ts, read_events

from ._common import F, Time, command_now, safe, stderr

DEFAULT_LOG = "aipolicy-events.jsonl"
PROGRESS_MIN_BYTES = 16 << 20  # below this, reading takes well under a second
TIME = Time()


@dataclass(frozen=True)
class Selection:
    """The events a command asked for: which logs, which period, which filter."""

    patterns: tuple[str, ...]
    default_log: bool
    since: datetime.datetime | None
    until: datetime.datetime | None
    event_filter: EventFilter
    now: datetime.datetime

    @property
    def since_ts(self) -> str | None:
        return format_ts(self.since) if self.since else None

    @property
    def until_ts(self) -> str | None:
        return format_ts(self.until) if self.until else None

    @property
    def previous_since(self) -> datetime.datetime | None:
        end = self.until or self.now
        return previous_period(self.since, end) if self.since and self.since < end else None

    def reader(self, *, since: datetime.datetime | None = None, kinds: Iterable[str] = ("decision",)) -> EventReader:
        start = since or self.since
        try:
            return read_events(
                self.patterns, since=format_ts(start) if start else None, until=self.until_ts, kinds=kinds
            )
        except EventLogError as error:
            hint = " (give --log FILE or set AIPOLICY_LOG)" if self.default_log else ""
            raise click.ClickException(f"{error}{hint}") from None


log_option = click.option(
    "--log",
    "log_patterns",
    multiple=True,
    envvar="AIPOLICY_LOG",
    type=click.Path(),
    default=[DEFAULT_LOG],
    metavar="FILE",
    help="Event log to read; repeatable; globs (quoted) take rotated files, gzip or not "
    "(default: $AIPOLICY_LOG, else aipolicy-events.jsonl).",
)

_SELECTION_OPTIONS = [
    log_option,
    click.option(
        "--since",
        type=TIME,
        metavar="TIME",
        help="Only events at or after TIME: a date or time (2026-11-01, 2026-11-01T10:00:00Z; UTC unless "
        "an offset is given) or a duration before now (30m, 24h, 7d, 1h30m).",
    ),
    click.option("--until", type=TIME, metavar="TIME", help="Only events before TIME (same forms)."),
    click.option(
        "--user", "users", multiple=True, metavar="NAME", help="Only this user (or client address); repeatable."
    ),
    click.option("--group", "groups", multiple=True, metavar="NAME", help="Only users in this group; repeatable."),
    click.option("--app", "apps", multiple=True, metavar="ID", help="Only this catalogue app id; repeatable."),
    click.option("--vendor", "vendors", multiple=True, metavar="ID", help="Only this vendor id; repeatable."),
    click.option("--rule", "rules", multiple=True, metavar="ID", help="Only this rule id; repeatable."),
    click.option(
        "--action",
        "actions",
        multiple=True,
        type=click.Choice(ACTIONS, case_sensitive=False),
        help="Only this action (default: every action recorded); repeatable.",
    ),
    click.option("--directive", "directives", multiple=True, metavar="ID", help="Only this directive id; repeatable."),
]


def check_period(since: datetime.datetime | None, until: datetime.datetime | None) -> None:
    if since and until and since >= until:
        raise click.BadParameter(
            f"--since ({format_ts(since)}) must be before --until ({format_ts(until)})", param_hint="--since"
        )


def selection_options(function: F) -> F:
    """--log, --since, --until and the filters, handed to the command as one ``selection``."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        since, until = kwargs.pop("since"), kwargs.pop("until")
        check_period(since, until)
        names = ("users", "groups", "apps", "vendors", "rules", "actions", "directives")
        event_filter = EventFilter(**{name: frozenset(kwargs.pop(name)) for name in names})
        kwargs["selection"] = Selection(
            patterns=tuple(kwargs.pop("log_patterns")),
            default_log=ctx.get_parameter_source("log_patterns") == ParameterSource.DEFAULT,
            since=since,
            until=until,
            event_filter=event_filter,
            now=command_now(ctx),
        )
        return function(*args, **kwargs)

    for option in reversed(_SELECTION_OPTIONS):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def reading(
    selection: Selection, *, since: datetime.datetime | None = None, kinds: Iterable[str] = ("decision",)
) -> Iterator[EventReader]:
    """A reader of the selected logs, with a progress bar on a terminal when there is much to read."""
    reader = selection.reader(since=since, kinds=kinds)
    try:
        if stderr.is_terminal and reader.total_bytes >= PROGRESS_MIN_BYTES:
            columns = (TextColumn("reading event logs"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
            with Progress(*columns, console=stderr, transient=True) as progress:
                task = progress.add_task("read", total=reader.total_bytes)
                reader.progress = functools.partial(progress.advance, task)
                yield reader
        else:
            yield reader
    except EventLogError as error:
        raise click.ClickException(str(error)) from None


def report_skipped(reader: EventReader) -> None:
    if reader.skipped:
        stderr.print(f"[yellow]{safe(str(reader.skipped))}[/]")
