"""The block page as a person sees it: a real headless Chromium through the proxy."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from .harness import Proxy, env_without_proxy

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"


def chromium(proxy: Proxy, url: str, profile: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--proxy-server={proxy.url}", "--enable-logging=stderr", "--v=0",
            *flags, url,
        ],
        capture_output=True, text=True, timeout=60, env=env_without_proxy(),
    )  # fmt: skip


def test_chromium_renders_block_page_without_console_errors(proxy: Proxy, tmp_path: Path) -> None:
    assert shutil.which(CHROMIUM), "the browser test needs Chromium (.ci/run installs it)"
    mark = "m" + uuid.uuid4().hex[:8]
    url = f"http://chat.deepseek.com/{mark}?q=%3Cscript%3Ealert(1)%3C/script%3E"
    dom = chromium(proxy, url, tmp_path / "profile-dom", "--dump-dom")
    assert "Blocked by your organisation" in dom.stdout, dom.stderr[-2000:]
    assert "NAVY-1" in dom.stdout and "DeepSeek" in dom.stdout
    assert "<script>alert" not in dom.stdout
    assert "CONSOLE" not in dom.stderr, dom.stderr  # Chromium prints page console messages with this tag

    screenshot = tmp_path / "block-page.png"
    shot = chromium(proxy, url, tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=900,700")
    assert screenshot.exists(), shot.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 5000
    assert len(proxy.events_for(mark)) == 2  # one attempt per page load
