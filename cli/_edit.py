"""Read and edit the policy from the command line.

``aipolicy policy show``, ``aipolicy policy block|allow|monitor|unblock``,
``aipolicy rule add|remove|enable|disable|move``, ``aipolicy init`` and
``aipolicy catalog search``. Every edit goes through ``aipolicy.edit_policy``:
checked by the loader, written atomically under a lock, backed up and audited.
"""

from __future__ import annotations

import datetime
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml
from rich.markup import escape
from rich.table import Table

import aipolicy
from aipolicy import CLI_RULE, EditError, Policy, PolicyDocument, RequestFacts, RuleMeta, edit_policy, parse_edit_target

from ._common import Date, echo_json, json_option, policy_option, stderr, stdout
from ._policy import load_or_fail, resolve_policy_path

TEMPLATES = ("strict", "discovery", "allowlist")


def _edit_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("--dry-run", is_flag=True, help="Print the change as a unified diff; write nothing.")(
        function
    )
    return policy_option(
        function, help="The policy file to edit (default: $AIPOLICY_POLICY; the shipped default is never edited)."
    )


def _meta_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.option("--reason", default="", help="Why: shown on the block page and logged."),
            click.option("--directive", default="", help="The directive or ticket that authorises the rule."),
            click.option(
                "--expires",
                type=Date(),
                default=None,
                metavar="DATE",
                help="Last day the rule applies (YYYY-MM-DD); after it the rule is inactive.",
            ),
        )
    ):
        function = option(function)
    return function


def _meta(reason: str, directive: str, expires: datetime.date | None, **more: str) -> RuleMeta:
    if expires is not None and expires < datetime.date.today():
        raise click.BadParameter(f"{expires} is in the past", param_hint="--expires")
    return RuleMeta(reason=reason, directive=directive, expires=expires.isoformat() if expires else "", **more)


def _target_path(policy_path: str | None) -> Path:
    if not policy_path:
        raise click.UsageError(
            "name the policy file to edit with --policy FILE or $AIPOLICY_POLICY "
            "(the shipped default is not edited; 'aipolicy init FILE' writes a starter policy)"
        )
    return Path(policy_path)


def _run_edit(
    policy_path: str | None, dry_run: bool, change: Callable[[PolicyDocument, Policy | None], list[str]]
) -> aipolicy.EditResult:
    path = _target_path(policy_path)
    context = click.get_current_context()
    # the program name as people type it, also when invoked under another name (tests, python -m)
    name = " ".join(["aipolicy", *context.command_path.split()[1:]])
    command = {"command": name, "params": _json_params(context.params), "argv": shlex.join(sys.argv)}
    try:
        result = edit_policy(path, change, command=command, dry_run=dry_run)
    except EditError as error:
        raise click.ClickException(str(error)) from None
    for message in result.messages:
        stderr.print(escape(message))
    if not result.changed:
        stderr.print(f"nothing to change: {escape(str(path))} not written")
    elif dry_run:
        click.echo(result.diff, nl=False)
        stderr.print(f"[yellow]dry run[/]: {escape(str(path))} not written (policy would be {result.policy.hash})")
    else:
        stderr.print(
            f"[green]wrote[/] {escape(str(path))}: policy {result.before_hash or 'invalid'} → {result.policy.hash}; "
            f"backup {escape(result.backup)}; audit {escape(result.audit)}"
        )
    return result


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v.isoformat() if isinstance(v, datetime.date) else list(v) if isinstance(v, tuple) else v)
        for k, v in params.items()
        if k not in ("policy_path",)
    }


def _probe(key: str, value: str) -> RequestFacts | None:
    """A request that the target matches, to check what the edited policy does with it."""
    if key in ("domains", "hosts"):
        return RequestFacts(hosts=(value.replace("*.", "probe.", 1),), path="/")
    if key == "ips":
        return RequestFacts(hosts=(value.split("/", 1)[0],), path="/")
    if key == "urls":
        host, _, path = value.partition("/")
        return RequestFacts(hosts=(host.replace("*.", "probe.", 1),), path="/" + path.replace("*", "x"))
    return None


