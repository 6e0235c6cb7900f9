"""A PAC file from `aipolicy pac`, followed by a real headless Chromium (its own PAC engine, V8)."""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from aipolicy import load_policy
from aipolicy.formats._pac import pac_file

from .harness import Proxy, Upstream, env_without_proxy

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"


def chromium(url: str, profile: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", *flags, "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=60, env=env_without_proxy(),
    )  # fmt: skip


def test_chromium_sends_ai_hosts_to_the_proxy_and_others_direct(
    proxy: Proxy, http_upstream: Upstream, tmp_path: Path
) -> None:
    assert shutil.which(CHROMIUM), "the browser test needs Chromium (.ci/run installs it)"
    pac = tmp_path / "proxy.pac"
    pac.write_text(pac_file(load_policy(proxy.policy), [f"127.0.0.1:{proxy.port}"], "ai"))
    mark = "m" + uuid.uuid4().hex[:8]
    flags = (
        "--proxy-pac-url=data:application/x-ns-proxy-autoconfig;base64," + base64.b64encode(pac.read_bytes()).decode(),
        # direct.test is unknown to the proxy (it could not reach it); only a DIRECT request gets through
        f"--host-resolver-rules=MAP direct.test 127.0.0.1:{http_upstream.port}",
    )
    blocked = chromium(f"http://chat.deepseek.com/{mark}", tmp_path / "profile-1", *flags)
    assert "Blocked by your organisation" in blocked.stdout, blocked.stderr[-2000:]
    assert len(proxy.events_for(mark)) == 1

    direct = chromium(f"http://direct.test/{mark}-direct", tmp_path / "profile-2", *flags)
    assert direct.returncode == 0, direct.stderr[-2000:]
    hits = http_upstream.hits(f"{mark}-direct")
    assert len(hits) == 1, direct.stderr[-2000:]
