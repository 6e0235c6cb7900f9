"""`aipolicy proxy`, the quick-start command, with the shipped default policy."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from .harness import env_without_proxy, free_port, interrupt, wait_until

pytestmark = pytest.mark.integration

AIPOLICY = str(Path(sys.executable).with_name("aipolicy"))


def accepting(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> bool:
    """Wait until the port accepts a connection; False if the process exits first or time runs out."""

    def up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return process.poll() is not None

    return bool(wait_until(up, timeout=timeout)) and process.poll() is None


def test_default_policy_through_aipolicy_proxy(tmp_path: Path, http_upstream) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    log = tmp_path / "events.jsonl"
    output = (tmp_path / "out.txt").open("wb")
    process = subprocess.Popen(
        [AIPOLICY, "proxy", "--port", str(port), "--log", str(log), "--confdir", str(tmp_path / "conf"), "--proxy-id", "cli-test"],
        stdout=output, stderr=subprocess.STDOUT, env=env_without_proxy(), cwd=tmp_path,
    )  # fmt: skip
    try:
        assert accepting(port, process), (tmp_path / "out.txt").read_text()
        mark = "m" + uuid.uuid4().hex[:8]
        with httpx.Client(proxy=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client:
            deepseek = client.get(f"http://chat.deepseek.com/{mark}")
            weights = client.get(f"http://huggingface.co/deepseek-ai/DeepSeek-R1/resolve/main/{mark}")
            qwen = client.get(f"http://chat.qwen.ai/{mark}")
            other = client.get(f"http://127.0.0.1:{http_upstream.port}/{mark}")
        assert deepseek.status_code == weights.status_code == qwen.status_code == 403
        assert deepseek.json()["error"]["rule"] == "deepseek-any-capacity"
        assert qwen.json()["error"]["rule"] == "prc-generative-ai"
        assert other.status_code == 200 and len(http_upstream.hits(mark)) == 1
        assert wait_until(lambda: log.exists() and log.read_text().count(mark) == 3, timeout=10)
        assert '"proxy":"cli-test"' in log.read_text()
    finally:
        interrupt(process)
        output.close()
    assert "enforcing" in (tmp_path / "out.txt").read_text()


def test_invalid_policy_is_refused_before_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    action: blok\n    match: {domains: [a.example]}\n")
    result = subprocess.run(
        [AIPOLICY, "proxy", "--policy", str(bad), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"{bad}:4:13: error: rule 'x'.action is 'blok'; did you mean 'block'?" in result.stderr
    assert "Traceback" not in result.stderr
