"""Bodies a rule must read, with mitmproxy told to stream large bodies: mitmproxy would send such a
body upstream before the addon saw it, so the enforcer turns ``stream_large_bodies`` off (it
streams every body no rule needs itself) and the model rule still decides."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .clients import proxied_client
from .harness import Proxy, Upstream, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def streaming_proxy(make_proxy: Callable[..., Proxy]) -> Proxy:
    return make_proxy("stream-large", extra=["--set", "stream_large_bodies=1k"])


def chat(model: str, padding: int) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "x" * padding}]}).encode()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_large_body_is_still_read_before_it_is_sent(
    streaming_proxy: Proxy, https_upstream: Upstream, upstream_cert: tuple[Path, Path, bytes], chunked: bool
) -> None:
    marker = "s" + uuid.uuid4().hex[:8]
    url = f"https://gateway.example/api/v1/{marker}/chat/completions"  # a provider serving other vendors' models
    body = chat("deepseek/deepseek-r1", 20_000)

    def parts() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    with proxied_client(streaming_proxy, upstream_cert[0]) as client:
        refused = client.post(url, content=parts() if chunked else body, headers={"content-type": "application/json"})
        allowed = client.post(url, content=chat("gpt-4o", 20_000), headers={"content-type": "application/json"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["rule"] == "deepseek"
    assert allowed.status_code == 200
    assert [h["body"][:30] for h in https_upstream.hits(marker)] == [chat("gpt-4o", 0).decode()[:30]]
    assert wait_until(lambda: streaming_proxy.events_for(marker))
    actions = [(e["action"], e.get("model")) for e in streaming_proxy.events_for(marker)]
    assert ("block", "deepseek/deepseek-r1") in actions


def test_stream_large_bodies_is_reported_as_turned_off(streaming_proxy: Proxy) -> None:
    assert wait_until(lambda: "stream_large_bodies" in streaming_proxy.stderr_text())
    assert "turned off" in streaming_proxy.stderr_text()


def test_an_upload_to_a_host_no_rule_reads_still_streams(streaming_proxy: Proxy, http_upstream: Upstream) -> None:
    marker = "u" + uuid.uuid4().hex[:8]
    with proxied_client(streaming_proxy) as client:
        response = client.post(f"http://allowed.test/{marker}/upload", content=b"y" * 600_000)
    assert response.status_code == 200
    (hit,) = http_upstream.hits(marker)
    assert len(hit["raw"]) == 600_000
