"""The source tree as it installs. The folders at the repository root (cli/, proxy_addons/,
policies/) install inside the aipolicy namespace through pyproject's package-dir table; the tests
that read the import graph and run the import contracts see the modules by their installed names.
"""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACES = ("aipolicy.cli", "aipolicy.proxy_addons")


def package_dirs() -> dict[str, Path]:
    """Installed package name -> its folder in the repository ([tool.setuptools.package-dir])."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    folders = config["tool"]["setuptools"]["package-dir"]
    return {package: ROOT / folder for package, folder in sorted(folders.items())}


def source_modules() -> dict[str, Path]:
    """Every installed module name -> its source file: the .py files of each mapped package and of
    its subpackages (folders with an __init__.py)."""
    modules: dict[str, Path] = {}
    for package, folder in package_dirs().items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if all((folder / Path(*parts[:depth]) / "__init__.py").is_file() for depth in range(len(parts))):
                name = ".".join((package, *parts))
                modules[name.removesuffix(".__init__")] = path
    return modules


def installed_tree(target: Path) -> Path:
    """Copy the sources into target the way they install (cli/ as aipolicy/cli …), with
    pyproject.toml beside them, and return target."""
    shutil.copy(ROOT / "pyproject.toml", target)
    for package, folder in package_dirs().items():  # sorted: a package before its subpackages
        shutil.copytree(
            folder, target / package.replace(".", "/"), dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )  # fmt: skip
    return target


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on an installed_tree(), with the contracts in its pyproject.toml. It runs in the
    tree, so that `aipolicy` there, the namespace as it installs, is the package it reads."""
    command = [str(Path(sysconfig.get_path("scripts")) / "lint-imports"), "--no-cache"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree), "COLUMNS": "200"}
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=300)
