"""An exception inside a hook must not let traffic through: it is blocked and logged."""

from __future__ import annotations

import uuid

import httpx
import pytest

from .harness import HERE, Proxy, connect_tls

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def faulty_proxy(make_proxy) -> Proxy:  # type: ignore[no-untyped-def]
    return make_proxy("faults", extra=["-s", str(HERE / "fault_addon.py")])


def test_error_in_request_hook_blocks_and_logs(faulty_proxy: Proxy, http_upstream) -> None:  # type: ignore[no-untyped-def]
    mark = "m" + uuid.uuid4().hex[:8]
    with httpx.Client(proxy=faulty_proxy.url, trust_env=False, timeout=10) as client:
        response = client.get(f"http://127.0.0.1:{http_upstream.port}/{mark}", headers={"host": "x.fault.test"})
    assert response.status_code == 403
    assert response.json()["error"]["rule"] == "aipolicy:internal-error"
    assert http_upstream.hits(mark) == []
    events = faulty_proxy.events_for(mark)
    assert [(e["action"], e["rule"]) for e in events] == [("block", "aipolicy:internal-error")]


def test_error_in_connect_hook_refuses_connect(faulty_proxy: Proxy) -> None:
    mark = "m" + uuid.uuid4().hex[:8]
    status, sock, _ = connect_tls(faulty_proxy.port, f"{mark}.fault.test:443", f"{mark}.fault.test", [])
    assert " 403" in status and sock is None
    assert [e["rule"] for e in faulty_proxy.events_for(mark)] == ["aipolicy:internal-error"]


def test_error_in_tls_hook_blocks(faulty_proxy: Proxy, https_upstream) -> None:  # type: ignore[no-untyped-def]
    mark = "m" + uuid.uuid4().hex[:8]
    status, sock, _ = connect_tls(
        faulty_proxy.port, f"127.0.0.1:{https_upstream.port}", f"{mark}.fault.test", [faulty_proxy.ca]
    )
    assert " 200" in status and sock is not None
    from .harness import http_over

    code, _, body = http_over(sock, f"127.0.0.1:{https_upstream.port}", f"/{mark}")
    sock.close()
    assert code == 403 and b"aipolicy:internal-error" in body
    assert https_upstream.hits(mark) == []
    assert len(faulty_proxy.events_for(mark)) == 1


def test_other_traffic_unaffected(faulty_proxy: Proxy, http_upstream) -> None:  # type: ignore[no-untyped-def]
    mark = "m" + uuid.uuid4().hex[:8]
    with httpx.Client(proxy=faulty_proxy.url, trust_env=False, timeout=10) as client:
        assert client.get(f"http://127.0.0.1:{http_upstream.port}/{mark}").status_code == 200
    assert len(http_upstream.hits(mark)) == 1