def _effective(loaded: Policy, key: str, value: str) -> tuple[str, str, int] | None:
    facts = _probe(key, value)
    if facts is None:
        return None
    decision = aipolicy.decide(loaded, facts)
    lines = {rule.id: rule.line for rule in loaded.rules}
    return decision.action, decision.rule, lines.get(decision.rule, 0)


def _where(rule: str, line: int) -> str:
    return "the default action" if rule == "default" else f"rule {rule!r} (line {line})"


# --- policy block / allow / monitor / unblock ---------------------------------------------------


def _make_add_command(action: str, example: str) -> click.Command:
    @click.command(action, help=_ADD_HELP.format(action=action, title=action.capitalize(), example=example))
    @click.argument("targets", nargs=-1, required=True, metavar="TARGET…")
    @_meta_options
    @_edit_options
    def command(
        targets: tuple[str, ...],
        reason: str,
        directive: str,
        expires: datetime.date | None,
        dry_run: bool,
        policy_path: str | None,
    ) -> None:
        meta = _meta(reason, directive, expires)
        before: dict[str, tuple[str, str, int] | None] = {}

        def change(document: PolicyDocument, current: Policy | None) -> list[str]:
            messages: list[str] = []
            for text in targets:
                key, value = parse_edit_target(text, current.catalog if current else None)
                before[text] = _effective(current, key, value) if current else None
                messages += document.add_target(action, key, value, meta)
            return messages

        result = _run_edit(policy_path, dry_run, change)
        for text in targets:
            key, value = parse_edit_target(text, result.policy.catalog)
            effective, earlier = _effective(result.policy, key, value), before.get(text)
            if effective and effective[0] != action:
                stderr.print(
                    f"[yellow]note[/]: {escape(text)} still gets {effective[0]} from "
                    f"{escape(_where(effective[1], effective[2]))}, which comes first"
                )
            elif earlier and earlier[0] == "block" != action and not CLI_RULE.match(earlier[1]):
                stderr.print(
                    f"[yellow]note[/]: {escape(text)} was blocked by {escape(_where(earlier[1], earlier[2]))}; "
                    f"the CLI's {action} rule now comes first and overrides it"
                )

    return command


_ADD_HELP = """{title} TARGETs: add them to the CLI-managed rule 'cli-{action}' near the top of the policy.

Targets given with --reason, --directive or --expires go to a CLI rule with
exactly those ('cli-{action}-2' …). A target is in one CLI rule at a time.

\b
TARGET is one of:
  example.com  *.example.com  =host.example.com  192.0.2.0/24  example.com/path
  vendor:ID  app:ID  category:ID   (catalogue; see 'aipolicy catalog search')
  model:PATTERN                    (a model name, e.g. model:deepseek-*)

The edit is checked by the policy loader before it is written; the old file is
kept as FILE.bak and the change is recorded in FILE.audit.jsonl. A running
proxy picks the new policy up by itself.

\b
Example:
    aipolicy policy {action} {example} --policy policy.yaml
    aipolicy policy {action} example-ai.test --policy policy.yaml --dry-run
"""

block = _make_add_command("block", "chat.example-ai.test vendor:deepseek --reason 'Not approved' --directive SEC-42")
allow = _make_add_command("allow", "=api.example-ai.test --expires 2027-06-30 --reason 'Pilot, ticket 1234'")
monitor = _make_add_command("monitor", "app:perplexity model:llama-*")


