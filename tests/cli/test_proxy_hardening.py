"""`aipolicy proxy` refuses unsafe start-ups before it starts mitmdump (nothing here starts a proxy)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from aipolicy.cli import main
from aipolicy.cli._hardening import (
    blocked_vendors,
    check_admin,
    check_block_global,
    check_ca_key,
    check_public_key_ca,
    check_remote,
    is_loopback,
)
from click.testing import CliRunner

import aipolicy


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


@pytest.mark.parametrize(
    ("mitmdump_args", "named"),
    [
        (["--set", "emudhra=true"], "-- --set emudhra=true"),
        (["--set", "emudhra"], "-- --set emudhra"),  # a bool with no value is true
        (["--set", "emudhra_old=toggle"], "-- --set emudhra_old=toggle"),
        (["--set=emudhra_old=true"], "-- --set emudhra_old=true"),
        (["--emudhra"], "-- --emudhra"),
        (["--emudhra-old"], "-- --emudhra-old"),
        (["--set", "proxyauth=@/etc/aipolicy/htpasswd", "--set", "emudhra=true"], "-- --set emudhra=true"),
    ],
)
def test_a_public_ca_key_is_refused(mitmdump_args: list[str], named: str, tmp_path: Path) -> None:
    code, output = run("--confdir", str(tmp_path), "--", *mitmdump_args)
    assert code == 2, output
    assert f"Error: {named}: mitmproxy's emudhra options sign" in output
    assert "compromised intermediate CA key, which is public" in output and "Traceback" not in output


def test_a_public_ca_key_in_the_mitmproxy_config_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("termlog_verbosity: warn\nemudhra_old: true\n")
    code, output = run("--confdir", str(tmp_path))
    assert code == 2 and f"emudhra_old: true in {tmp_path / 'config.yaml'}" in output


def test_emudhra_turned_off_or_absent_is_accepted(tmp_path: Path) -> None:
    check_public_key_ca(("--set", "emudhra=false", "--no-emudhra-old", "--set", "ssl_insecure=false"), tmp_path)
    (tmp_path / "config.yaml").write_text("emudhra: false\n")
    check_public_key_ca((), tmp_path)
    (tmp_path / "config.yaml").write_text("{not yaml: [\n")
    check_public_key_ca((), tmp_path)  # mitmdump reports a broken config file itself


def test_an_admin_listener_on_every_interface_is_warned() -> None:
    for address in ("0.0.0.0:9464", "[::]:9464", "9.9.9.9:9464", "gw.example:9464"):
        assert "without authentication beyond this machine" in check_admin(address), address
        assert "limits who reaches port 9464" in check_admin(address)
    for address in ("off", "127.0.0.1:9464", "[::1]:9464", "localhost:9464", "10.0.0.5:9464", "[fd00::5]:9464"):
        assert check_admin(address) == "", address
