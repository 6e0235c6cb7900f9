"""``aipolicy log verify``: is the event log complete and unchanged?"""

from __future__ import annotations

import click
from click.core import ParameterSource

from aipolicy import EventLogError
from aipolicy.eventlog import STATUSES, ChainReport, verify_logs

from ._common import echo_json, json_option, safe, stdout
from ._selection import log_option

EXIT_CODES = {"intact": 0, "torn": 4, "tampered": 3}  # 1: a log cannot be read; 2: usage


@click.group()
def log() -> None:
    """The event log itself: check its hash chain.

    \b
    Example:
        aipolicy log verify --log '/var/log/aipolicy/events.jsonl*'
    """


@click.command()
@log_option
@click.option(
    "--allow-partial-start",
    is_flag=True,
    help="Accept a chain whose first lines are gone (older rotated files removed on purpose).",
)
@click.option(
    "--head",
    metavar="SEQ:HASH",
    help="A head printed by an earlier verify and kept elsewhere: fail if that line is gone or changed "
    "(lines removed from the end, or a rewritten chain). One log only.",
)
@json_option
def verify(log_patterns: tuple[str, ...], allow_partial_start: bool, head: str | None, as_json: bool) -> None:
    """Check the hash chain of event logs: every line there, unchanged, in order.

    Give the current log and its rotated files (a quoted glob takes them all,
    gzip or not); each log's files are put in order and checked as one chain.
    The first edited, deleted, reordered or truncated line is reported with
    its file and line number.

    Exit status: 0 intact; 3 tampered (a line edited, deleted, reordered or cut
    short); 4 intact, but the newest line is cut short (the proxy stopped in the
    middle of writing it, or is writing it now); 1 a log cannot be read.

    \b
    Example:
        aipolicy log verify --log 'aipolicy-events.jsonl*'
        aipolicy log verify --log '/var/log/aipolicy/*.jsonl*' --json
        aipolicy log verify --log 'events.jsonl*' --head 48212:da5e1137…(64 hex digits)
    """
    try:
        reports = verify_logs(log_patterns, allow_partial_start=allow_partial_start, head=head)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--head") from None
    except EventLogError as error:
        ctx = click.get_current_context()
        default = ctx.get_parameter_source("log_patterns") == ParameterSource.DEFAULT
        raise click.ClickException(f"{error}{' (give --log FILE or set AIPOLICY_LOG)' if default else ''}") from None
    status = max((report.status for report in reports), key=STATUSES.index, default="intact")
    if as_json:
        echo_json({"status": status, "logs": [report.as_dict() for report in reports]})
    else:
        for report in reports:
            _print(report)
    raise SystemExit(EXIT_CODES[status])


def _print(report: ChainReport) -> None:
    files = len(report.files)
    extent = f"{report.lines:,} line{'' if report.lines == 1 else 's'} in {files} file{'' if files == 1 else 's'}"
    if report.problem is not None:
        extent = f"{report.lines:,} line{'' if report.lines == 1 else 's'} checked before the problem"
    elif report.first_seq is not None:
        extent += f" (chain numbers {report.first_seq}–{report.last_seq})"
    colour = {"intact": "green", "torn": "yellow", "tampered": "red"}[report.status]
    stdout.print(f"[bold]{safe(report.log)}[/]: [{colour}]{report.status}[/] — {extent}")
    if report.problem is not None:
        problem = report.problem
        stdout.print(f"  [red]{safe(problem.file)}:{problem.line}: {problem.kind}[/]: {safe(problem.message)}")
    for torn in report.torn:
        state = "recorded by the proxy when it started again" if torn.acknowledged else "the newest line"
        stdout.print(f"  [yellow]{safe(torn.file)}:{torn.line}: cut short[/] ({torn.size} bytes; {state})")
    if report.unchained:
        stdout.print(f"  {report.unchained:,} earlier lines were written before the chain began (not protected)")
    if report.partial_start:
        stdout.print("  the start of the chain is missing (allowed by --allow-partial-start)")
    if report.status != "tampered" and report.head_ref:
        stdout.print(f"  head {report.head_ref} (keep it elsewhere; --head checks a later log against it)")