@click.command("unblock")
@click.argument("targets", nargs=-1, required=True, metavar="TARGET…")
@_edit_options
def unblock(targets: tuple[str, ...], dry_run: bool, policy_path: str | None) -> None:
    """Take TARGETs out of the CLI-managed block rules ('cli-block' …).

    Rules written by hand are never changed: when a target stays blocked by one,
    the command says which rule (and its line) blocks it.

    \b
    Example:
        aipolicy policy unblock chat.example-ai.test --policy policy.yaml
    """

    def change(document: PolicyDocument, current: Policy | None) -> list[str]:
        messages: list[str] = []
        for text in targets:
            key, value = parse_edit_target(text, current.catalog if current else None)
            removed = document.remove_target("block", key, value)
            effective = _effective(current, key, value) if current else None
            if not removed:
                held = f"; it gets {effective[0]} from {_where(effective[1], effective[2])}" if effective else ""
                raise EditError(f"{text} is not in a CLI-managed block rule{held}; 'unblock' changes only those")
            messages += removed
        return messages

    result = _run_edit(policy_path, dry_run, change)
    for text in targets:
        key, value = parse_edit_target(text, result.policy.catalog)
        effective = _effective(result.policy, key, value)
        if effective and effective[0] == "block":
            stderr.print(
                f"[yellow]note[/]: {escape(text)} is still blocked by {escape(_where(effective[1], effective[2]))}, "
                "which 'unblock' does not change (edit that rule, or add an exception with 'aipolicy policy allow')"
            )


# --- policy show -------------------------------------------------------------------------------


def _rule_rows(path: str, loaded: Policy) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as stream:
        data = yaml.safe_load(stream) or {}
    active = {rule.id for rule in loaded.rules}
    rows = []
    for position, rule in enumerate(data.get("rules") or [], 1):
        if not isinstance(rule, dict):
            continue
        expires = str(rule.get("expires", "") or "")
        enabled = rule.get("enabled", True) is not False
        state = "active" if rule.get("id") in active else "disabled" if not enabled else "expired"
        directive = rule.get("directive")
        rows.append(
            {
                "position": position,
                "id": str(rule.get("id", "")),
                "action": str(rule.get("action", "")),
                "state": state,
                "match": {k: v if isinstance(v, list) else [v] for k, v in (rule.get("match") or {}).items()},
                "directive": str(directive.get("id", "")) if isinstance(directive, dict) else str(directive or ""),
                "owner": str(rule.get("owner", "") or ""),
                "review": str(rule.get("review", "") or ""),
                "expires": expires,
                "reason": str(rule.get("reason", "") or "").strip(),
            }
        )
    return rows


@click.command("show")
@policy_option
@json_option
def show(policy_path: str | None, as_json: bool) -> None:
    """Show the policy's rules in order: what each matches, its action, directive, owner and review date.

    \b
    Example:
        aipolicy policy show
        aipolicy policy show --policy policy.yaml --json
    """
    path = resolve_policy_path(policy_path)
    loaded = load_or_fail(path)
    rows = _rule_rows(path, loaded)
    if as_json:
        echo_json({"file": path, "name": loaded.name, "policy": loaded.hash, "default": loaded.default, "rules": rows})
        return
    table = Table(title=f"{escape(loaded.name)}: {escape(path)} (policy {loaded.hash})")
    for column in ("#", "ID", "Action", "Matches", "Directive", "Owner", "Review", "State"):
        table.add_column(column, overflow="fold")
    colours = {"block": "red", "monitor": "yellow", "allow": "green"}
    for row in rows:
        matches = "\n".join(f"{key}: {', '.join(str(v) for v in values)}" for key, values in row["match"].items())
        state = row["state"] + (f" (expires {row['expires']})" if row["expires"] and row["state"] == "active" else "")
        table.add_row(
            str(row["position"]), escape(row["id"]), f"[{colours.get(row['action'], 'white')}]{escape(row['action'])}[/]",
            escape(matches), escape(row["directive"]), escape(row["owner"]), escape(row["review"]),
            escape(state) if row["state"] == "active" else f"[dim]{escape(state)}[/]",
        )  # fmt: skip
    stdout.print(table)
    stdout.print(f"Anything no rule matches: [bold]{loaded.default}[/]")
    for warning in loaded.warnings:
        stderr.print(f"[yellow]{escape(str(warning))}[/]")


# --- rule add / remove / enable / disable / move -----------------------------------------------


@click.group()
def rule() -> None:
    """Add, remove, enable, disable and reorder the policy's rules.

    \b
    Example:
        aipolicy rule add block-example --action block --match example-ai.test --policy policy.yaml
        aipolicy rule move block-example --to-top --policy policy.yaml
    """


