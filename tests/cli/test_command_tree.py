"""Every command, option and alias stays where scripts and runbooks find it.

The fixture was dumped from the command tree before commands were registered in one place
(cli/_main.py); a difference here is a renamed or lost command or option. To change the tree
on purpose, regenerate it with ``python -m tests.cli.test_command_tree > FIXTURE`` and say why.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from aipolicy.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cli_command_tree.json"


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


if __name__ == "__main__":
    json.dump(command_tree(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
