"""``aipolicy policy import|diff|replay``: bring in a community list, review a change, try it on past traffic."""

from __future__ import annotations

import datetime
from typing import Any

import click
from rich.table import Table

import aipolicy
from aipolicy import EventLogError, PolicyError

from ._common import echo_json, json_option, policy_option, safe, stderr, stdout
from ._policy import resolve_policy_path
from ._selection import TIME, check_period, log_option, report_skipped

SAMPLE = 10
USERS_SHOWN = 20


class TroubleError(click.ClickException):
    """An error in a command whose exit status 1 means "different" (like diff(1)): exit 2."""

    exit_code = 2


@click.command("import")
@click.argument("source")
@click.option("--into", "list_name", required=True, metavar="LIST", help="The named list (under 'lists:') to update.")
@click.option(
    "--format",
    "list_format",
    type=click.Choice(["auto", *aipolicy.SOURCE_FORMATS]),
    default="auto",
    show_default=True,
    help="The source's format; auto looks at its lines.",
)
@click.option("--replace", is_flag=True, help="Make the list exactly the source's entries (remove the others).")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@policy_option
@json_option
def import_list(
    source: str, list_name: str, list_format: str, replace: bool, dry_run: bool, policy_path: str | None, as_json: bool
) -> None:
    """Import a community block list (file or http(s) URL) into a named list of the policy.

    Formats: hosts files (0.0.0.0 host), adblock (||domain^), plain (one target
    a line) and v2fly domain-list-community (domain:, full:). Every entry is
    normalised as the proxy normalises hosts; entries already in the list are
    duplicates, so importing again adds nothing. An inline list is updated in
    the policy file (comments kept); a list kept in a file has that file
    rewritten. The result is loaded with the real loader before it replaces
    anything, and written atomically.

    \b
    Example:
        aipolicy policy import hosts.txt --into community --policy my.yaml --dry-run
        aipolicy policy import https://example.org/ai-hosts.txt --into community --policy my.yaml
        aipolicy policy import category-ai.txt --format v2fly --into ai --policy my.yaml --json
    """
    path = resolve_policy_path(policy_path)
    try:
        parsed = aipolicy.parse_source(aipolicy.read_source(source), list_format)
        plan = aipolicy.plan_import(path, list_name, parsed, source=source, replace=replace)
        if not dry_run:
            aipolicy.apply_import(plan)
    except (aipolicy.SourceError, aipolicy.ImportListError) as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        echo_json({**plan.as_dict(), "dry_run": dry_run, "written": plan.changed and not dry_run})
        return
    _print_import(plan, dry_run)


def _print_import(plan: aipolicy.ImportPlan, dry_run: bool) -> None:
    parsed = plan.parsed
    skipped = parsed.skipped_counts()
    stdout.print(
        f"{safe(plan.source)} ({parsed.format}) -> list [bold]{safe(plan.list_name)}[/] "
        f"({plan.list_kind}, {safe(plan.target_file)})"
    )
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, count in (
        ("added", len(plan.added)),
        ("removed", len(plan.removed)),
        ("duplicates", len(plan.duplicates)),
        ("invalid", len(parsed.invalid)),
        ("skipped", sum(skipped.values())),
        ("entries before", plan.before),
        ("entries after", plan.after),
    ):
        table.add_row(label, f"{count:,}")
    stdout.print(table)
    for entry, line in plan.added[:SAMPLE]:
        stdout.print(f"  [green]+[/] {safe(entry)}  [dim](line {line})[/]")
    _more(len(plan.added))
    for entry in plan.removed[:SAMPLE]:
        stdout.print(f"  [red]-[/] {safe(entry)}")
    _more(len(plan.removed))
    for item in parsed.invalid[:SAMPLE]:
        stderr.print(f"[yellow]line {item.line}: invalid: {safe(item.reason)}[/]")
    if len(parsed.invalid) > SAMPLE:
        stderr.print(f"[yellow]… {len(parsed.invalid) - SAMPLE} more invalid lines (see --json)[/]")
    for reason, count in sorted(skipped.items()):
        lines = [str(item.line) for item in parsed.skipped if item.reason == reason][:5]
        where = ", ".join(lines) + (", …" if count > 5 else "")
        stderr.print(f"[yellow]skipped {count} × {safe(aipolicy.SOURCE_SKIP_REASONS[reason])} (lines {where})[/]")
    if not plan.changed:
        stdout.print("nothing to change: the list already holds every entry")
    elif dry_run:
        stdout.print("[yellow]dry run[/]: nothing written")
    else:
        stdout.print(f"[green]written[/]: {safe(plan.target_file)} (validated with the policy loader)")


