"""The OpenAI Python SDK, pointed through the proxy at a gateway that serves a
banned model, raises an error whose message names the policy."""

from __future__ import annotations

import uuid

import openai
import pytest

from .clients import proxied_client

pytestmark = pytest.mark.integration


def sdk_client(proxy, marker: str) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    http_client = proxied_client(proxy)
    return openai.OpenAI(
        base_url=f"https://gateway.example/{marker}/v1",
        api_key="sk-test-not-a-secret",
        http_client=http_client,
        max_retries=0,
    )


def test_banned_model_raises_an_error_naming_the_policy(proxy, https_upstream) -> None:  # type: ignore[no-untyped-def]
    marker = "m" + uuid.uuid4().hex[:8]
    with sdk_client(proxy, marker) as client, pytest.raises(openai.PermissionDeniedError) as raised:
        client.chat.completions.create(model="deepseek/deepseek-r1", messages=[{"role": "user", "content": "hello"}])
    assert raised.value.status_code == 403
    assert "Blocked by your organisation's AI policy (aipolicy rule deepseek)" in str(raised.value)
    assert https_upstream.hits(marker) == []
    events = proxy.events_for(marker)
    assert [(e["action"], e["rule"], e["model"]) for e in events] == [("block", "deepseek", "deepseek/deepseek-r1")]
    assert "sk-test-not-a-secret" not in proxy.log.read_text()


def test_other_model_on_the_same_gateway_passes(proxy, https_upstream) -> None:  # type: ignore[no-untyped-def]
    marker = "m" + uuid.uuid4().hex[:8]
    with sdk_client(proxy, marker) as client:
        response = client.chat.completions.with_raw_response.create(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "compare deepseek-r1 with you"}]
        )
    assert response.status_code == 200
    assert len(https_upstream.hits(marker)) == 1
    assert proxy.events_for(marker, timeout=1) == []
