"""The launcher `aipolicy proxy` runs (proxy_addons/launcher.py): mitmdump with the Enforcer in its
chain. Its place in the chain shows in a real proxy: mitmproxy's proxy authentication answers first."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import aipolicy.proxy_addons
import pytest

from .harness import env_without_proxy, free_port, interrupt, wait_until
from .test_cli_proxy import accepting

pytestmark = pytest.mark.integration

AIPOLICY = str(Path(sys.executable).with_name("aipolicy"))
CREDENTIALS = "Proxy-Authorization: Basic " + base64.b64encode(b"alice:secret").decode() + "\r\n"


def ask(port: int, head: str) -> str:
    """Send one request head on a new connection; the status line of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head.encode())
        answer = b""
        while b"\r\n" not in answer and (chunk := connection.recv(4096)):
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode()


def test_proxy_authentication_answers_before_the_enforcer(tmp_path: Path) -> None:
    """proxyauth runs before the Enforcer's http_connect and requestheaders, as with `mitmdump -s`:
    an unauthenticated client gets 407 and no decision is made or logged for it."""
    port, log = free_port(), tmp_path / "events.jsonl"
    command = [AIPOLICY, "proxy", "--port", str(port), "--log", str(log), "--confdir", str(tmp_path / "conf"),
               "--", "--set", "proxyauth=alice:secret"]  # fmt: skip
    with (tmp_path / "out.txt").open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env_without_proxy())
    try:
        assert accepting(port, process), (tmp_path / "out.txt").read_text()
        anonymous, known = "m" + uuid.uuid4().hex[:8], "m" + uuid.uuid4().hex[:8]
        connect = "CONNECT chat.deepseek.com:443 HTTP/1.1\r\nHost: chat.deepseek.com:443\r\n"
        get = "GET http://chat.deepseek.com/{} HTTP/1.1\r\nHost: chat.deepseek.com\r\nConnection: close\r\n"
        assert ask(port, connect + "\r\n").startswith("HTTP/1.1 407")
        assert ask(port, get.format(anonymous) + "\r\n").startswith("HTTP/1.1 407")
        assert ask(port, connect + CREDENTIALS + "\r\n").startswith("HTTP/1.1 403")
        assert ask(port, get.format(known) + CREDENTIALS + "\r\n").startswith("HTTP/1.1 403")

        def decisions() -> list[dict[str, object]]:
            lines = log.read_text().splitlines() if log.exists() else []
            return [event for event in map(json.loads, lines) if event.get("event") == "decision"]

        assert wait_until(lambda: any(known in str(e.get("path")) for e in decisions()), timeout=10)  # the sentinel
        events = decisions()
        assert [(e["stage"], e["user"], e["rule"]) for e in events] == [
            ("connect", "alice", "deepseek-any-capacity"),
            ("request", "alice", "deepseek-any-capacity"),
        ]
        assert anonymous not in log.read_text()
    finally:
        interrupt(process)


def test_a_policy_that_does_not_load_ends_the_start_up_with_its_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    action: blok\n    match: {domains: [a.example]}\n")
    command = [sys.executable, "-m", aipolicy.proxy_addons.LAUNCHER_MODULE, "--listen-host", "127.0.0.1",
               "--listen-port", str(free_port()), "--set", f"confdir={tmp_path / 'conf'}",
               "--set", f"aipolicy_policy={bad}", "--set", f"aipolicy_log={tmp_path / 'events.jsonl'}"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env_without_proxy())
    assert result.returncode == 1
    assert result.stderr.startswith(f"mitmdump: aipolicy: policy '{bad}' does not load:\n")
    assert f"{bad}:4:13: error: rule 'x'.action is 'blok'; did you mean 'block'?" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "listening at" not in result.stdout  # it stopped before the servers started
