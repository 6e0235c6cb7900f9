"""Fuzz host and path normalisation: never raise (split_url: ValueError only), and stay stable."""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run  # noqa: E402

with atheris.instrument_imports(include=["aipolicy"]):
    from aipolicy import normalise_host, normalise_path, split_url


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    text = provider.ConsumeUnicodeNoSurrogates(300)
    host = normalise_host(text)
    assert normalise_host(host) == host, (text, host)
    path = normalise_path(text)
    assert path.startswith("/"), (text, path)
    try:
        split_url(text)
    except ValueError:
        pass


if __name__ == "__main__":
    run(test_one_input)
