"""`aipolicy exception add|list|remove`: lift a rule for some users, groups or networks until a date."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

import aipolicy
from aipolicy.authoring import NewException, add_exception, remove_exception

from ._common import Date, echo_json, json_option, policy_option, stdout
from ._edit import _edit_options, _run_edit
from ._policy import load_or_fail


@click.group()
def exception() -> None:
    """Exceptions: a rule lifted for some users, groups or networks until a date, with a ticket.

    An exception stops applying at the end of its --until day (UTC) without anyone acting;
    events of requests it let through record it.

    \b
    Example:
        aipolicy exception add --rule deepseek-any-capacity --group threat-research \\
            --until 2026-12-31 --ticket SEC-1234 --reason "Analysis of the DeepSeek app" --policy policy.yaml
        aipolicy exception list --expiring 7d --policy policy.yaml
        aipolicy exception remove SEC-1234 --policy policy.yaml
    """


@click.command("add")
@click.option("--rule", "rule_id", required=True, help="The id of the rule to lift.")
@click.option("--user", "users", multiple=True, help="A user it applies to (repeatable).")
@click.option("--group", "groups", multiple=True, help="A group it applies to (repeatable).")
@click.option("--network", "networks", multiple=True, help="A CIDR or named network it applies to (repeatable).")
@click.option("--until", required=True, type=Date(), metavar="DATE", help="Last day (UTC).")
@click.option("--ticket", required=True, help="The ticket or approval that authorises it.")
@click.option("--reason", default="", help="Why: recorded with the exception.")
@click.option("--id", "ident", default="", help="An id for the exception (default: the ticket).")
@click.option("--owner", default="", help="Who is responsible for it.")
@_edit_options
def add(
    rule_id: str,
    users: tuple[str, ...],
    groups: tuple[str, ...],
    networks: tuple[str, ...],
    until: datetime.date,
    ticket: str,
    reason: str,
    ident: str,
    owner: str,
    policy_path: str | None,
    dry_run: bool,
) -> None:
    """Lift rule --rule for --user/--group/--network until the end of --until.

    \b
    Example:
        aipolicy exception add --rule deepseek-any-capacity --user alice --until 2026-12-31 \\
            --ticket SEC-1234 --reason "Red-team exercise" --policy policy.yaml
    """
    if not (users or groups or networks):
        raise click.UsageError("name who the exception is for: --user, --group or --network (repeatable)")
    if until < datetime.datetime.now(datetime.UTC).date():
        raise click.BadParameter(f"{until} is in the past", param_hint="--until")
    new = NewException(
        rule_id, until.isoformat(), ticket, reason, users, groups, networks, ident, owner
    )  # fmt: skip
    _run_edit(policy_path, dry_run, lambda document, _policy: add_exception(document, new))


@click.command("remove")
@click.argument("ident", metavar="ID")
@_edit_options
def remove(ident: str, policy_path: str | None, dry_run: bool) -> None:
    """Remove the exception with this id (or ticket).

    \b
    Example:
        aipolicy exception remove SEC-1234 --policy policy.yaml
    """
    _run_edit(policy_path, dry_run, lambda document, _policy: remove_exception(document, ident))


@click.command("list")
@policy_option
@click.option(
    "--expiring",
    default=None,
    metavar="DURATION",
    help="Only exceptions that end within DURATION (e.g. 7d, 48h) and are still in force.",
)
@click.option("--all", "show_all", is_flag=True, help="Include exceptions that have already expired.")
@json_option
def list_exceptions(policy_path: str | None, expiring: str | None, show_all: bool, as_json: bool) -> None:
    """The policy's exceptions: who, which rule, until when, under which ticket.

    \b
    Example:
        aipolicy exception list --policy policy.yaml
        aipolicy exception list --expiring 7d --json
    """
    policy = load_or_fail(policy_path)
    now = datetime.datetime.now(datetime.UTC)
    window = None
    if expiring is not None:
        try:
            window = datetime.timedelta(seconds=aipolicy.parse_duration(expiring))
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--expiring") from None
    rows = []
    for item in policy.exceptions:
        active = item.active(now)
        if window is not None and not (active and item.until - now <= window):
            continue
        if not active and not show_all and window is None:
            continue
        rows.append(_row(item, now))
    if as_json:
        echo_json({"policy": policy.hash, "exceptions": rows})
        return
    table = Table(title=f"Exceptions in {escape(Path(policy.path).name)} (policy {policy.hash})")
    for column in ("id", "rule", "for", "until", "state", "ticket", "reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(escape(str(row[key])) for key in ("id", "rule", "for", "until", "state", "ticket", "reason")))
    stdout.print(table if rows else "no exceptions" + (f" ending within {expiring}" if expiring else ""))


def _row(item: aipolicy.PolicyException, now: datetime.datetime) -> dict[str, Any]:
    left = item.until - now
    if left.total_seconds() <= 0:
        state = "expired"
    elif left < datetime.timedelta(days=1):
        state = f"ends in {int(left.total_seconds() // 3600)}h"
    else:
        state = f"ends in {left.days}d"
    return {
        "id": item.id,
        "rule": item.rule,
        "for": item.scope.describe(),
        "users": sorted(item.scope.users),
        "groups": sorted(item.scope.groups),
        "networks": [str(n) for n in item.scope.networks],
        "until": (item.until - datetime.timedelta(seconds=1)).date().isoformat(),
        "state": state,
        "ticket": item.ticket,
        "reason": item.reason,
        "owner": item.owner,
    }
