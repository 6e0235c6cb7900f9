"""The reloader's option: aipolicy_reload reads the duration grammar; a bad value is refused and
the last good one stays."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest
from mitmproxy import exceptions

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # proxyauth's ldap3 uses deprecated pyasn1 names
    from mitmproxy.test import taddons

from aipolicy.proxy_addons.enforcer import Enforcer

from .test_feed import declare_proxyserver_options, detach_logging

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def configured(tmp_path: Path, *values: str) -> tuple[float, list[str]]:
    """Configure aipolicy_reload with each value in turn: (the interval in force, the refusals)."""
    refusals: list[str] = []

    async def main() -> float:
        enforcer = Enforcer()
        with taddons.context(enforcer) as tctx:
            declare_proxyserver_options(tctx)
            policy, log = str(FIXTURES / "policy.yaml"), str(tmp_path / "events.jsonl")
            tctx.configure(enforcer, aipolicy_policy=policy, aipolicy_log=log)
            for value in values:
                try:
                    tctx.configure(enforcer, aipolicy_reload=value)
                except exceptions.OptionsError as error:
                    refusals.append(str(error))
            await enforcer.done()
            detach_logging(tctx)
            return enforcer.reloader.interval

    return asyncio.run(main()), refusals


@pytest.mark.parametrize(
    ("written", "seconds"), [("0", 0.0), ("2", 2.0), ("0.3", 0.3), ("1m", 60.0), ("1h30m", 5400.0)]
)
def test_reload_interval_in_the_duration_grammar(tmp_path: Path, written: str, seconds: float) -> None:
    interval, refusals = configured(tmp_path, written)
    assert refusals == [] and interval == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("written", "message"),
    [("soon", "'soon' is not a duration"), ("nan", "'nan' is not a duration"), ("-1", "a duration cannot be negative"),
     ("1e3", "'1e3' is not a duration"), ("inf", "'inf' is not a duration")],
)  # fmt: skip
def test_a_bad_reload_interval_is_refused_and_the_last_good_one_stays(
    tmp_path: Path, written: str, message: str
) -> None:
    interval, refusals = configured(tmp_path, "5", written)
    assert interval == 5.0
    assert len(refusals) == 1 and refusals[0].startswith(f"aipolicy_reload: {message}"), refusals
