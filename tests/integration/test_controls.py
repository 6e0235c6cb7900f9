"""warn, read-only and quota through a real mitmdump: the interstitial, acknowledging it (with a
justification), the acknowledgement remembered and expiring; browsing a read-only app while its
submissions are refused; a request budget that ends in 429 with Retry-After."""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .clients import proxied_client
from .conftest import start_policy_proxy
from .harness import Proxy, Upstream, wait_until

pytestmark = pytest.mark.integration

REMEMBER_SECONDS = 3
POLICY = f"""\
version: 1
catalog: catalog.yaml
rules:
  - id: chatgpt-confirm
    action: warn
    match: {{hosts: [chatgpt.com]}}
    directive: AI-USE-2026
    warn:
      justification: required
      remember: {REMEMBER_SECONDS}s
      message: Do not paste customer data.
  - id: gateway-read-only
    action: read-only
    match: {{hosts: [gateway.example]}}
  - id: api-budget
    action: quota
    match: {{hosts: [api.openai.com]}}
    quota: {{requests: 3, per: 1h}}
  - id: download-budget
    action: quota
    match: {{hosts: [allowed.test]}}
    quota: {{bytes: 10000, per: 1h}}
default: allow
"""


@pytest.fixture(scope="module")
def controls_proxy(
    tmp_path_factory: pytest.TempPathFactory, http_upstream: Upstream, https_upstream: Upstream
) -> Iterator[Proxy]:
    proxy = start_policy_proxy(tmp_path_factory, "controls", POLICY, http_upstream, https_upstream)
    yield proxy
    proxy.stop()


@pytest.fixture
def client(controls_proxy: Proxy, upstream_cert: tuple[Path, Path, bytes]) -> Iterator[httpx.Client]:
    with proxied_client(controls_proxy, upstream_cert[0]) as client:
        yield client


HTML = {"accept": "text/html,application/xhtml+xml"}


