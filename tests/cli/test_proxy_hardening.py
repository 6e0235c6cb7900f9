"""`aipolicy proxy` refuses unsafe start-ups before it starts mitmdump (nothing here starts a proxy)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

import aipolicy
from cli import main
from cli._hardening import blocked_vendors, check_block_global, check_ca_key, check_remote, is_loopback


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["proxy", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "proxy.example"])
def test_remote_listen_without_authentication_is_refused(host: str) -> None:
    code, output = run("--host", host)
    assert code == 2
    assert f"--host {host} listens beyond this machine without proxy authentication" in output
    assert "--allow-remote" in output and "proxyauth=@" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--syslog", "http://siem.example"], "--syslog: syslog address 'http://siem.example': scheme must be one of"),
        (["--webhook", "ftp://siem.example/x"], "expected an http:// or https:// URL"),
        (["--webhook", "https://user:tok3n@siem.example/x"], "the URL holds credentials"),
        (["--admin", "9464"], "--admin '9464': expected HOST:PORT"),
        (["--syslog-format", "leef", "--syslog", "udp://x"], "'leef' is not one of 'rfc5424', 'cef'"),
    ],
)
def test_bad_sink_and_admin_values_are_usage_errors(args: list[str], message: str) -> None:
    code, output = run(*args)
    assert code == 2 and message in output and "tok3n" not in output  # a token never echoed back


def test_loopback_names() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.9.9.9")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1") and not is_loopback("gw.example")


def test_block_global_off_is_warned() -> None:
    assert "block_global is off" in check_block_global(("--set", "block_global=false"))
    assert check_block_global(("--set", "block_global=true")) == ""


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_ca_private_key_readable_by_others_is_made_0600(tmp_path: Path) -> None:
    key = tmp_path / "mitmproxy-ca.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    key.chmod(0o644)
    message = check_ca_key(tmp_path)
    assert "was readable by others (mode 0644); made it 0600" in message
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert check_ca_key(tmp_path) == ""  # already private: nothing to say
    assert check_ca_key(tmp_path / "missing") == ""


def test_blocked_vendors_of_the_default_policy() -> None:
    vendors = blocked_vendors(aipolicy.load_policy(str(aipolicy.default_policy())))
    assert "deepseek" in vendors and "openai" not in vendors


def test_remote_listen_is_allowed_with_authentication_or_allow_remote() -> None:
    assert check_remote("0.0.0.0", False, ("--set", "proxyauth=@/etc/aipolicy/htpasswd")) == ""
    assert "WITHOUT proxy authentication" in check_remote("0.0.0.0", True, ())
    assert check_remote("127.0.0.1", False, ()) == ""
