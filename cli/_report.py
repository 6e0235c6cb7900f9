"""``aipolicy report``: one self-contained HTML page for a compliance officer."""

from __future__ import annotations

import contextlib
import os
import tempfile

import click

import aipolicy
from aipolicy import __version__
from aipolicy.analytics import REPORT_KINDS, Verification, collect_report, render_report
from aipolicy.eventlog import format_ts

from ._common import policy_option, stderr
from ._policy import load_or_fail
from ._selection import Selection, reading, report_skipped, selection_options

_FILTER_NAMES = (
    ("user", "users"), ("group", "groups"), ("app", "apps"), ("vendor", "vendors"),
    ("rule", "rules"), ("action", "actions"), ("directive", "directives"),
)  # fmt: skip


@click.command()
@click.option(
    "--html",
    "html_path",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    metavar="FILE",
    help="Write the report to FILE ('-' for stdout): one HTML page, no scripts, nothing loaded from elsewhere.",
)
@selection_options
@policy_option
@click.option(
    "--top",
    type=click.IntRange(min=1, max=1000),
    default=10,
    show_default=True,
    metavar="N",
    help="Rows in each top-N table.",
)
def report(selection: Selection, html_path: str, policy_path: str | None, top: int) -> None:
    """Write a compliance report: totals, attempts per day, top users, apps and vendors, directives,
    evasion attempts, warn-and-proceed counts, the policy versions in force and the log check.

    The page opens offline and can be attached to an e-mail or printed. Every
    value from the log is escaped. --policy names the policy file in force, to
    mark its hash and show its directives' titles.

    \b
    Example:
        aipolicy report --html report.html --since 30d
        aipolicy report --html deepseek.html --log '/var/log/aipolicy/*.jsonl*' --vendor deepseek --since 2026-11-01
    """
    policy = load_or_fail(policy_path) if policy_path else None
    with reading(selection, kinds=REPORT_KINDS) as reader:
        result = collect_report(
            reader, selection.event_filter, since=selection.since_ts, until=selection.until_ts, top=top
        )
    result.skipped = reader.skipped.total
    result.skipped_text = str(reader.skipped) if reader.skipped else ""
    result.sources = tuple(reader.files)
    result.generated = f"{format_ts(selection.now)} by aipolicy {__version__}"
    result.filters = tuple(
        f"{label} = {value}" for label, name in _FILTER_NAMES for value in sorted(getattr(selection.event_filter, name))
    )
    if policy is not None:
        result.current_policy = policy.hash
        result.directive_titles = {
            rule.directive["id"]: rule.directive.get("title", "") for rule in policy.rules if rule.directive
        }
    page = render_report(result, _verification(selection.patterns))
    report_skipped(reader)
    if html_path == "-":
        click.echo(page, nl=False)
        return
    _write_atomically(html_path, page)
    stderr.print(
        f"Report written to {html_path}: {result.total:,} attempts, {result.evasion_total:,} evasion attempts."
    )


def _write_atomically(path: str, text: str) -> None:
    """Write the whole page or nothing (a half-written report must not be mailed), readable by the owner only: it names people."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(prefix=".aipolicy-report-", suffix=".html", dir=directory)
    except OSError as error:
        raise click.ClickException(f"cannot write {path!r}: {error.strerror or error}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise click.ClickException(f"cannot write {path!r}: {error.strerror or error}") from None


def _verification(patterns: tuple[str, ...]) -> Verification:
    """The hash chain of the same log files, checked as `aipolicy log verify` does."""
    try:
        reports = aipolicy.verify_logs(patterns)
    except (aipolicy.EventLogError, ValueError) as error:
        return Verification("failed", f"The log could not be checked: {error}")
    lines = sum(r.lines for r in reports)
    problems = [str(r.problem) for r in reports if r.problem is not None]
    torn = [f"{t.file}:{t.line}: line cut short" for r in reports for t in r.torn if not t.acknowledged]
    if problems or torn:
        return Verification(
            "failed",
            f"The hash chain does not hold: {len(problems)} break(s), {len(torn)} torn line(s). "
            "Run `aipolicy log verify` for the details.",
            tuple(problems + torn),
        )
    heads = tuple(f"{r.log}: {r.lines:,} lines, head {r.head_ref}" for r in reports)
    return Verification(
        "verified", f"{lines:,} lines in {len(reports)} log(s) checked: the hash chain is intact.", heads
    )
