"""``aipolicy pac``: writes a PAC file a real engine (pacparser) evaluates; clear errors."""

from __future__ import annotations

from pathlib import Path

import pacparser
import pytest
from aipolicy.cli import main
from click.testing import CliRunner, Result

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIPOLICY_POLICY", raising=False)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def find_proxy(pac: Path, host: str) -> str:
    pacparser.init()
    try:
        pacparser.parse_pac_file(str(pac))
        return str(pacparser.find_proxy(f"https://{host}/", host))
    finally:
        pacparser.cleanup()


def test_writes_a_pac_file(tmp_path: Path) -> None:
    out = tmp_path / "proxy.pac"
    result = run("pac", "--proxy", "gw.example.org:3128", "--direct", "10.0.0.0/8", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert find_proxy(out, "chat.deepseek.com") == "PROXY gw.example.org:3128"
    assert find_proxy(out, "www.example.com") == "DIRECT"
    assert find_proxy(out, "10.2.3.4") == "DIRECT"


def test_all_mode_to_stdout() -> None:
    result = run("pac", "--mode", "all", "--proxy", "gw-1:3128", "--proxy", "gw-2:3128")
    assert result.exit_code == 0, result.output
    assert 'var AIPOLICY_PROXY = "PROXY gw-1:3128; PROXY gw-2:3128";' in result.stdout
    assert 'var AIPOLICY_MODE = "all";' in result.stdout


def test_ai_mode_warns_when_the_policy_decides_unnamed_hosts(tmp_path: Path) -> None:
    policy = tmp_path / "strict.yaml"
    policy.write_text("version: 1\nname: strict\nrules: []\ndefault: block\n")
    result = run("pac", "--policy", str(policy))
    assert result.exit_code == 0, result.output
    assert "bypass the proxy" in result.stderr and "--mode all" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--proxy", "gw;DIRECT"], "is not a proxy address"),
        (["--direct", "10.0.0.1/8"], "has host bits set"),
        (["--direct", "intranet"], "expected a network"),
        (["--mode", "some"], "'some' is not one of"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = run("pac", *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_a_policy_that_does_not_load(tmp_path: Path) -> None:
    result = run("pac", "--policy", str(FIXTURES / "loader" / "three_errors.yaml"))
    assert result.exit_code == 1
    assert "the policy does not load" in result.output


def test_an_unwritable_output(tmp_path: Path) -> None:
    result = run("pac", "-o", str(tmp_path / "missing" / "proxy.pac"))
    assert result.exit_code == 1
    assert "cannot write" in result.output
    assert list(tmp_path.iterdir()) == []
