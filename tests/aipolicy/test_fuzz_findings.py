"""Inputs the fuzzers in fuzz/ found, kept as regression tests (see fuzz/README.md)."""

from __future__ import annotations

import brotli
import pytest
import zstandard

from aipolicy import build_detectors, decode_body, normalise_host


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("br", b"\x1f\x8b\x08W\x19\x00\x10\x1f\x00\x0c"),  # fuzz_bodies: brotli.error escaped
        ("br", brotli.compress(b"x" * 100)[:-2]),  # truncated stream
        ("zstd", b"garbage"),  # zstd.ZstdError escaped
    ],
)
def test_broken_brotli_and_zstd_bodies_raise_value_error(coding: str, body: bytes) -> None:
    with pytest.raises(ValueError, match="broken compressed body"):
        decode_body(body, coding, 1_000_000)


@pytest.mark.parametrize(
    ("coding", "compress"),
    [("br", brotli.compress), ("zstd", lambda data: zstandard.ZstdCompressor().compress(data))],
)
def test_brotli_and_zstd_bombs_stop_at_the_limit(coding: str, compress) -> None:  # type: ignore[no-untyped-def]
    bomb = compress(b"\0" * 50_000_000)
    assert len(bomb) < 5_000
    with pytest.raises(ValueError, match="larger than 1000000 bytes"):
        decode_body(bomb, coding, 1_000_000)


def test_nested_brackets_normalise_in_one_call() -> None:
    # fuzz_hosts: seven "[" layers outlasted the six normalisation passes,
    # so normalise_host was not idempotent
    raw = "[[.[..[...[...[....[...[...[...[\x00\x7f\x7f\x006"
    host = normalise_host(raw)
    assert normalise_host(host) == host
    assert normalise_host("[[[[[[[[deepseek.com]]]]]]]]") == "deepseek.com"


def test_runs_of_digit_groups_scan_in_linear_time_and_find_every_card() -> None:
    # "1 1 1 …" once made every digit start a window over the rest of the run
    scanner = build_detectors(["pii.payment-card"])
    assert scanner.scan("1 " * 50_000) == {}
    assert scanner.scan("444 " * 10_000) == {}
    assert scanner.scan("4111 1111 1111 1111 " * 100) == {"pii.payment-card": 100}


def test_redaction_leaves_no_match_behind_when_matches_touch() -> None:
    # fuzz_dlp: "1bob@exe.cole.1bob@exe.cole.com": the second address's local part was
    # walked back into the first match, dropped as an overlap, and found after redaction
    scanner = build_detectors(["pii.email", "pii.payment-card"])
    text = "1bob@exe.cole.1bob@exe.cole.com and x@y.org"
    redacted, findings = scanner.redact_text(text)
    assert findings == {"pii.email": 3}
    assert scanner.scan(redacted) == {}
    assert "@" not in redacted


def test_redaction_scans_again_for_what_a_replacement_exposes() -> None:
    # fuzz_dlp: "589-45-6789CUI//Y P": no word boundary before CUI until the SSN became "…]"
    scanner = build_detectors(["pii", "marking"])
    redacted, findings = scanner.redact_text("a=589-45-6789CUI//SP-X z")
    assert findings == {"pii.us-ssn": 1, "marking.cui": 1}
    assert redacted == "a=[REDACTED:pii.us-ssn][REDACTED:marking.cui] z"
    assert scanner.scan(redacted) == {}
