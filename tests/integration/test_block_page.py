"""--block-page mode: blocked HTTPS sites are decrypted (never forwarded) so the
browser can show why; clients that do not trust the CA are still blocked and
still logged exactly once."""

from __future__ import annotations

import html
import uuid

import pytest

from .clients import proxied_client
from .harness import Proxy, connect_tls

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def page_proxy(make_proxy) -> Proxy:  # type: ignore[no-untyped-def]
    return make_proxy("blockpage", block_page=True)


def test_browser_gets_block_page_over_https(page_proxy: Proxy) -> None:
    mark = "m" + uuid.uuid4().hex[:8]
    with proxied_client(page_proxy) as client:
        response = client.get(
            f"https://{mark}.chat.deepseek.com/c/new", headers={"accept": "text/html,application/xhtml+xml"}
        )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for expected in (
        "Blocked by your organisation",
        "DeepSeek",
        "deepseek",
        "NAVY-1 — Navy notice",
        "security@example.org",
        f"{mark}.chat.deepseek.com/c/new",
    ):
        assert html.escape(expected) in page, expected
    assert 'href="https://example.org/notice"' in page
    events = page_proxy.events_for(mark)
    assert len(events) == 1 and events[0]["stage"] == "request"


def test_api_client_gets_json_over_https(page_proxy: Proxy) -> None:
    mark = "m" + uuid.uuid4().hex[:8]
    with proxied_client(page_proxy) as client:
        response = client.post(f"https://{mark}.api.deepseek.com/v1/chat/completions", json={"model": "x"})
    assert response.status_code == 403
    assert "aipolicy rule deepseek" in response.json()["error"]["message"]


def test_hostile_path_is_escaped(page_proxy: Proxy) -> None:
    mark = "m" + uuid.uuid4().hex[:8]
    with proxied_client(page_proxy) as client:
        response = client.get(
            f"https://{mark}.chat.deepseek.com/%3Cscript%3Ealert(1)%3C/script%3E\"onx='y'",
            headers={"accept": "text/html"},
        )
    assert response.status_code == 403
    assert "<script>alert" not in response.text
    assert "\"onx='y'" not in response.text


def test_client_that_distrusts_the_ca_is_blocked_and_logged_once(page_proxy: Proxy) -> None:
    mark = "m" + uuid.uuid4().hex[:8]
    status, sock, error = connect_tls(page_proxy.port, f"{mark}.chat.deepseek.com:443", f"{mark}.chat.deepseek.com", [])
    assert " 200" in status  # block-page mode accepts the CONNECT ...
    assert sock is None and "CERTIFICATE_VERIFY_FAILED" in str(
        error
    )  # ... but the client refuses the proxy's certificate
    events = page_proxy.events_for(mark)
    assert len(events) == 1
    assert events[0]["stage"] == "tls" and "trust the proxy's CA" in events[0]["note"]
