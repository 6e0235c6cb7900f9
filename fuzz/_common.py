"""Shared set-up for the atheris harnesses: run one with a time bound and a seed corpus.

    .venv/bin/python fuzz/fuzz_dlp.py -max_total_time=150 -timeout=10 fuzz/corpus/dlp

Each harness calls ``run(test_one_input, instrumented_modules)``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris


def run(test_one_input: Callable[[bytes], None]) -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
