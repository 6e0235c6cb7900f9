"""The wheel holds the aipolicy namespace alone, with its typing marker, shipped YAML and console
script; a plain (non-editable) install finds the shipped YAML and the addon script."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

import aipolicy
from tests.layout import ROOT, package_dirs, source_modules

NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis")

CHECK = """
import pathlib, sys
import aipolicy, aipolicy.proxy_addons
assert str(pathlib.Path(aipolicy.__file__)).startswith(sys.argv[1]), aipolicy.__file__
policy = aipolicy.load_policy(aipolicy.default_policy())
assert pathlib.Path(policy.path).is_relative_to(sys.argv[1]), policy.path
assert pathlib.Path(aipolicy.proxy_addons.ENFORCER_SCRIPT).is_file()
for name in ("strict", "discovery", "allowlist"):  # `aipolicy init` templates
    aipolicy.load_policy(aipolicy.template(name))
print(policy.hash, len(policy.catalog.apps))
"""


def test_non_editable_install_finds_shipped_policies(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(target)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    policy_hash, apps = result.stdout.split()
    assert len(policy_hash) == 16 and int(apps) > 20


def _setuptools_major() -> int:
    """setuptools' major version in this environment; 0 without it (a Python 3.12 venv has none)."""
    try:
        return int(metadata.version("setuptools").split(".")[0])
    except metadata.PackageNotFoundError:
        return 0


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    # Built from a copy: setuptools leaves build/ in the source tree, and a stale build/lib would
    # put modules that no longer exist into the next wheel.
    source = tmp_path_factory.mktemp("source")
    shutil.copytree(ROOT, source, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    built = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(built), str(source)]
    if _setuptools_major() >= 77:  # the backend pyproject asks for
        command.append("--no-build-isolation")  # else pip installs it from its cache
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = built.glob("aipolicy-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def test_the_wheel_holds_the_aipolicy_namespace_alone(wheel: zipfile.ZipFile) -> None:
    top_level = {name.split("/")[0] for name in wheel.namelist()}
    assert top_level == {"aipolicy", f"aipolicy-{aipolicy.__version__}.dist-info"}


def test_the_wheel_holds_every_module_the_typing_marker_and_the_shipped_yaml(wheel: zipfile.ZipFile) -> None:
    modules = {
        f"{name.replace('.', '/')}{'/__init__' if path.name == '__init__.py' else ''}.py"
        for name, path in source_modules().items()
    }
    policies = package_dirs()["aipolicy.policies"]
    yaml = {f"aipolicy/policies/{path.relative_to(policies)}" for path in policies.glob("**/*.yaml")}
    assert {"aipolicy/policies/default.yaml", "aipolicy/policies/templates/strict.yaml"} <= yaml
    shipped = {name for name in wheel.namelist() if name.startswith("aipolicy/")}
    assert shipped == modules | yaml | {"aipolicy/py.typed"}


def test_the_wheel_installs_the_aipolicy_command(wheel: zipfile.ZipFile) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel.read(f"aipolicy-{aipolicy.__version__}.dist-info/entry_points.txt").decode())
    assert dict(entry_points["console_scripts"]) == {"aipolicy": "aipolicy.cli:main"}
