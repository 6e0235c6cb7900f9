"""Fuzz the policy loader: any bytes as a policy file load or raise PolicyError, nothing else.

The file is written next to small copies of the test catalogue and providers
file, so rules that name catalogue apps are exercised without loading the
full shipped catalogue on every run.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run  # noqa: E402

with atheris.instrument_imports(include=["aipolicy"]):
    from aipolicy import PolicyError, load_policy

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
WORK = Path(tempfile.mkdtemp(prefix="fuzz-policy-"))
for name in ("catalog.yaml", "providers.yaml"):
    shutil.copy(FIXTURES / name, WORK / name)
POLICY = WORK / "policy.yaml"


def test_one_input(data: bytes) -> None:
    POLICY.write_bytes(data)
    try:
        load_policy(POLICY)
    except PolicyError:
        pass


if __name__ == "__main__":
    run(test_one_input)
