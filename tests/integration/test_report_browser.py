"""The compliance report as a person sees it: a real headless Chromium opens the file offline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from aipolicy.cli import main
from click.testing import CliRunner

from tests.aipolicy.test_report import FIXTURE, P1, P2

from .harness import env_without_proxy

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"


def chromium(url: str, profile: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            # offline: any attempt to load something from elsewhere fails (and would show as an error)
            "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *flags, url,
        ],
        capture_output=True, text=True, timeout=60, env=env_without_proxy(),
    )  # fmt: skip


def test_chromium_renders_report_offline(tmp_path: Path) -> None:
    assert shutil.which(CHROMIUM), "the browser test needs Chromium (.ci/run installs it)"
    page = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--html", str(page), "--log", FIXTURE])
    assert result.exit_code == 0, result.output
    url = page.as_uri()

    dom = chromium(url, tmp_path / "profile-dom", "--dump-dom")
    assert 'id="total-attempts">10<' in dom.stdout, dom.stderr[-2000:]
    assert 'id="total-blocked">6<' in dom.stdout and 'id="total-evasion">3<' in dom.stdout
    assert 'id="warned">2<' in dom.stdout and 'id="proceeded">1<' in dom.stdout
    assert P1 in dom.stdout and P2 in dom.stdout
    assert (
        dom.stdout.count('<rect class="bar"') == 4 + 6 + 4 + 4 + 2
    )  # days 11-01..11-04, users, apps, vendors, directives
    # The hostile user name is text in the DOM, never an element.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom.stdout
    assert not re.search(r"<script", dom.stdout, re.IGNORECASE)
    assert "CONSOLE" not in dom.stderr, dom.stderr  # Chromium prints page console messages with this tag
    assert "Refused to" not in dom.stderr, dom.stderr  # a Content-Security-Policy violation

    screenshot = tmp_path / "report.png"
    shot = chromium(url, tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=1000,2400")
    assert screenshot.exists(), shot.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20000
    assert "CONSOLE" not in shot.stderr, shot.stderr


def test_chromium_prints_report_to_pdf(tmp_path: Path) -> None:
    """The print stylesheet applies and the page prints (what a compliance officer files)."""
    page = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--html", str(page), "--log", FIXTURE])
    assert result.exit_code == 0, result.output
    pdf = tmp_path / "report.pdf"
    printed = chromium(page.as_uri(), tmp_path / "profile-pdf", f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert pdf.exists(), printed.stderr[-2000:]
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 2
    assert "CONSOLE" not in printed.stderr, printed.stderr
