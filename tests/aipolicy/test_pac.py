"""PAC files, evaluated by a real PAC engine (pacparser: SpiderMonkey with the PAC functions)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pacparser
import pytest

import aipolicy
from aipolicy.formats._pac import ai_names, check_proxy_address, pac_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PROXY = "PROXY gw.example.org:3128"
DIRECT = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


@pytest.fixture(scope="module")
def fixture_policy() -> aipolicy.Policy:
    return aipolicy.load_policy(FIXTURES / "policy.yaml")


class Engine:
    def __init__(self, script: str) -> None:
        pacparser.init()
        pacparser.enable_microsoft_extensions()  # isInNetEx, as Chromium and Windows provide
        pacparser.parse_pac_string(script)

    def __call__(self, host: str, scheme: str = "https") -> str:
        url_host = f"[{host}]" if ":" in host else host
        return str(pacparser.find_proxy(f"{scheme}://{url_host}/path", host))


@pytest.fixture
def engine() -> Iterator[type[Engine]]:
    yield Engine
    pacparser.cleanup()


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("chat.deepseek.com", PROXY),  # a catalogue app, subdomain of a listed domain
        ("deepseek.com", PROXY),
        ("CHAT.DeepSeek.com.", PROXY),  # case and a trailing dot
        ("blocked.example", PROXY),  # a list entry: itself and below
        ("a.b.blocked.example", PROXY),
        ("x.sub.example", PROXY),  # "*.sub.example": subdomains only
        ("sub.example", "DIRECT"),
        ("exact.example", PROXY),  # hosts: [exact.example] is that host only
        ("www.exact.example", "DIRECT"),
        ("notdeepseek.com", "DIRECT"),  # a suffix, not a label suffix
        ("www.example.com", "DIRECT"),
        ("203.0.113.9", PROXY),  # a bare address may carry an AI app's SNI
        ("10.1.2.3", "DIRECT"),  # --direct 10.0.0.0/8
        ("127.0.0.1", "DIRECT"),
        ("intranet", "DIRECT"),  # a plain host name
        ("localhost", "DIRECT"),
        ("fd00::1", "DIRECT"),  # --direct fd00::/8
        ("2001:db8::1", PROXY),
        ("::1", "DIRECT"),
    ],
)
def test_ai_mode(engine: type[Engine], fixture_policy: aipolicy.Policy, host: str, expected: str) -> None:
    find = engine(pac_file(fixture_policy, ["gw.example.org:3128"], "ai", DIRECT))
    assert find(host) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("chat.deepseek.com", PROXY),
        ("www.example.com", PROXY),  # everything goes through the proxy
        ("10.1.2.3", "DIRECT"),
        ("intranet", "DIRECT"),
        ("localhost", "DIRECT"),  # resolves to 127.0.0.1 and is a loopback name anyway
    ],
)
def test_all_mode(engine: type[Engine], fixture_policy: aipolicy.Policy, host: str, expected: str) -> None:
    find = engine(pac_file(fixture_policy, ["gw.example.org:3128"], "all", DIRECT))
    assert find(host) == expected


def test_all_mode_resolves_names_into_the_direct_networks(
    engine: type[Engine], fixture_policy: aipolicy.Policy
) -> None:
    """An internal name is direct when it resolves into a --direct network (here: localhost.localdomain-style
    names are avoided; 127.0.0.0/8 itself is direct, so a name that resolves there shows the resolution)."""
    find = engine(pac_file(fixture_policy, ["gw.example.org:3128"], "all", [ipaddress.ip_network("192.0.2.0/24")]))
    assert find("localhost.") == "DIRECT"
    assert find("unresolvable.invalid") == PROXY


def test_several_proxies_are_tried_in_order_without_direct(
    engine: type[Engine], fixture_policy: aipolicy.Policy
) -> None:
    find = engine(pac_file(fixture_policy, ["gw-1.example.org:3128", "[2001:db8::5]:3128"], "ai"))
    assert find("chat.deepseek.com") == "PROXY gw-1.example.org:3128; PROXY [2001:db8::5]:3128"


def test_the_shipped_policy_covers_the_catalogue_and_the_model_providers(engine: type[Engine]) -> None:
    policy = aipolicy.load_policy(aipolicy.default_policy())
    names = ai_names(policy)
    assert len(names) > 100
    find = engine(pac_file(policy, ["gw.example.org:3128"], "ai"))
    for host in ("chat.deepseek.com", "chatgpt.com", "api.openai.com", "openrouter.ai", "huggingface.co"):
        assert find(host) == PROXY, host
    assert find("bedrock-runtime.us-east-1.amazonaws.com") == PROXY
    assert find("s3.us-east-1.amazonaws.com") == "DIRECT"


def test_the_name_table_is_one_object_not_a_chain_of_ifs(fixture_policy: aipolicy.Policy) -> None:
    script = pac_file(fixture_policy, ["gw.example.org:3128"], "ai")
    assert script.count("if (") < 20
    assert '"deepseek.com":3' in script
    assert '"exact.example":1' in script and '"sub.example":2' in script


@pytest.mark.parametrize("text", ["proxy", "proxy:0", "proxy:70000", "a;DIRECT:1", 'a"b:1', "[nothex]:1", "::1:80"])
def test_bad_proxy_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a proxy address; expected HOST:PORT"):
        check_proxy_address(text)


def test_unknown_mode(fixture_policy: aipolicy.Policy) -> None:
    with pytest.raises(ValueError, match="unknown PAC mode 'some'"):
        pac_file(fixture_policy, ["p:1"], "some")
