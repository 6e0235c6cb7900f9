"""``aipolicy violations …``: who tried to reach which AI apps, when and how often."""

from __future__ import annotations

import contextlib
import csv
import heapq
import itertools
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator

import click
from rich.table import Table

from aipolicy import EventLogError
from aipolicy.analytics import (
    BY_KEYS,
    EventFilter,
    GroupSummary,
    Summary,
    as_text,
    filter_events,
    format_change,
    sparkline,
    summarise,
)
from aipolicy.eventlog import EventReader, Follower, LogEvent, format_ts

from ._common import ACTION_COLOURS, Duration, clean, echo_json, json_option, safe, stderr, stdout
from ._export import export_parquet
from ._selection import Selection, reading, report_skipped, selection_options

EXPORT_COLUMNS = (
    "ts", "action", "rule", "app", "vendor", "host", "method", "path",
    "client_ip", "user", "groups", "reason", "directive", "policy", "proxy", "id",
)  # fmt: skip
POLL_SECONDS = 0.2
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A field's value for a spreadsheet: a leading = + - @ gets a quote, so it is not run as a formula."""
    if isinstance(value, list):
        text = ";".join(as_text(item) or "" for item in value)
    else:
        text = as_text(value) or ""
    return "'" + text if text.startswith(_CSV_FORMULA_START) else text


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


@click.command()
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


@click.command()
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


@click.command()
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
    type=Duration(),
    metavar="SECONDS",
    help="With -f: stop following after SECONDS (or a duration: 90s, 5m, 1h30m).",
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