def _more(count: int) -> None:
    if count > SAMPLE:
        stdout.print(f"  … {count - SAMPLE:,} more (see --json)")


@click.command("diff")
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@json_option
def diff(a: str, b: str, as_json: bool) -> None:
    """Show what changes from policy A to policy B, rule by rule.

    Rules are paired by id: added, removed, changed (action, targets added and
    removed per match key, reason/directive/owner/review), and reordered (the
    first match wins, so order matters); the default action; list entries
    added and removed (counts and samples), inline or in files; settings.
    Exit status, like diff(1): 0 the same, 1 different, 2 trouble (a policy
    does not load).

    \b
    Example:
        aipolicy policy diff policies/default.yaml my.yaml
        aipolicy policy diff old.yaml new.yaml --json
    """
    try:
        result = aipolicy.diff_policies(a, b)
    except PolicyError as error:
        raise TroubleError(f"a policy does not load:\n{error}") from None
    if as_json:
        echo_json(result.as_dict())
    else:
        _print_diff(result.as_dict())
    raise SystemExit(0 if result.same else 1)


def _print_diff(data: dict[str, Any]) -> None:
    changes = data["changes"]
    if not changes:
        stdout.print(f"[green]same[/]: {safe(data['a'])} and {safe(data['b'])} decide alike")
        return
    stdout.print(f"--- {safe(data['a'])}\n+++ {safe(data['b'])}")
    if "default" in changes:
        stdout.print(f"default: {changes['default']['before']} -> [bold]{changes['default']['after']}[/]")
    for section in ("metadata", "settings"):
        for key, pair in changes.get(section, {}).items():
            stdout.print(f"{section}.{safe(key)}: {_shown(pair['before'])} -> {_shown(pair['after'])}")
    if "catalog" in changes:
        stdout.print(f"catalogue: {changes['catalog']['before']} -> {changes['catalog']['after']} (content hash)")
    rules = changes.get("rules", {})
    for rule in rules.get("added", []):
        stdout.print(f"[green]+ rule {safe(rule['id'])}[/] ({rule['action']}, position {rule['position']})")
    for rule in rules.get("removed", []):
        stdout.print(f"[red]- rule {safe(rule['id'])}[/] (was {rule['action']}, position {rule['position']})")
    for rule in rules.get("changed", []):
        stdout.print(f"[yellow]~ rule {safe(rule['id'])}[/]")
        for key, value in rule.items():
            if key == "match":
                for match_key, delta in value.items():
                    for item in delta["added"]:
                        stdout.print(f"    match.{match_key}: [green]+ {safe(item)}[/]")
                    for item in delta["removed"]:
                        stdout.print(f"    match.{match_key}: [red]- {safe(item)}[/]")
            elif key != "id":
                stdout.print(f"    {key}: {_shown(value['before'])} -> {_shown(value['after'])}")
    if "order" in rules:
        stdout.print(
            f"[yellow]rule order[/] (first match wins): {safe(', '.join(rules['order']['before']))} -> "
            f"{safe(', '.join(rules['order']['after']))}"
        )
    lists = changes.get("lists", {})
    for name, count in lists.get("added", {}).items():
        stdout.print(f"[green]+ list {safe(name)}[/] ({count:,} entries)")
    for name, count in lists.get("removed", {}).items():
        stdout.print(f"[red]- list {safe(name)}[/] ({count:,} entries)")
    for change in lists.get("changed", []):
        stdout.print(
            f"[yellow]~ list {safe(change['name'])}[/]: +{change.get('added', 0):,} -{change.get('removed', 0):,}"
        )
        for item in change.get("added_sample", []):
            stdout.print(f"    [green]+ {safe(item)}[/]")
        for item in change.get("removed_sample", []):
            stdout.print(f"    [red]- {safe(item)}[/]")
        if "source" in change:
            stdout.print(f"    source: {safe(change['source']['before'])} -> {safe(change['source']['after'])}")


