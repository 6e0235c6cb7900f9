"""The ``aipolicy`` command line: a thin click face over the core."""

from ._main import main

__all__ = ["main"]
