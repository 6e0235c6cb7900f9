"""`aipolicy proxy` with a syslog sink and the admin listener, as an admin would start it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from mitmproxy.certs import CertStore

from tests.siem import parse_rfc5424

from .harness import env_without_proxy, free_port, interrupt, wait_until
from .receivers import SyslogReceiver

pytestmark = pytest.mark.integration

AIPOLICY = str(Path(sys.executable).with_name("aipolicy"))


def test_aipolicy_proxy_with_syslog_and_admin(tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    receiver = SyslogReceiver("udp")
    confdir = tmp_path / "conf"
    confdir.mkdir()
    CertStore.from_store(confdir, "mitmproxy", 2048)  # a real CA, as a first start makes it
    (confdir / "mitmproxy-ca.pem").chmod(0o644)
    output = (tmp_path / "out.txt").open("wb")
    command = [
        AIPOLICY, "proxy", "--port", str(port), "--log", str(tmp_path / "events.jsonl"), "--confdir", str(confdir),
        "--syslog", receiver.url, "--admin", f"127.0.0.1:{admin}", "--proxy-id", "cli-sinks",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env_without_proxy(), cwd=tmp_path)
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{admin}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return process.poll() is not None

        assert wait_until(healthy, timeout=30) and process.poll() is None, (tmp_path / "out.txt").read_text()
        mark = "m" + uuid.uuid4().hex[:8]
        with httpx.Client(proxy=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client:
            assert client.get(f"http://chat.deepseek.com/{mark}").status_code == 403
        assert wait_until(lambda: receiver.matching(mark), timeout=10)
        record = parse_rfc5424(receiver.matching(mark)[0])
        assert record.hostname == "cli-sinks" and record.data["aipolicy@32473"]["rule"] == "deepseek-any-capacity"
        metrics = httpx.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
        assert 'aipolicy_decisions_total{action="block",rule="deepseek-any-capacity"} 1.0' in metrics
        assert 'aipolicy_sink_sent_total{sink="syslog"}' in metrics
    finally:
        interrupt(process)
        output.close()
        receiver.stop()
    summary = (tmp_path / "out.txt").read_text()
    assert "blocked vendors: " in summary and "deepseek" in summary
    assert f"SIEM sinks: syslog {receiver.url} (rfc5424)" in summary
    assert f"admin (/healthz, /metrics): http://127.0.0.1:{admin}" in summary
    assert "was readable by others (mode 0644); made it 0600" in summary
    assert (confdir / "mitmproxy-ca.pem").stat().st_mode & 0o777 == 0o600