@click.command("add")
@click.argument("rule_id", metavar="ID")
@click.option("--action", type=click.Choice(aipolicy.ACTIONS), required=True, help="What the rule does.")
@click.option("--match", "matches", multiple=True, required=True, metavar="TARGET", help="What it matches; repeatable.")
@_meta_options
@click.option("--description", default="", help="One line saying what the rule is for.")
@click.option("--owner", default="", help="Who owns the rule.")
@click.option("--review", type=Date(), default=None, metavar="DATE", help="When to review it.")
@click.option("--before", default=None, metavar="ID", help="Insert before this rule (default: after the last rule).")
@click.option("--after", default=None, metavar="ID", help="Insert after this rule.")
@click.option("--to-top", is_flag=True, help="Insert as the first rule.")
@_edit_options
def rule_add(
    rule_id: str,
    action: str,
    matches: tuple[str, ...],
    reason: str,
    directive: str,
    expires: datetime.date | None,
    description: str,
    owner: str,
    review: datetime.date | None,
    before: str | None,
    after: str | None,
    to_top: bool,
    dry_run: bool,
    policy_path: str | None,
) -> None:
    """Add rule ID with an action and what it matches (targets as for 'aipolicy policy block').

    \b
    Example:
        aipolicy rule add pilot-claude --action allow --match app:claude --expires 2027-03-31 \\
            --reason 'Pilot, ticket 1234' --before generative-ai-monitored --policy policy.yaml
    """
    _one_place(before, after, to_top)
    meta = _meta(
        reason,
        directive,
        expires,
        description=description,
        owner=owner,
        review=review.isoformat() if review else "",
    )

    def change(document: PolicyDocument, current: Policy | None) -> list[str]:
        targets = [parse_edit_target(text, current.catalog if current else None) for text in matches]
        position = 0 if to_top else document.index(before) if before else document.index(after) + 1 if after else None
        return document.add_rule(rule_id, action, targets, meta, position)

    _run_edit(policy_path, dry_run, change)


def _one_place(before: str | None, after: str | None, to_top: bool) -> None:
    if sum(bool(x) for x in (before, after, to_top)) > 1:
        raise click.UsageError("give only one of --before, --after and --to-top")


@click.command("remove")
@click.argument("rule_id", metavar="ID")
@_edit_options
def rule_remove(rule_id: str, dry_run: bool, policy_path: str | None) -> None:
    """Remove rule ID, with the comment lines above it.

    \b
    Example:
        aipolicy rule remove pilot-claude --policy policy.yaml
    """
    _run_edit(policy_path, dry_run, lambda document, _: document.remove_rule(rule_id))


@click.command("enable")
@click.argument("rule_id", metavar="ID")
@_edit_options
def rule_enable(rule_id: str, dry_run: bool, policy_path: str | None) -> None:
    """Enable rule ID again (removes its 'enabled: false').

    \b
    Example:
        aipolicy rule enable prc-generative-ai --policy policy.yaml
    """
    _run_edit(policy_path, dry_run, lambda document, _: document.set_enabled(rule_id, True))


@click.command("disable")
@click.argument("rule_id", metavar="ID")
@_edit_options
def rule_disable(rule_id: str, dry_run: bool, policy_path: str | None) -> None:
    """Disable rule ID without deleting it (writes 'enabled: false').

    \b
    Example:
        aipolicy rule disable prc-generative-ai --policy policy.yaml
    """
    _run_edit(policy_path, dry_run, lambda document, _: document.set_enabled(rule_id, False))


@click.command("move")
@click.argument("rule_id", metavar="ID")
@click.option("--before", default=None, metavar="ID", help="Move it just before this rule.")
@click.option("--after", default=None, metavar="ID", help="Move it just after this rule.")
@click.option("--to-top", is_flag=True, help="Make it the first rule.")
@_edit_options
def rule_move(
    rule_id: str, before: str | None, after: str | None, to_top: bool, dry_run: bool, policy_path: str | None
) -> None:
    """Move rule ID (first match wins, so order matters), with the comment lines above it.

    \b
    Example:
        aipolicy rule move generative-ai-monitored --to-top --policy policy.yaml
        aipolicy rule move cli-allow --after deepseek-any-capacity --policy policy.yaml
    """
    _one_place(before, after, to_top)
    if not (before or after or to_top):
        raise click.UsageError("say where: --before ID, --after ID or --to-top")
    _run_edit(policy_path, dry_run, lambda document, _: document.move_rule(rule_id, before, after, to_top))


