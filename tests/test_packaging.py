"""A plain (non-editable) install finds the shipped YAML and the addon script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

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
