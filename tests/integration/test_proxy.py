"""Behaviour of the enforcing proxy beyond the shared case table: what clients
see, what is decrypted and what is not, what the event log holds."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import uuid

import httpx
import pytest

from .harness import connect_tls, env_without_proxy, http_over, wait_until

pytestmark = pytest.mark.integration


def marker() -> str:
    return "m" + uuid.uuid4().hex[:10]


def test_allowed_non_ai_tls_is_tunnelled_not_decrypted(proxy, https_upstream, upstream_cert) -> None:  # type: ignore[no-untyped-def]
    status, sock, peer = connect_tls(proxy.port, f"127.0.0.1:{https_upstream.port}", "allowed.test", [upstream_cert[0]])
    assert " 200" in status
    assert peer == https_upstream.cert_der, "the client must see the upstream's own certificate"
    mark = marker()
    code, _, body = http_over(sock, "allowed.test", f"/{mark}")
    sock.close()
    assert code == 200 and b"reached" in body
    assert len(https_upstream.hits(mark)) == 1


def test_host_with_a_path_rule_is_decrypted(proxy, https_upstream, upstream_cert) -> None:  # type: ignore[no-untyped-def]
    status, sock, peer = connect_tls(proxy.port, "huggingface.co:443", "huggingface.co", [proxy.ca])
    assert " 200" in status and sock is not None
    assert peer != https_upstream.cert_der, "huggingface.co needs path inspection, so the proxy must decrypt it"
    sock.close()


def test_curl_plain_http_gets_json_error_naming_the_policy(proxy) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    result = subprocess.run(
        ["curl", "-sS", "-x", proxy.url, "-o", "-", "-w", "\n%{http_code}", f"http://chat.deepseek.com/{mark}"],
        capture_output=True, text=True, timeout=30, env=env_without_proxy(),
    )  # fmt: skip
    body, _, code = result.stdout.rpartition("\n")
    assert code == "403"
    error = json.loads(body)["error"]
    assert "aipolicy rule deepseek" in error["message"]
    assert error["code"] == "aipolicy_blocked"
    assert len(proxy.events_for(mark)) == 1


def test_curl_https_connect_is_refused_without_contacting_upstream(proxy) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    result = subprocess.run(
        ["curl", "-sS", "-x", proxy.url, f"https://{mark}.chat.deepseek.com/"],
        capture_output=True, text=True, timeout=30, env=env_without_proxy(),
    )  # fmt: skip
    assert result.returncode != 0
    assert "403" in result.stderr
    events = proxy.events_for(mark)
    assert len(events) == 1
    assert events[0]["method"] == "CONNECT" and events[0]["stage"] == "connect"
    assert "Name or service not known" not in proxy.stderr_text().split(mark)[-1]


def test_event_has_contract_fields_and_no_query_or_body(proxy, http_upstream) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
        response = client.post(
            f"http://api.deepseek.com/v1/chat/completions?key=sekret-{mark}",
            json={"prompt": f"body-{mark}"},
            headers={"user-agent": f"test-agent/{mark}"},
        )
    assert response.status_code == 403
    events = proxy.events_for(f"test-agent/{mark}")
    assert len(events) == 1
    event = events[0]
    for field in ("ts", "action", "rule", "app", "host", "method", "path", "client_ip", "user", "reason", "policy"):
        assert field in event
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["ts"])
    assert (event["action"], event["rule"], event["app"], event["vendor"]) == (
        "block",
        "deepseek",
        "deepseek",
        "deepseek",
    )
    assert event["host"] == "api.deepseek.com" and event["method"] == "POST"
    assert event["path"] == "/v1/chat/completions"
    assert event["client_ip"] == "127.0.0.1" and event["proxy"] == "test-proxy"
    assert event["user_agent"] == f"test-agent/{mark}" and event["directive"] == "NAVY-1"
    raw = proxy.log.read_text()
    assert f"sekret-{mark}" not in raw and f"body-{mark}" not in raw


def test_websocket_upgrade_to_banned_host_is_refused(proxy) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(
            (
                f"GET http://chat.deepseek.com/ws/{mark} HTTP/1.1\r\nHost: chat.deepseek.com\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = sock.recv(4096).decode(errors="replace")
    assert head.startswith("HTTP/1.1 403")
    assert len(proxy.events_for(mark)) == 1


def curl_http2(proxy, url: str) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    """curl offers h2 first in ALPN (httpx offers http/1.1 first, so it never gets h2 from a proxy)."""
    result = subprocess.run(
        ["curl", "-sS", "--http2", "-x", proxy.url, "--cacert", str(proxy.ca), "-D", "-", "-o", "/dev/null",
         "-w", "%{http_version} %{http_code}", url],
        capture_output=True, text=True, timeout=30, env=env_without_proxy(),
    )  # fmt: skip
    headers, _, summary = result.stdout.rpartition("\n")
    version, _, code = summary.partition(" ")
    return version, code, headers.lower()


def test_http2_block_and_pass(proxy, https_upstream) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    blocked = curl_http2(proxy, f"https://huggingface.co/deepseek-ai/DeepSeek-V3/resolve/main/{mark}")
    allowed = curl_http2(proxy, f"https://huggingface.co/openai/whisper/resolve/main/{mark}")
    assert blocked[:2] == ("2", "403")
    assert allowed[:2] == ("2", "200")
    assert "alt-svc" not in allowed[2], "HTTP/3 must never be advertised to clients"
    assert len(https_upstream.hits(mark)) == 1
    assert [e["rule"] for e in proxy.events_for(mark)] == ["deepseek"]


def raw_proxy_request(proxy, request: str) -> str:  # type: ignore[no-untyped-def]
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(request.encode())
        return sock.recv(65536).decode(errors="replace")


@pytest.mark.parametrize("host", ["3405803781", "0xcb.0.113.5", "203.0.113.5."])
def test_banned_ip_literal_spellings(proxy, host: str) -> None:  # type: ignore[no-untyped-def]
    """203.0.113.0/24 is listed: other spellings of its addresses are caught too."""
    mark = marker()
    head = raw_proxy_request(proxy, f"GET http://{host}/{mark} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    assert head.startswith("HTTP/1.1 403"), head[:200]
    assert [e["rule"] for e in proxy.events_for(mark)] == ["extra-list"]


def test_curl_is_available() -> None:
    assert shutil.which("curl"), "the integration tests need curl (.ci/run installs it)"


def test_proxy_survives_malformed_request(proxy) -> None:  # type: ignore[no-untyped-def]
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"\x16\x03garbage \r\n\r\n")
        sock.recv(1024)
    mark = marker()
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
        assert client.get(f"http://chat.deepseek.com/{mark}").status_code == 403
    assert wait_until(lambda: proxy.process.poll() is None)


def test_oversized_body_for_a_model_rule_is_blocked_and_other_uploads_pass(proxy, http_upstream, tmp_path) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    big = tmp_path / "big.json"
    big.write_bytes(b'{"model": "gpt-4o", "pad": "' + b"x" * (9 * 1024 * 1024) + b'"}')
    # curl, not httpx: the proxy answers before the upload ends, and httpcore then leaks its TLS socket
    blocked = subprocess.run(
        ["curl", "-sS", "-x", proxy.url, "--cacert", str(proxy.ca), "-H", "content-type: application/json",
         "--data-binary", f"@{big}", "-o", "-", "-w", "\n%{http_code}", f"https://gateway.example/v1/{mark}"],
        capture_output=True, text=True, timeout=60, env=env_without_proxy(),
    )  # fmt: skip
    body, _, code = blocked.stdout.rpartition("\n")
    assert code == "403" and json.loads(body)["error"]["rule"] == "aipolicy:body-too-large", blocked.stderr
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=30) as client:
        passed = client.post(f"http://allowed.test/{mark}", content=big.read_bytes())
    assert passed.status_code == 200 and len(http_upstream.hits(mark)) == 1
    assert [e["rule"] for e in proxy.events_for(mark)] == ["aipolicy:body-too-large"]


def evasion_events(proxy, marker: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    wait_until(
        lambda: [e for e in proxy.events() if e.get("event") == "evasion" and marker in json.dumps(e)], timeout=5
    )
    return [e for e in proxy.events() if e.get("event") == "evasion" and marker in json.dumps(e)]


def test_evasion_ip_target_with_ai_sni(proxy, https_upstream, upstream_cert) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    status, sock, _ = connect_tls(
        proxy.port, f"127.0.0.1:{https_upstream.port}", f"{mark}.chatgpt.com", [upstream_cert[0]]
    )
    assert " 200" in status and sock is not None  # monitored, tunnelled as before
    sock.close()
    events = evasion_events(proxy, mark)
    assert [(e["evasion"], e["action"], e["app"]) for e in events] == [("ip-target-with-ai-sni", "monitor", "chatgpt")]
    assert len(proxy.events_for(mark)) == 1  # and the one decision event


def test_evasion_domain_fronting(proxy, https_upstream) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    status, sock, _ = connect_tls(proxy.port, "huggingface.co:443", "huggingface.co", [proxy.ca])
    assert " 200" in status and sock is not None
    code, _, _ = http_over(sock, f"{mark}.chat.deepseek.com", "/")
    sock.close()
    assert code == 403
    events = evasion_events(proxy, mark)
    assert [(e["evasion"], e["action"], e["host_header"]) for e in events] == [
        ("sni-host-mismatch", "block", f"{mark}.chat.deepseek.com")
    ]


def test_evasion_dns_over_https(proxy, http_upstream) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
        response = client.get(
            "http://doh.example/dns-query?dns=AAABAAABAAAAAAAAB2V4YW1wbGUDY29tAAABAAE", headers={"user-agent": mark}
        )
    assert response.status_code == 200  # the policy allows it; the attempt is still recorded
    events = evasion_events(proxy, mark)
    assert [(e["evasion"], e["action"], e["app"]) for e in events] == [("dns-over-https", "allow", "doh-resolver")]
    assert "AAABAAAB" not in proxy.log.read_text()  # the query (the DNS question) is not logged