def _shown(value: object) -> str:
    return "(none)" if value is None else safe(value)


@click.command("replay")
@log_option
@policy_option
@click.option("--since", type=TIME, metavar="TIME", help="Only events at or after TIME (UTC).")
@click.option("--until", type=TIME, metavar="TIME", help="Only events before TIME.")
@json_option
def replay(
    log_patterns: tuple[str, ...],
    policy_path: str | None,
    since: datetime.datetime | None,
    until: datetime.datetime | None,
    as_json: bool,
) -> None:
    """Decide recorded events again with a candidate policy; show what would change.

    Each event's hosts, SNI, path, method, scheme, port, client address, user
    and groups go through the decision function the proxy uses. Changes are
    grouped by (old action:rule -> new action:rule) and by user. What a replay
    cannot know is printed with the result: allowed requests are never
    recorded, bodies are never logged (a recorded model id stands in for the
    body), query strings are usually stripped.

    \b
    Example:
        aipolicy policy replay --log 'events.jsonl*' --policy candidate.yaml
        aipolicy policy replay --log events.jsonl --policy candidate.yaml --since 7d --json
    """
    check_period(since, until)
    try:
        candidate = aipolicy.load_policy(resolve_policy_path(policy_path))
    except PolicyError as error:
        raise click.ClickException(f"the candidate policy does not load:\n{error}") from None
    try:
        reader = aipolicy.read_events(
            log_patterns,
            since=aipolicy.format_ts(since) if since else None,
            until=aipolicy.format_ts(until) if until else None,
        )
        report = aipolicy.replay(candidate, reader)
    except EventLogError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        echo_json({**report.as_dict(), "skipped": reader.skipped.as_dict()})
        return
    report_skipped(reader)
    _print_replay(report)


def _print_replay(report: aipolicy.ReplayReport) -> None:
    stdout.print(
        f"{report.total:,} events replayed with policy {report.policy}: {report.same:,} decided the same, "
        f"[bold]{report.changed:,} differently[/] ({report.action_changed:,} with another action), "
        f"{report.undetermined:,} undetermined"
    )
    if report.transitions:
        table = Table(title="What changes")
        for column in ("was", "becomes", "events", "users", "example"):
            table.add_column(column, justify="right" if column == "events" else "left")
        for transition in report.sorted_transitions():
            example = transition.examples[0]
            users = ", ".join(f"{user} ({n})" for user, n in transition.users.most_common(3))
            table.add_row(
                safe(f"{transition.old_action}:{transition.old_rule}"),
                safe(f"{transition.new_action}:{transition.new_rule}"),
                f"{transition.count:,}",
                safe(users + (", …" if len(transition.users) > 3 else "")),
                safe(f"{example['host']}{example['path'] or ''} ({example['where']})"),
            )
        stdout.print(table)
        users_table = Table(title="By user")
        users_table.add_column("user")
        users_table.add_column("changed", justify="right")
        users_table.add_column("how")
        for user, counts in report.as_dict()["by_user"].items():
            users_table.add_row(
                safe(user), f"{sum(counts.values()):,}", safe("; ".join(f"{k} ×{v}" for k, v in counts.items()))
            )
        stdout.print(users_table)
    stdout.print("[dim]What a replay cannot know:[/]")
    for limit in aipolicy.REPLAY_LIMITS:
        stdout.print(f"[dim]  • {safe(limit)}[/]")