def form_token(page: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', page)
    assert match, page
    return html.unescape(match.group(1))


def events(proxy: Proxy, marker: str, kind: str = "decision") -> list[dict[str, object]]:
    return [e for e in proxy.events() if e.get("event") == kind and marker in str(e.get("path"))]


def test_warn_then_proceed_is_remembered_then_expires(
    controls_proxy: Proxy, client: httpx.Client, https_upstream: Upstream
) -> None:
    marker = "w" + uuid.uuid4().hex[:8]
    url = f"https://chatgpt.com/{marker}/c"

    page = client.get(url, headers=HTML)
    assert page.status_code == 403
    assert "Check before you continue" in page.text and "Do not paste customer data." in page.text
    assert 'action="/.aipolicy/proceed"' in page.text and "Business justification (required)" in page.text
    api = client.get(url, headers={"accept": "application/json"})
    assert api.status_code == 403 and api.json()["error"]["code"] == "aipolicy_warn"
    assert "Open https://chatgpt.com/ in a browser and confirm" in api.json()["error"]["message"]
    assert https_upstream.hits(marker) == []

    token = form_token(page.text)
    proceed = "https://chatgpt.com/.aipolicy/proceed"
    missing = client.post(proceed, data={"token": token, "return": f"/{marker}/c"}, headers=HTML)
    assert missing.status_code == 400 and "Please give a business justification" in missing.text
    forged = client.post(proceed, data={"token": "1.abc", "return": "/", "justification": "x"}, headers=HTML)
    assert forged.status_code == 400 and "did not come from this page" in forged.text

    done = client.post(
        proceed,
        data={"token": token, "return": f"/{marker}/c", "justification": f"Ticket {marker}\nreview"},
        headers=HTML,
    )
    assert (done.status_code, done.headers["location"]) == (303, f"/{marker}/c")
    assert client.get(url, headers=HTML).status_code == 200  # remembered
    assert client.get(f"https://chatgpt.com/{marker}/api", headers={"accept": "application/json"}).status_code == 200
    assert len(https_upstream.hits(marker)) == 2

    time.sleep(REMEMBER_SECONDS + 0.5)  # the acknowledgement runs out
    assert client.get(url, headers=HTML).status_code == 403
    assert len(https_upstream.hits(marker)) == 2

    proceeded = [e for e in controls_proxy.events() if marker in str(e.get("justification"))]
    assert [(e["action"], e["path"]) for e in proceeded] == [("proceed", "/.aipolicy/proceed")]
    assert proceeded[0]["justification"] == f"Ticket {marker} review"
    assert proceeded[0]["rule"] == "chatgpt-confirm" and proceeded[0]["directive"] == "AI-USE-2026"
    logged = events(controls_proxy, marker)
    warns = [e for e in logged if e["action"] == "warn"]
    assert len(warns) == 1  # one warn event per user and app a minute, not one per request
    assert (warns[0]["rule"], warns[0]["app"], warns[0]["host"]) == ("chatgpt-confirm", "chatgpt", "chatgpt.com")


def test_open_redirect_is_refused_after_proceeding(controls_proxy: Proxy, client: httpx.Client) -> None:
    page = client.get("https://chatgpt.com/", headers=HTML)
    if page.status_code == 200:  # acknowledged by an earlier test; wait for it to run out
        time.sleep(REMEMBER_SECONDS + 0.5)
        page = client.get("https://chatgpt.com/", headers=HTML)
    done = client.post(
        "https://chatgpt.com/.aipolicy/proceed",
        data={"token": form_token(page.text), "return": "//evil.example/", "justification": "x"},
    )
    assert (done.status_code, done.headers["location"]) == (303, "/")


def test_read_only_app_can_be_read_but_not_written(
    controls_proxy: Proxy, client: httpx.Client, https_upstream: Upstream
) -> None:
    marker = "r" + uuid.uuid4().hex[:8]
    assert client.get(f"https://gateway.example/{marker}/models").status_code == 200
    refused = client.post(f"https://gateway.example/{marker}/v1/chat/completions", json={"model": "x", "messages": []})
    assert refused.status_code == 403
    assert "read-only under rule gateway-read-only" in refused.json()["error"]["message"]
    upload = client.post(f"https://gateway.example/{marker}/v1/files", files={"file": ("a.txt", b"data")})
    assert upload.status_code == 403
    assert [h["method"] for h in https_upstream.hits(marker)] == ["GET"]
    logged = controls_proxy.events_for(marker)
    assert [(e["action"], e["rule"], e.get("control")) for e in logged] == [
        ("block", "gateway-read-only", "read-only"),
        ("block", "gateway-read-only", "read-only"),
    ]


def test_request_budget_ends_in_429_with_retry_after(
    controls_proxy: Proxy, client: httpx.Client, http_upstream: Upstream
) -> None:
    marker = "q" + uuid.uuid4().hex[:8]
    url = f"http://api.openai.com/{marker}/v1/chat/completions"
    statuses = []
    for _ in range(3):
        statuses.append(client.post(url, json={"model": "gpt-4o", "messages": []}).status_code)
    over = client.post(url, json={"model": "gpt-4o", "messages": []})
    assert statuses == [200, 200, 200]
    assert over.status_code == 429
    assert 0 < int(over.headers["retry-after"]) <= 3600
    error = over.json()["error"]
    assert (error["type"], error["code"], error["rule"]) == ("rate_limit_error", "aipolicy_quota", "api-budget")
    assert len(http_upstream.hits(marker)) == 3
    assert wait_until(lambda: events(controls_proxy, marker), timeout=10)
    (event,) = events(controls_proxy, marker)
    assert (event["action"], event["rule"], event["window_requests"]) == ("quota", "api-budget", 3)
    assert event["retry_after"] == int(over.headers["retry-after"])


def test_byte_budget_counts_chunked_responses_as_they_stream(
    controls_proxy: Proxy, client: httpx.Client, http_upstream: Upstream
) -> None:
    """A response without Content-Length is streamed to the client and its bytes are counted as
    they pass, so a byte budget sees chunked downloads too."""
    marker = "b" + uuid.uuid4().hex[:8]
    first = client.get(f"http://allowed.test/{marker}/chunked/12000")
    assert first.status_code == 200 and first.content == b"x" * 12000
    assert "content-length" not in first.headers
    over = client.get(f"http://allowed.test/{marker}/chunked/10")
    assert over.status_code == 429, over.text
    assert over.json()["error"]["code"] == "aipolicy_quota"
    assert "12,000 bytes" in over.json()["error"]["message"]
    assert len(http_upstream.hits(marker)) == 1
    assert wait_until(lambda: events(controls_proxy, marker), timeout=10)
    (event,) = events(controls_proxy, marker)
    assert (event["action"], event["rule"], event["window_bytes"]) == ("quota", "download-budget", 12000)
