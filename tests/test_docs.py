"""The README is the manual: every command is documented there, with the
quick start's two commands. docs/architecture.md names only files, modules, functions and
attributes that exist."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from aipolicy.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def command_paths(group: click.Group, prefix: str = "aipolicy") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, path))
        else:
            paths.append(path)
    return paths


@pytest.mark.parametrize("path", command_paths(main))
def test_every_command_is_in_the_readme(path: str) -> None:
    assert f"`{path}" in README or f"$ {path}" in README, f"{path} is not documented in README.md"


def test_quick_start_has_the_two_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = quick_start.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert commands == ["python3 dev.py proxy", "python3 dev.py test"]
    assert "python3 dev.py test" in (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()


ARCHITECTURE = ROOT / "docs" / "architecture.md"
SOURCE_FOLDERS = ("aipolicy", "cli", "proxy_addons")
# What the page names: paths with a slash (`cli/_proxy.py`, `tests/`), dotted names in the
# namespace (`aipolicy.decision._decide.decide`), `Class.attribute` and `function()` in backticks.
PATH = re.compile(r"(?<![\w/:.~-])\.?[A-Za-z_][\w.-]*(?:/[\w.*-]+)+/?|(?<![\w/:.~-])[A-Za-z_][\w-]*/(?![\w/])")
FILE = re.compile(r"\.(py|ya?ml|md|toml|cfg|json)$")
DOTTED = re.compile(r"(?<![\w./])aipolicy(?:\.\w+)+")
ATTRIBUTE = re.compile(r"`([A-Z]\w*)\.(\w+)(?:\(\))?`")
FUNCTION = re.compile(r"`([a-z_]\w*)\(\)`")


def defined_in_source() -> tuple[set[str], dict[str, set[str]]]:
    """Function and class names in the source, and each class's attributes: methods, class-level
    fields and what its methods assign to ``self``."""
    functions: set[str] = set()
    classes: dict[str, set[str]] = {}
    for path in (path for folder in SOURCE_FOLDERS for path in (ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.add(node.name)
            elif isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, set()).update(attributes_of(node))
    return functions, classes


def attributes_of(node: ast.ClassDef) -> Iterator[str]:
    for inner in ast.walk(node):
        if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef):
            yield inner.name
        elif isinstance(inner, ast.AnnAssign | ast.Assign | ast.AugAssign):
            for target in inner.targets if isinstance(inner, ast.Assign) else [inner.target]:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        yield name.id
                    elif isinstance(name, ast.Attribute) and isinstance(name.value, ast.Name):
                        yield name.attr  # self.x = …


def resolves(dotted: str) -> bool:
    """Does ``aipolicy.a.b.c`` name a module, or something a module holds (a dataclass field too)?"""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            with warnings.catch_warnings():
                # mitmproxy's proxyauth (imported by the launcher) pulls in ldap3, which uses
                # pyasn1 names deprecated upstream
                warnings.simplefilter("ignore", DeprecationWarning)
                value: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            is_dataclass = isinstance(value, type) and dataclasses.is_dataclass(value)
            fields = {field.name for field in dataclasses.fields(value)} if is_dataclass else set()
            if not hasattr(value, name) and name not in fields:
                return False
            value = getattr(value, name, None)
        return True
    return False


def test_what_the_architecture_page_names_exists() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    top_level = {path.name for path in ROOT.iterdir()}
    missing = [
        path
        for path in sorted(set(PATH.findall(text)))
        if (path.split("/")[0] in top_level or FILE.search(path)) and not any(ROOT.glob(path.rstrip("/")))
    ]
    missing += [name for name in sorted(set(DOTTED.findall(text))) if not resolves(name)]
    functions, classes = defined_in_source()
    missing += [
        f"{owner}.{name}" for owner, name in sorted(set(ATTRIBUTE.findall(text))) if name not in classes.get(owner, ())
    ]
    missing += [name for name in sorted(set(FUNCTION.findall(text))) if name not in functions]
    assert missing == [], f"docs/architecture.md names what does not exist: {missing}"
