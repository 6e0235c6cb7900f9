"""The README is the manual: every command is documented there, with the
quick start's two commands."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from aipolicy.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


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
