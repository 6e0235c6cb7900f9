"""Fuzz the DLP scanner: any body scans and redacts without an exception, a redacted
JSON body is still JSON, and redacted text has nothing left to find."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run  # noqa: E402

with atheris.instrument_imports(include=["aipolicy"]):
    from aipolicy import build_detectors, check_custom_regex

SCANNER = build_detectors(
    ["secret", "pii", "marking", "pii.email"], keywords={"falcon": ["Project Falcon"]}, regexes={"acct": r"ACCT-\d{6}"}
)
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "text/plain", ""]


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    mode = provider.ConsumeIntInRange(0, 2)
    if mode == 0:
        check_custom_regex(provider.ConsumeUnicodeNoSurrogates(60))
        return
    content_type = provider.PickValueInList(CONTENT_TYPES)
    body = provider.ConsumeBytes(provider.remaining_bytes())
    SCANNER.scan_body(body, content_type)
    redacted, _ = SCANNER.redact_body(body, content_type)
    if content_type == "application/json":
        try:
            json.loads(body)
        except (ValueError, RecursionError):
            return
        json.loads(redacted)  # valid JSON in, valid JSON out
    elif content_type == "text/plain":
        assert SCANNER.scan(redacted.decode("utf-8", "surrogateescape")) == {}, body


if __name__ == "__main__":
    run(test_one_input)
