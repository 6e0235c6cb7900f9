"""Fuzz body decoding: decode_body returns bytes within the limit or raises ValueError."""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run  # noqa: E402

with atheris.instrument_imports(include=["aipolicy"]):
    from aipolicy import decode_body

CODINGS = ["gzip", "deflate", "br", "zstd", "identity", "x-gzip", "gzip, br", "deflate, gzip", "bogus", ""]


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    coding = provider.PickValueInList(CODINGS)
    limit = provider.ConsumeIntInRange(0, 1 << 20)
    body = provider.ConsumeBytes(provider.remaining_bytes())
    try:
        decoded = decode_body(body, coding, limit)
    except ValueError:
        return
    assert isinstance(decoded, bytes)
    assert len(decoded) <= max(limit, len(body)), (coding, limit, len(decoded))


if __name__ == "__main__":
    run(test_one_input)
