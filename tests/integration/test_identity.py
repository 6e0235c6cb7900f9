"""Events name the user that proxy authentication established, at every stage,
and never record the password."""

from __future__ import annotations

import uuid

import httpx
import pytest

from .clients import client_context
from .harness import Proxy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def auth_proxy(make_proxy) -> Proxy:  # type: ignore[no-untyped-def]
    return make_proxy("identity", extra=["--set", "proxyauth=alice:pw-s3cret"])


def test_user_in_request_and_tls_events(auth_proxy: Proxy, upstream_cert) -> None:  # type: ignore[no-untyped-def]
    mark = "m" + uuid.uuid4().hex[:8]
    proxy_url = f"http://alice:pw-s3cret@127.0.0.1:{auth_proxy.port}"
    with httpx.Client(
        proxy=proxy_url, verify=client_context(auth_proxy.ca, upstream_cert[0]), trust_env=False, timeout=10
    ) as client:
        assert client.get(f"http://chat.deepseek.com/{mark}").status_code == 403
        assert client.get(f"https://{mark}.chatgpt.com/").status_code == 200  # monitored, tunnelled
    events = auth_proxy.events_for(mark)
    assert sorted((e["stage"], e["action"], e["user"]) for e in events) == [
        ("request", "block", "alice"),
        ("tls", "monitor", "alice"),
    ]
    assert "pw-s3cret" not in auth_proxy.log.read_text()


def test_unauthenticated_client_is_refused(auth_proxy: Proxy) -> None:
    with httpx.Client(proxy=auth_proxy.url, trust_env=False, timeout=10) as client:
        assert client.get("http://chat.deepseek.com/").status_code == 407
