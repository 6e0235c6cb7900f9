"""Benchmark: DLP scanning time for a typical chat body, and throughput on 1 MB.

Prints µs per call on a 2 KB OpenAI-style chat body (JSON, scanned by walking
its string values) for ``scan_body`` and ``redact_body``, clean and with a few
findings, then MB/s of ``Scanner.scan`` on 1 MB of text and of ``scan_body``
on a 1 MB JSON body. Two detector sets: the defaults (``secret``, ``pii``,
``marking``) and the defaults plus ``pii.email``, 10 custom keywords and 2
custom regexes.

Run from the repo root:  .venv/bin/python bench/dlp.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import aipolicy

PROSE = (
    "Please review the following quarterly planning notes and summarise the main risks for the team. "
    "We moved the launch to the second week of March because the vendor needs more time for testing; "
    "the budget line for travel stays at 12,400 and the headcount plan adds two engineers in Q2. "
    "Open questions: which region hosts the staging cluster, who owns the on-call rota (see ticket 48213), "
    "and whether the 2024-03-11 deadline still holds. Keep it short, in bullet points, and flag anything "
    "that looks like a secret or personal data so we can remove it before sharing. "
)
FINDINGS = " My SSN is 123-45-6789, card 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE. "


def chat_body(size: int, extra: str = "") -> bytes:
    text = (PROSE * (size // len(PROSE) + 1))[: size - 200 - len(extra)] + extra
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": text}],
        "temperature": 0.2,
    }
    return json.dumps(body).encode()


def timed(function: Callable[[], object], calls: int, repeats: int) -> list[float]:
    function()
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        rounds.append((time.perf_counter() - start) / calls)
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer calls and repetitions")
    args = parser.parse_args()
    repeats, calls, big_calls = (3, 300, 1) if args.quick else (7, 2000, 3)

    default = aipolicy.build_detectors(["secret", "pii", "marking"])
    custom = aipolicy.build_detectors(
        ["secret", "pii", "marking", "pii.email"],
        keywords={"projects": [f"Project Codename{i}" for i in range(10)]},
        regexes={"account": r"ACCT-\d{6}", "ticket": r"\bINC\d{7}\b"},
    )
    clean = chat_body(2048)
    dirty = chat_body(2048, FINDINGS)
    megabyte_text = (PROSE * (1_048_576 // len(PROSE) + 1))[:1_048_576]
    megabyte_json = json.dumps({"messages": [{"role": "user", "content": megabyte_text[:-40]}]}).encode()
    assert default.scan_body(clean, "application/json") == {}
    assert default.scan_body(dirty, "application/json") == {
        "pii.us-ssn": 1,
        "pii.payment-card": 1,
        "secret.aws-access-key": 1,
    }

    print(f"2 KB chat body ({len(clean)} bytes JSON): µs per call, median [min-max] of {repeats} x {calls}")
    print(f"{'detectors':<34} {'call':<28} {'µs':>24}")
    for label, scanner in (("default (secret, pii, marking)", default), ("default + email + 10 kw + 2 re", custom)):
        cases: list[tuple[str, Callable[[], object]]] = [
            ("scan_body, clean", lambda s=scanner: s.scan_body(clean, "application/json")),
            ("scan_body, 3 findings", lambda s=scanner: s.scan_body(dirty, "application/json")),
            ("redact_body, 3 findings", lambda s=scanner: s.redact_body(dirty, "application/json")),
            ("scan, 2 KB of text", lambda s=scanner: s.scan(megabyte_text[:2048])),
        ]
        for name, function in cases:
            rounds = [r * 1e6 for r in timed(function, calls, repeats)]
            figure = f"{statistics.median(rounds):8.1f} [{min(rounds):.1f}-{max(rounds):.1f}]"
            print(f"{label:<34} {name:<28} {figure:>24}")

    print(f"\n1 MB: MB/s, median [min-max] of {repeats} x {big_calls}")
    for label, scanner in (("default (secret, pii, marking)", default), ("default + email + 10 kw + 2 re", custom)):
        for name, function, size in (
            ("scan, 1 MB text", lambda s=scanner: s.scan(megabyte_text), len(megabyte_text)),
            (
                "scan_body, 1 MB JSON",
                lambda s=scanner: s.scan_body(megabyte_json, "application/json"),
                len(megabyte_json),
            ),
        ):
            rates = [size / 1_048_576 / r for r in timed(function, big_calls, repeats)]
            figure = f"{statistics.median(rates):6.2f} [{min(rates):.2f}-{max(rates):.2f}]"
            print(f"{label:<34} {name:<28} {figure:>24}")


if __name__ == "__main__":
    main()
