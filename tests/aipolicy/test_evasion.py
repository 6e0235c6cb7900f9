from __future__ import annotations

from pathlib import Path

import pytest

import aipolicy
from aipolicy import evasion_signals

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def policy() -> aipolicy.Policy:
    return aipolicy.load_policy(FIXTURES / "policy.yaml")


@pytest.mark.parametrize(
    ("target", "sni", "host", "expected"),
    [
        ("203.0.113.5", "chat.deepseek.com", "", ["ip-target-with-ai-sni"]),
        ("[2001:db8::1]", "chatgpt.com", "", ["ip-target-with-ai-sni"]),
        ("203.0.113.5", "www.example.org", "", []),  # an IP target with a non-AI name is common
        ("chat.deepseek.com", "chat.deepseek.com", "", []),
        ("", "cdn.example.net", "chat.deepseek.com", ["sni-host-mismatch"]),  # domain fronting
        ("", "chatgpt.com", "api.openai.com", []),  # the same app: HTTP/2 connection reuse
        ("", "chatgpt.com", "chat.deepseek.com", ["sni-host-mismatch"]),
        ("", "www.example.org", "static.example.org", []),  # not AI-related
        ("", "chatgpt.com", "127.0.0.1:8080", []),
        ("", "CHATGPT.COM.", "chatgpt.com", []),
    ],
)
def test_evasion_signals(policy, target: str, sni: str, host: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert evasion_signals(policy, target, sni, host) == expected


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("doh.example",), ["dns-over-https"]),
        (("203.0.113.9", "DOH.EXAMPLE."), ["dns-over-https"]),
        (("www.doh.example",), []),  # the catalogue lists the exact host only
        (("chatgpt.com", ""), []),
        ((), []),
    ],
)
def test_dns_over_https(policy, names: tuple[str, ...], expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert evasion_signals(policy, "", "", "", names) == expected
