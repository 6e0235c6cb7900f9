"""The three layers stay apart, and the core's public surface stays small and listed."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import aipolicy

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_core_and_cli_do_not_import_mitmproxy() -> None:
    result = run_python(
        "import aipolicy, aipolicy.cli, sys\n"
        "import aipolicy.cli._main, aipolicy.cli._policy, aipolicy.cli._proxy\n"
        "loaded = sorted(m for m in sys.modules if m == 'mitmproxy' or m.startswith('mitmproxy.'))\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_running_cli_commands_does_not_import_mitmproxy() -> None:
    result = run_python(
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from aipolicy.cli import main\n"
        "runner = CliRunner()\n"
        "assert runner.invoke(main, ['policy', 'validate']).exit_code == 0\n"
        "assert runner.invoke(main, ['policy', 'test', 'https://chat.deepseek.com/', '--json']).exit_code == 0\n"
        "loaded = sorted(m for m in sys.modules if m == 'mitmproxy' or m.startswith('mitmproxy.'))\n"
        "assert not loaded, loaded\n"
    )
    assert result.returncode == 0, result.stderr


def test_core_does_not_import_click_or_rich() -> None:
    result = run_python(
        "import aipolicy, sys\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'rich', 'mitmproxy'))\n"
        "assert not bad, bad\n"
    )
    assert result.returncode == 0, result.stderr


def test_dunder_all_is_sorted() -> None:
    names = list(aipolicy.__all__)
    assert names == sorted(names)
    assert len(names) == len(set(names))


def test_dunder_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(aipolicy).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(aipolicy.__all__)


def test_dunder_all_names_exist() -> None:
    missing = [name for name in aipolicy.__all__ if not hasattr(aipolicy, name)]
    assert missing == []


def test_dunder_all_matches_the_imports_in_the_source() -> None:
    # Checked on the source too, so a name imported but left out of __all__ is caught
    # even when another module happens to set it on the package.
    tree = ast.parse((ROOT / "aipolicy" / "__init__.py").read_text(encoding="utf-8"))
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.level == 1
        for alias in node.names
    }
    public_imports = {name for name in imported if not name.startswith("_")}
    assert public_imports <= set(aipolicy.__all__)
