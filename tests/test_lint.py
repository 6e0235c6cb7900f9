"""House style, enforced: ruff (including the ban on importing mitmproxy outside
proxy_addons/), mypy --strict on the core and the import contracts (import-linter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.layout import installed_tree, lint_imports

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_check() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_the_core() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts(tmp_path: Path) -> None:
    # The layers and the protected imports of [tool.importlinter] in pyproject.toml, on the tree as
    # it installs (tests/test_architecture.py shows that a broken contract fails this).
    result = lint_imports(installed_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
