"""Benchmark: signing, verifying and unpacking policy bundles.

For the shipped default policy and for a policy whose list file holds N hosts
(default 1,000,000), prints the files' size, the bundle's size (base64 JSON)
and the median wall time of ``policy_files`` + ``sign_bundle``, of
``verify_bundle`` (signature and every SHA-256) and of unpacking into a fresh
directory. The proxy verifies and unpacks in a worker thread, off the event loop.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import aipolicy
from aipolicy.distribution._bundle import unpack_fresh


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, policy_path: Path, key: Ed25519PrivateKey, repeats: int) -> None:
    policy = aipolicy.load_policy(policy_path)
    files = aipolicy.policy_files(policy)
    data = aipolicy.sign_bundle(files, key)
    bundle = aipolicy.verify_bundle(data, key.public_key())
    sign = median_seconds(lambda: aipolicy.sign_bundle(aipolicy.policy_files(policy), key), repeats)
    verify = median_seconds(lambda: aipolicy.verify_bundle(data, key.public_key()), repeats)

    def unpack() -> None:
        with tempfile.TemporaryDirectory() as directory:
            unpack_fresh(bundle, directory)

    unpacking = median_seconds(unpack, repeats)
    print(
        f"{name}: files {sum(map(len, files.values())):,} B, bundle {len(data):,} B; "
        f"sign {sign * 1000:.1f} ms, verify {verify * 1000:.1f} ms, unpack {unpacking * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1_000_000, help="entries in the big list file")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure (the median is shown)")
    options = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    measure("default policy", aipolicy.default_policy(), key, options.repeats)
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        (base / "hosts.txt").write_text("".join(f"host{i}.example.net\n" for i in range(options.hosts)))
        (base / "policy.yaml").write_text(
            "version: 1\nlists:\n  big: {file: hosts.txt}\nrules:\n  - {id: big, action: block, match: {lists: [big]}}\n"
        )
        measure(f"{options.hosts:,}-host list", base / "policy.yaml", key, options.repeats)


if __name__ == "__main__":
    main()
