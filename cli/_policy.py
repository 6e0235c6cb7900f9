"""``aipolicy policy …``: validate a policy, test what a URL would get."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

import aipolicy
from aipolicy import Decision, Policy, PolicyError, RequestFacts

from ._common import ACTION_COLOURS, echo_json, json_option, policy_option, stderr, stdout


def resolve_policy_path(policy_path: str | None) -> str:
    return policy_path or str(aipolicy.default_policy())


def load_or_fail(policy_path: str | None) -> Policy:
    try:
        return aipolicy.load_policy(resolve_policy_path(policy_path))
    except PolicyError as error:
        raise click.ClickException(f"the policy does not load:\n{error}") from None


@click.group()
def policy() -> None:
    """Check and query the policy.

    \b
    Example:
        aipolicy policy validate policies/default.yaml
        aipolicy policy test https://chat.deepseek.com/
    """


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False), envvar="AIPOLICY_POLICY")
@json_option
def validate(file: str | None, as_json: bool) -> None:
    """Validate a policy file (and the catalogue and lists it uses).

    Prints every problem as FILE:LINE:COL: message. Exit status 0 when the
    policy is valid (warnings allowed), 1 when it is not.

    \b
    Example:
        aipolicy policy validate policies/default.yaml
        aipolicy policy validate my-policy.yaml --json
    """
    path = resolve_policy_path(file)
    try:
        loaded = aipolicy.load_policy(path)
        problems, valid = loaded.warnings, True
    except PolicyError as error:
        loaded, problems, valid = None, error.problems, False
    if as_json:
        echo_json(
            {
                "file": path,
                "valid": valid,
                "policy": loaded.hash if loaded else None,
                "rules": len(loaded.rules) if loaded else None,
                "errors": sum(p.severity == "error" for p in problems),
                "warnings": sum(p.severity == "warning" for p in problems),
                "problems": [p.as_dict() for p in problems],
            }
        )
    else:
        for problem in problems:
            colour = "red" if problem.severity == "error" else "yellow"
            stderr.print(f"[{colour}]{escape(str(problem))}[/]")
        if loaded:
            stdout.print(
                f"[green]valid[/]: {escape(path)} — {len(loaded.rules)} rules, default {loaded.default}, "
                f"policy {loaded.hash}" + (f", {len(problems)} warning(s)" if problems else "")
            )
        else:
            stderr.print(f"[red]invalid[/]: {escape(path)} — {sum(p.severity == 'error' for p in problems)} error(s)")
    if not valid:
        raise SystemExit(1)


def _parse_header(value: str) -> tuple[str, str]:
    name, sep, content = value.partition(":")
    if not sep or not name.strip():
        raise click.BadParameter(f"{value!r} is not NAME:VALUE", param_hint="--header")
    return name.strip().lower(), content.strip()


@click.command("test")
@click.argument("url")
@policy_option
@click.option("--method", default="GET", show_default=True, help="HTTP method.")
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME:VALUE",
    help="A request header; repeatable. 'Host:NAME' adds a Host header.",
)
@click.option("--sni", default="", help="The TLS server name the client sends, if it differs from the URL's host.")
@click.option(
    "--body-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Request body to decide on, as sent (read, never printed).",
)
@click.option("--user", default="", help="The authenticated user making the request.")
@click.option("--client-ip", default="192.0.2.10", show_default=True, help="The client's address.")
@json_option
def test_url(
    url: str,
    policy_path: str | None,
    method: str,
    headers: tuple[str, ...],
    sni: str,
    body_file: str | None,
    user: str,
    client_ip: str,
    as_json: bool,
) -> None:
    """Show what the proxy would do with a request: the same evaluation it runs.

    A body a model or DLP rule reads comes from --body-file, as sent: decoded as
    its Content-Encoding header says, redacted or blocked as the proxy would.

    \b
    Example:
        aipolicy policy test https://chat.deepseek.com/
        aipolicy policy test https://huggingface.co/deepseek-ai/DeepSeek-R1 --json
        aipolicy policy test https://203.0.113.5/ --sni api.deepseek.com
        aipolicy policy test http://198.51.100.7/ --header Host:chat.deepseek.com
    """
    loaded = load_or_fail(policy_path)
    header_map = dict(_parse_header(h) for h in headers)
    try:
        scheme, host, port, path = aipolicy.split_url(url)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="URL") from None
    if not host:
        raise click.BadParameter(f"{url!r} has no host", param_hint="URL")
    names = tuple(n for n in (host, sni, header_map.get("host", "")) if n)
    body = _read_body(body_file)
    if body is not None:
        header_map.setdefault("content-length", str(len(body)))  # as the proxy sees the request
    facts = RequestFacts(
        hosts=names,
        path=path,
        method=method.upper(),
        scheme=scheme,
        port=port,
        client_ip=client_ip,
        user=user,
        headers=header_map,
    )
    evaluation, needs_body = _evaluate(loaded, facts, body)
    decision = evaluation.decision
    notes = [n for n in (needs_body, evaluation.note) if n]
    if as_json:
        echo_json({"url": url, **decision.as_dict(), "needs_body": bool(needs_body), "note": "; ".join(notes) or None})
        return
    _print_decision(decision, url, notes)


def _evaluate(policy: Policy, facts: RequestFacts, body: bytes | None) -> tuple[aipolicy.Evaluation, str]:
    """What the proxy would do: the evaluation, and what to say when a rule needs a body that was not given
    (the decision is then the one for a request without a body, as the proxy makes for a bodyless GET)."""
    headers = facts.headers
    length = headers.get("content-length", "")
    declared = int(length) if length.isascii() and length.isdigit() else 0
    evaluation = aipolicy.evaluate(policy, facts, declared_size=declared)
    if not evaluation.needs_body:
        return evaluation, ""
    provisional = evaluation.decision
    if body is not None:
        encoding = headers.get("content-encoding", "")
        return aipolicy.evaluate(policy, facts, body, content_encoding=encoding, provisional=provisional), ""
    needs = (
        f"rule {provisional.rule} reads the request body (a model or DLP condition) and no --body-file was "
        "given: this is the decision for a request without a body; pass --body-file to decide on one"
    )
    return aipolicy.evaluate(policy, replace(facts, body=b"")), needs


def _read_body(body_file: str | None) -> bytes | None:
    """The request body as sent (still content-encoded, if it declares an encoding)."""
    if not body_file:
        return None
    try:
        return Path(body_file).read_bytes()
    except OSError as error:
        raise click.BadParameter(f"cannot read {body_file!r}: {error.strerror}", param_hint="--body-file") from None


def _print_decision(decision: Decision, url: str, notes: list[str]) -> None:
    colour = ACTION_COLOURS.get(decision.action, "bold")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("URL", escape(url))
    table.add_row("Action", f"[bold {colour}]{decision.action}[/]")
    table.add_row("Rule", escape(decision.rule))
    table.add_row("Reason", escape(decision.reason))
    if decision.app:
        table.add_row(
            "App", escape(f"{decision.app_name} ({decision.app}) — {decision.vendor_name}, {decision.country}")
        )
        table.add_row("Categories", escape(", ".join(decision.categories)))
    if decision.directive:
        table.add_row(
            "Directive",
            escape(" — ".join(v for v in (decision.directive.get("id", ""), decision.directive.get("title", "")) if v)),
        )
    if decision.model:
        table.add_row("Model", escape(decision.model))
    if decision.control:
        table.add_row("Control", escape(decision.control))
    table.add_row("Matched host", escape(decision.host))
    table.add_row("Policy", decision.policy)
    for note in notes:
        table.add_row("Note", escape(note))
    stdout.print(table)