# --- init --------------------------------------------------------------------------------------


@click.command("init")
@click.argument("file", default="policy.yaml", type=click.Path(dir_okay=False))
@click.option(
    "--template",
    type=click.Choice(TEMPLATES),
    default="strict",
    show_default=True,
    help="strict: the shipped DeepSeek/PRC ban; discovery: monitor only; allowlist: sanctioned apps only.",
)
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
def init(file: str, template: str, force: bool) -> None:
    """Write a starter policy to FILE (default: policy.yaml) from a commented template.

    \b
    Example:
        aipolicy init policy.yaml --template discovery
        aipolicy policy validate policy.yaml
    """
    path = Path(file)
    if path.exists() and not force:
        raise click.ClickException(f"{file} exists; pass --force to overwrite it")
    content = aipolicy.template(template).read_bytes()
    try:
        loaded = aipolicy.load_policy(path, content)
    except aipolicy.PolicyError as error:  # a template that does not validate is a bug; say so plainly
        raise click.ClickException(f"the {template} template does not load:\n{error}") from None
    try:
        path.write_bytes(content)
    except OSError as error:
        raise click.ClickException(f"cannot write {file}: {error.strerror}") from None
    stdout.print(
        f"[green]wrote[/] {escape(file)} from the {template} template: {len(loaded.rules)} rules, "
        f"default {loaded.default}, policy {loaded.hash}"
    )
    stdout.print(f"Next: aipolicy policy show --policy {escape(file)}; aipolicy proxy --policy {escape(file)}")


# --- catalog search ----------------------------------------------------------------------------


@click.command("search")
@click.argument("text")
@policy_option
@json_option
def search(text: str, policy_path: str | None, as_json: bool) -> None:
    """Find vendors, apps, categories, hosts, model patterns and sources containing TEXT.

    \b
    Example:
        aipolicy catalog search deepseek
        aipolicy catalog search moonshot --json
    """
    cat = load_or_fail(policy_path).catalog
    needle = text.strip().lower()
    if not needle:
        raise click.BadParameter("give some text to search for", param_hint="TEXT")
    found = _search(cat, needle)
    if as_json:
        echo_json({"query": text, "matches": found})
        return
    if not found:
        stderr.print(f"nothing in the catalogue matches {escape(text)!r}")
        return
    table = Table(title=f"Catalogue entries matching {escape(text)!r}: {len(found)}")
    for column in ("Kind", "ID", "Field", "Value", "Use as"):
        table.add_column(column, overflow="fold")
    for row in found:
        table.add_row(*(escape(str(row[k])) for k in ("kind", "id", "field", "value", "target")))
    stdout.print(table)


def _search(cat: aipolicy.Catalog, needle: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []

    def check(kind: str, entry_id: str, field: str, value: str, target: str) -> None:
        if needle in value.lower():
            found.append({"kind": kind, "id": entry_id, "field": field, "value": value, "target": target})

    for category_id, name in cat.categories.items():
        for field, value in (("id", category_id), ("name", name)):
            check("category", category_id, field, value, f"category:{category_id}")
    for vendor in cat.vendors.values():
        for field, value in (("id", vendor.id), ("name", vendor.name), ("country", vendor.country)):
            check("vendor", vendor.id, field, value, f"vendor:{vendor.id}")
        check("vendor", vendor.id, "source", vendor.source, f"vendor:{vendor.id}")
    for app in cat.apps.values():
        for field, value in (("id", app.id), ("name", app.name), ("source", app.source)):
            check("app", app.id, field, value, f"app:{app.id}")
        for target in app.targets:
            check("app", app.id, "host" if target.kind == "domain" else "weights", str(target), f"app:{app.id}")
        for pattern in app.models:
            check("app", app.id, "model", pattern, f"model:{pattern}")
    return found
