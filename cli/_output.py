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
    if os.path.exists(path) and not os.path.isfile(path):  # /dev/null, a FIFO: no atomic replace
        try:
            with open(path, "wb") as file:
                file.write(data)
        except OSError as error:
            raise click.ClickException(f"cannot write {path}: {error.strerror or error}") from None
        return
    directory = os.path.dirname(os.path.abspath(path))
    temporary = ""
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".aipolicy-")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as error:
        if temporary and os.path.exists(temporary):
            os.unlink(temporary)
        raise click.ClickException(f"cannot write {path}: {error.strerror or error}") from None
