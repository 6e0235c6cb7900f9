"""Writing a generated file: to stdout, or atomically to a path."""

from __future__ import annotations

import os
import sys
import tempfile

import click


def write_output(path: str, content: str | bytes) -> None:
    """Write ``content`` to ``path`` ('-': stdout) so that readers never see half a file."""
    data = content.encode() if isinstance(content, str) else content
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".aipolicy-")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as error:
        raise click.ClickException(f"cannot write {path}: {error.strerror or error}") from None
