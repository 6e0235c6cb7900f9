#!/usr/bin/env python3
"""Bootstrap and run aipolicy from a checkout, with nothing but Python 3.11+.

    python3 dev.py proxy [ARGS…]   run the enforcing proxy with the shipped default policy
    python3 dev.py test [PYTEST-ARGS…]   run the whole test suite

Creates ./.venv on first use, installs aipolicy (editable) and what it needs,
and reinstalls when pyproject.toml changes. `test` also makes sure curl and
Chromium are present (the integration tests drive them), installing them with
apt-get when it can.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
SYSTEM_TOOLS = {"curl": "curl", "chromium": "chromium"}


def say(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr, flush=True)


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on whatever python3 the user has
        sys.exit(f"dev.py: aipolicy needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    stamp = VENV / ".aipolicy-installed"
    project = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    installed = stamp.read_text().split() if stamp.exists() else []
    if PYTHON.exists() and installed[:1] == [project] and (not extras or extras in installed[1:]):
        return  # up to date (an environment with the test extras serves the proxy too)
    if not PYTHON.exists():
        say(f"creating a virtual environment in {VENV}")
        venv.create(VENV, with_pip=True)
    say("installing aipolicy and its dependencies (first run only)")
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "-e", f".{extras}"], check=True, cwd=ROOT)
    subprocess.run([str(PYTHON), "-m", "pip", "check"], check=True)
    kept = installed[1:] if installed[:1] == [project] else []
    stamp.write_text(" ".join([project, *kept, extras]))


def ensure_system_tools() -> None:
    missing = [package for tool, package in SYSTEM_TOOLS.items() if not shutil.which(tool)]
    if not missing:
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        say(f"installing {', '.join(missing)} with apt-get (the integration tests use them)")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL)
        return
    sys.exit(
        f"dev.py: the integration tests need {', '.join(missing)}; install them (e.g. apt-get install {' '.join(missing)}) and run again"
    )


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "proxy":
        ensure_venv("")
        os.execv(str(BIN / "aipolicy"), [str(BIN / "aipolicy"), "proxy", *args])
    if command == "test":
        ensure_venv("[test]")
        ensure_system_tools()
        return subprocess.run([str(PYTHON), "-m", "pytest", *args], cwd=ROOT).returncode
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
