"""Every command, option and alias stays where scripts and runbooks find it.

The fixture was dumped from the command tree before commands were registered in one place
(cli/_main.py); a difference here is a renamed or lost command or option. To change the tree
on purpose, regenerate it with ``python -m tests.cli.test_command_tree > FIXTURE`` and say why.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import click
from aipolicy.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cli_command_tree.json"
CLI = Path(__file__).resolve().parents[2] / "cli"
# Registrations left in a module another helper owns; the lead turns each into @click.command when merging.
PENDING: set[str] = set()


def _default(value: object) -> object:
    if callable(value):
        return "<callable>"
    if isinstance(value, tuple | list):
        return [_default(item) for item in value]
    return value if value is None or isinstance(value, bool | int | float | str) else repr(value)


def _param(param: click.Parameter, context: click.Context) -> dict[str, Any]:
    record = param.get_help_record(context) if isinstance(param, click.Option) else None
    entry: dict[str, Any] = {
        "kind": type(param).__name__,
        "name": param.name,
        "opts": list(param.opts),
        "secondary_opts": list(param.secondary_opts),
        "required": param.required,
        "multiple": param.multiple,
        "nargs": param.nargs,
        "default": _default(param.default),
        "envvar": param.envvar,
        "metavar": param.metavar,
        "shown": record[0] if record else None,  # how --help spells it: aliases, metavar
    }
    if isinstance(param, click.Option):
        entry |= {"is_flag": param.is_flag, "count": param.count, "hidden": param.hidden}
    if isinstance(param.type, click.Choice):
        entry["choices"] = list(param.type.choices)
    return entry


def command_tree(command: click.Command = main, path: tuple[str, ...] = ("aipolicy",)) -> list[dict[str, Any]]:
    """One entry per command (groups included), in a stable order."""
    context = click.Context(command, info_name=path[-1])
    entry: dict[str, Any] = {
        "path": " ".join(path),
        "group": isinstance(command, click.Group),
        "hidden": command.hidden,
        "params": [_param(param, context) for param in command.params],
    }
    entries = [entry]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            entries.extend(command_tree(command.commands[name], (*path, name)))
    return entries


def test_the_command_tree_is_unchanged() -> None:
    expected = json.loads(FIXTURE.read_text(encoding="utf-8"))
    actual = command_tree()
    assert [entry["path"] for entry in actual] == [entry["path"] for entry in expected]
    for got, want in zip(actual, expected, strict=True):
        assert got == want, got["path"]


def test_the_dump_sees_options_and_aliases() -> None:
    """The comparison is only as good as the dump: it must see an alias and a nested command."""
    entries = {entry["path"]: entry for entry in command_tree()}
    export = {param["name"]: param for param in entries["aipolicy violations export"]["params"]}
    assert export["as_json"]["opts"] == ["--json", "--nl"]
    assert "aipolicy policy block" in entries and "aipolicy catalog search" in entries


def registrations(path: Path) -> set[str]:
    """Where a module adds a command to a group: ``@group.command``/``@group.group`` or ``add_command``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                call = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(call, ast.Attribute) and call.attr in ("command", "group"):
                    owner = ast.unparse(call.value)
                    if owner != "click":
                        found.add(f"{path.name}:{decorator.lineno} @{owner}.{call.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_command":
            found.add(f"{path.name}:{node.lineno} add_command")
    return found


def test_commands_are_added_to_groups_in_main_only() -> None:
    found = set().union(*(registrations(path) for path in sorted(CLI.glob("*.py")) if path.name != "_main.py"))
    assert found == PENDING
    assert any("add_command" in entry for entry in registrations(CLI / "_main.py"))


if __name__ == "__main__":
    json.dump(command_tree(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
