"""``aipolicy violations …``: who tried to reach which AI apps, when and how often."""

from __future__ import annotations

import contextlib
import csv
import datetime
import functools
import heapq
import itertools
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import click
from click.core import ParameterSource
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from aipolicy import ACTIONS, EventLogError
from aipolicy.analytics import (
    BY_KEYS,
    EventFilter,
    GroupSummary,
    Summary,
    as_text,
    filter_events,
    format_change,
    parse_time,
    previous_period,
    sparkline,
    summarise,
)
from aipolicy.eventlog import EventReader, Follower, LogEvent, format_ts, read_events

from ._common import ACTION_COLOURS, F, echo_json, json_option, stderr, stdout

DEFAULT_LOG = "aipolicy-events.jsonl"
EXPORT_COLUMNS = (
    "ts", "action", "rule", "app", "vendor", "host", "method", "path",
    "client_ip", "user", "groups", "reason", "directive", "policy", "proxy", "id",
)  # fmt: skip
PROGRESS_MIN_BYTES = 16 << 20  # below this, reading takes well under a second
POLL_SECONDS = 0.2
# C0 and C1 controls, DEL, zero-width and bidirectional controls, line and paragraph separators:
# characters in an event that could move the cursor, recolour the terminal or reorder what is shown.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


def csv_cell(value: object) -> str:
    """A field's value for a spreadsheet: a leading = + - @ gets a quote, so it is not run as a formula."""
    if isinstance(value, list):
        text = ";".join(as_text(item) or "" for item in value)
    else:
        text = as_text(value) or ""
    return "'" + text if text.startswith(_CSV_FORMULA_START) else text


# --- options shared by every command that reads events -----------------------------------------


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


def _now(ctx: click.Context) -> datetime.datetime:
    """One 'now' per command, so --since 7d and --until 1d measure from the same moment."""
    if "aipolicy.now" not in ctx.meta:
        now = datetime.datetime.now(datetime.UTC)
        ctx.meta["aipolicy.now"] = now.replace(microsecond=now.microsecond // 1000 * 1000)
    moment: datetime.datetime = ctx.meta["aipolicy.now"]
    return moment


def _parse_time_option(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime.datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value, _now(ctx))
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


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
        callback=_parse_time_option,
        metavar="TIME",
        help="Only events at or after TIME: a date or time (2026-11-01, 2026-11-01T10:00:00Z; UTC unless "
        "an offset is given) or a duration before now (30m, 24h, 7d, 2w).",
    ),
    click.option("--until", callback=_parse_time_option, metavar="TIME", help="Only events before TIME (same forms)."),
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


def selection_options(function: F) -> F:
    """--log, --since, --until and the filters, handed to the command as one ``selection``."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        since, until = kwargs.pop("since"), kwargs.pop("until")
        if since and until and since >= until:
            raise click.BadParameter(
                f"--since ({format_ts(since)}) must be before --until ({format_ts(until)})", param_hint="--since"
            )
        names = ("users", "groups", "apps", "vendors", "rules", "actions", "directives")
        event_filter = EventFilter(**{name: frozenset(kwargs.pop(name)) for name in names})
        kwargs["selection"] = Selection(
            patterns=tuple(kwargs.pop("log_patterns")),
            default_log=ctx.get_parameter_source("log_patterns") == ParameterSource.DEFAULT,
            since=since,
            until=until,
            event_filter=event_filter,
            now=_now(ctx),
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


@contextlib.contextmanager
def output_pipe() -> Iterator[None]:
    """Stop quietly when the reader of our output goes away (``… | head``)."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):  # no more output can reach anyone
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None


def _when(ts: str | None) -> str:
    return f"{ts[:10]} {ts[11:19]}" if ts else ""


@click.group()
def violations() -> None:
    """Who tried to reach which AI apps, when and how often: summaries, exports and a live tail of the event log.

    \b
    Example:
        aipolicy violations summary --since 7d --by user --by app
        aipolicy violations export --csv --since 2026-11-01 > attempts.csv
        aipolicy violations tail -f --action block
    """


# --- summary ------------------------------------------------------------------------------------


