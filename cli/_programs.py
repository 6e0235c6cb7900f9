"""The mitmproxy programs the CLI starts, from the Python environment aipolicy runs in.

``aipolicy proxy`` runs the launcher (``python -m aipolicy.proxy_addons.launcher``: mitmdump
with the Enforcer in its addon chain) in this very interpreter; ``aipolicy ca export --create``
runs the ``mitmdump`` program once. Neither imports mitmproxy into the CLI.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import click
from aipolicy.proxy_addons import LAUNCHER_MODULE

NOT_INSTALLED = "install mitmproxy into this environment (pip install aipolicy brings it)"


def find_mitmdump() -> str:
    """The mitmdump program beside this Python, else the first on PATH."""
    beside = Path(sys.executable).with_name("mitmdump")
    if beside.exists():
        return str(beside)
    found = shutil.which("mitmdump")
    if not found:
        raise click.ClickException(f"mitmdump not found: {NOT_INSTALLED}")
    return found


def launcher_command(mitmdump_arguments: list[str], reuse_port: bool = False) -> list[str]:
    """The command that runs mitmdump with the Enforcer built in; with reuse_port, listening with SO_REUSEPORT."""
    if importlib.util.find_spec("mitmproxy") is None:  # finds the package without importing it
        raise click.ClickException(f"mitmproxy is not installed in {sys.executable}: {NOT_INSTALLED}")
    return [sys.executable, "-m", LAUNCHER_MODULE, *(["--reuse-port"] if reuse_port else []), *mitmdump_arguments]