def _parse_by(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    keys = [key.strip().lower() for value in values for key in value.split(",") if key.strip()]
    unknown = [key for key in keys if key not in BY_KEYS]
    if unknown:
        raise click.BadParameter(f"{unknown[0]!r} is not a key to group by (valid: {', '.join(BY_KEYS)})")
    return tuple(dict.fromkeys(keys)) or ("rule",)


@violations.command()
@selection_options
@click.option(
    "--by",
    multiple=True,
    callback=_parse_by,
    metavar="KEY[,KEY…]",
    help=f"Count per KEY: {', '.join(BY_KEYS)}; repeatable or comma-separated (default: rule). "
    "An event of a user in several groups counts in each group.",
)
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: a header row, then one row per group.")
@click.option(
    "--fail-on",
    type=click.IntRange(min=1),
    metavar="N",
    help="Exit with status 3 when N or more events match (a CI gate); 0 otherwise.",
)
def summary(selection: Selection, by: tuple[str, ...], as_json: bool, as_csv: bool, fail_on: int | None) -> None:
    """Count the recorded attempts per rule, user, app, day … with distinct users, first and last seen.

    With --since, each count is compared with the period of the same length just
    before (--since 7d: the 7 days before those). Lines that cannot be read are
    skipped and reported. --since is inclusive, --until exclusive; times are UTC.

    \b
    Example:
        aipolicy violations summary
        aipolicy violations summary --since 7d --by user --by app
        aipolicy violations summary --log '/var/log/aipolicy/*.jsonl*' --by day --action block
        aipolicy violations summary --since 24h --vendor deepseek --fail-on 1 --json
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv cannot be used together")
    previous_since = selection.previous_since
    with reading(selection, since=previous_since) as reader:
        result = summarise(
            filter_events(reader, selection.event_filter),
            by,
            since=selection.since_ts,
            until=selection.until_ts,
            previous_since=format_ts(previous_since) if previous_since else None,
        )
    if as_json:
        echo_json({**result.as_dict(), "skipped": reader.skipped.as_dict()})
    elif as_csv:
        report_skipped(reader)
        _print_csv(result)
    else:
        report_skipped(reader)
        _print_summary(result, selection)
    if fail_on is not None and result.total >= fail_on:
        stderr.print(f"[red]{result.total} matching event(s): at or above --fail-on {fail_on}[/]")
        raise SystemExit(3)


def _print_csv(result: Summary) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow([*result.by, "count", "users", "first", "last", "previous", "change", "change_percent"])
    for group in result.groups:
        row = group.as_dict()
        writer.writerow(
            [csv_cell(group.key[key]) for key in result.by]
            + ["" if row[name] is None else row[name] for name in ("count", "users", "first", "last")]
            + ["" if row[name] is None else row[name] for name in ("previous", "change", "change_percent")]
        )


def _change_cell(group: GroupSummary) -> str:
    text = format_change(group.count, group.previous)
    colour = "red" if (group.change or 0) > 0 else "green" if (group.change or 0) < 0 else "dim"
    return f"[{colour}]{text}[/]" if text else ""


def _print_summary(result: Summary, selection: Selection) -> None:
    period = f"{_when(result.since) or 'the beginning'} → {_when(result.until) or 'now'} (UTC)"
    table = Table(title=f"Attempts by {', '.join(result.by)}", caption=period, show_footer=True)
    for index, key in enumerate(result.by):
        table.add_column(key.capitalize(), footer="[bold]Total[/]" if index == 0 else "")
    overall = result.overall
    table.add_column("Count", justify="right", footer=f"[bold]{overall.count}[/]")
    table.add_column("Users", justify="right", footer=str(overall.users))
    table.add_column("First", footer=_when(overall.first), no_wrap=True)
    table.add_column("Last", footer=_when(overall.last), no_wrap=True)
    if selection.since:
        table.add_column("Change", justify="right", footer=_change_cell(overall), no_wrap=True)
    for group in result.groups:
        keys = [safe(value) if value is not None else "[dim]—[/]" for value in group.key.values()]
        cells = [str(group.count), str(group.users), _when(group.first), _when(group.last)]
        table.add_row(*keys, *cells, *([_change_cell(group)] if selection.since else []))
    stdout.print(table)
    if not result.groups:
        stdout.print("[dim]No matching events.[/]")
    first, last, line = sparkline(result.days)
    if line:
        peak = max(result.days.values())
        stdout.print(f"Per day  {first} [cyan]{line}[/] {last}  (most: {peak} on a day)")


# --- export -------------------------------------------------------------------------------------


@violations.command()
@selection_options
@click.option("--json", "--nl", "as_json", is_flag=True, help="JSON Lines: each event on one line, as it was logged.")
@click.option("--csv", "as_csv", is_flag=True, help=f"CSV with the columns {', '.join(EXPORT_COLUMNS)}.")
@click.option(
    "--parquet",
    "parquet_dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Parquet files under DIR (new or empty), one folder per day: DIR/dt=YYYY-MM-DD/ (needs pyarrow).",
)
def export(selection: Selection, as_json: bool, as_csv: bool, parquet_dir: str | None) -> None:
    """Print the matching events for a SIEM or a spreadsheet, in the order of the log files.

    CSV cells that start with = + - @ get a leading ' so that spreadsheets do not
    run them as formulas (event fields come from the network). Groups are joined
    with ';'. Lines that cannot be read are skipped and reported on stderr.

    \b
    Example:
        aipolicy violations export --json --since 7d > attempts.jsonl
        aipolicy violations export --csv --vendor deepseek --log 'events.jsonl*' > deepseek.csv
        aipolicy violations export --parquet attempts/ --since 2026-11-01
    """
    if as_json + as_csv + (parquet_dir is not None) != 1:
        raise click.UsageError("choose one of --json, --csv or --parquet DIR")
    if parquet_dir is not None:
        from ._export import export_parquet

        return export_parquet(selection, parquet_dir)
    with reading(selection) as reader, output_pipe():
        events = filter_events(reader, selection.event_filter)
        if as_json:
            write = sys.stdout.write
            for event in events:
                write(json.dumps(event.data, ensure_ascii=True, separators=(",", ":")) + "\n")
        else:
            writer = csv.writer(sys.stdout)
            writer.writerow(EXPORT_COLUMNS)
            for event in events:
                writer.writerow([csv_cell(event.data.get(column)) for column in EXPORT_COLUMNS])
    report_skipped(reader)


# --- tail ---------------------------------------------------------------------------------------


def tail_line(event: LogEvent) -> str:
    """One event as one line of rich markup: time, action, rule, who, where."""
    data = event.data
    action = clean(data.get("action"))
    colour = ACTION_COLOURS.get(action, "bold")
    user, client = clean(data.get("user")), clean(data.get("client_ip"))
    person = f"{user} ({client})" if user and client else user or client or "?"
    place = clean(data.get("host")) + clean(data.get("path"))
    return (
        f"{event.ts[:10]} {event.ts[11:23]}Z [{colour}]{safe(action.ljust(7))}[/] "
        f"{safe(data.get('rule'))}  [bold]{safe(person)}[/]  {safe(place)}"
    )


def _last(events: Iterable[LogEvent], count: int) -> list[LogEvent]:
    """The ``count`` latest events by time (ties in reading order), oldest first; memory for ``count`` only."""
    latest = heapq.nlargest(count, enumerate(events), key=lambda pair: (pair[1].ts, pair[0]))
    return [event for _, event in reversed(latest)]


@violations.command()
@selection_options
@click.option(
    "-n",
    "--lines",
    "count",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    metavar="N",
    help="How many events to print.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing events as they are logged, across log rotation.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="With -f: stop following after SECONDS.",
)
@click.option(
    "--max-events",
    type=click.IntRange(min=1),
    metavar="N",
    help="With -f: stop once N events have been printed (the last lines included).",
)
def tail(selection: Selection, count: int, follow: bool, timeout: float | None, max_events: int | None) -> None:
    """Print the latest matching events, one line each; with -f, keep printing new ones (Ctrl-C stops).

    -f follows each --log file by name, like tail -F: it notices when the file is
    rotated (renamed and created again) or truncated and carries on with the new
    one. With a glob, the current (unrotated) file of each log is followed.

    \b
    Example:
        aipolicy violations tail
        aipolicy violations tail -n 50 --user alice
        aipolicy violations tail -f --action block --log /var/log/aipolicy/events.jsonl
    """
    if not follow and (timeout is not None or max_events is not None):
        raise click.UsageError("--timeout and --max-events go with -f")
    reader = selection.reader()
    try:
        _tail(reader, selection, count, follow, timeout, max_events)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how one stops following
    finally:
        report_skipped(reader)


def _tail(
    reader: EventReader,
    selection: Selection,
    count: int,
    follow: bool,
    timeout: float | None,
    max_events: int | None,
) -> None:
    follower = Follower(
        reader.current_files if follow else [], reader.skipped, since=selection.since_ts, until=selection.until_ts
    )
    printed = 0
    try:
        with follower, output_pipe():
            followed = set(follower.paths)
            already = itertools.chain(
                *(reader.read_file(path) for path in reader.files if path not in followed), follower.poll()
            )
            for event in _last(filter_events(already, selection.event_filter), count):
                stdout.print(tail_line(event))
                printed += 1
            if follow:
                _follow(follower, selection.event_filter, printed, timeout, max_events)
    except EventLogError as error:
        raise click.ClickException(str(error)) from None


def _follow(
    follower: Follower, event_filter: EventFilter, printed: int, timeout: float | None, max_events: int | None
) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    limit = max_events if max_events is not None else float("inf")
    while printed < limit:
        for event in filter_events(follower.poll(), event_filter):
            stdout.print(tail_line(event))
            printed += 1
            if printed >= limit:
                return
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        time.sleep(POLL_SECONDS if remaining is None else min(POLL_SECONDS, remaining))
