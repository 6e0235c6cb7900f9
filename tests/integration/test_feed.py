"""A real mitmdump following a policy feed served by a real loopback HTTP server:
a signed bundle is enforced, a newer one replaces it, a tampered one is rejected
with the last good policy still in force, ETags give 304s, and a restart with the
feed down enforces the cached bundle."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import aipolicy

from .conftest import copy_fixture_policy
from .harness import Proxy, free_port, wait_until

pytestmark = pytest.mark.integration


class FeedServer:
    """Serves one bundle at /bundle.json with a strong ETag, answering If-None-Match with 304."""

    def __init__(self) -> None:
        self.body = b""
        self.log: list[tuple[str, int]] = []  # (If-None-Match sent, status answered)
        feed = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                body = feed.body
                etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
                status = 304 if self.headers.get("if-none-match") == etag else 200
                feed.log.append((self.headers.get("if-none-match", ""), status))
                self.send_response(status)
                self.send_header("etag", etag)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "0" if status == 304 else str(len(body)))
                self.end_headers()
                if status == 200:
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bundle.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def feed() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def pubkey(tmp_path_factory: pytest.TempPathFactory, key: Ed25519PrivateKey) -> Path:
    path = tmp_path_factory.mktemp("keys") / "feed.pub"
    public = key.public_key()
    path.write_bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def bundle_blocking(directory: Path, key: Ed25519PrivateKey, host: str) -> bytes:
    """The fixture policy (with its catalogue and providers), plus host in its block list, signed."""
    directory.mkdir()
    policy = copy_fixture_policy(directory)
    policy.write_text(policy.read_text().replace("    - blocked.example\n", f"    - blocked.example\n    - {host}\n"))
    loaded = aipolicy.load_policy(policy)
    return aipolicy.sign_bundle(aipolicy.policy_files(loaded), key, policy_sha256=loaded.sha256)


def status(proxy: Proxy, url: str) -> int:
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
        return client.get(url).status_code


def system_events(proxy: Proxy, kind: str) -> list[dict[str, object]]:
    return [e for e in proxy.events() if e.get("event") == kind]


def feed_options(url: str, pubkey: Path, *more: str) -> list[str]:
    return [
        "--set", f"aipolicy_policy_url={url}",
        "--set", f"aipolicy_policy_pubkey={pubkey}",
        "--set", "aipolicy_policy_refresh=0.3",
        *more,
    ]  # fmt: skip


def test_the_proxy_follows_the_feed(
    make_proxy, feed: FeedServer, key: Ed25519PrivateKey, pubkey: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    mark = "m" + uuid.uuid4().hex[:8]
    feed.body = bundle_blocking(tmp_path / "v1", key, "allowed.test")
    proxy = make_proxy("feed", extra=feed_options(feed.url, pubkey))

    # the feed's policy, not the local one, is enforced
    assert wait_until(lambda: status(proxy, f"http://allowed.test/{mark}-v1") == 403, timeout=15)
    (loaded,) = system_events(proxy, "policy_loaded")
    assert loaded["source"] == feed.url and loaded["key_id"] == aipolicy.key_id(key.public_key())
    assert status(proxy, f"http://api.openai.com/{mark}") == 200

    # ETag: polls that find nothing new are answered 304 and change nothing
    assert wait_until(lambda: sum(s == 304 for _, s in feed.log) >= 3, timeout=10)
    assert len(system_events(proxy, "policy_loaded")) == 1

    # a newer signed bundle replaces it
    feed.body = bundle_blocking(tmp_path / "v2", key, "api.openai.com")
    assert wait_until(lambda: status(proxy, f"http://api.openai.com/{mark}-v2") == 403, timeout=15)
    assert status(proxy, f"http://allowed.test/{mark}-v2") == 200
    second = system_events(proxy, "policy_loaded")[-1]
    assert second["previous"] == loaded["policy"] and second["policy"] != loaded["policy"]

    # a tampered bundle is rejected and the last good policy stays in force
    document = json.loads(bundle_blocking(tmp_path / "v3", key, "allowed.test"))
    document["files"]["policy.yaml"] = base64.b64encode(
        base64.b64decode(document["files"]["policy.yaml"]).replace(b"allowed.test", b"allowed.tesT")
    ).decode()
    feed.body = json.dumps(document).encode()
    assert wait_until(lambda: system_events(proxy, "policy_rejected"), timeout=15)
    (rejected,) = system_events(proxy, "policy_rejected")
    assert "does not match its sha256" in str(rejected["reason"]) and rejected["policy"] == second["policy"]
    assert status(proxy, f"http://allowed.test/{mark}-tampered") == 200
    assert status(proxy, f"http://api.openai.com/{mark}-tampered") == 403
    assert wait_until(lambda: feed.log[-1] == (feed.log[-1][0], 304) and feed.log[-1][0], timeout=10)
    assert len(system_events(proxy, "policy_rejected")) == 1  # the same bad bundle is reported once
    assert "rejected; still enforcing" in proxy.stderr_text()

    # a restart with the feed down enforces the cached last good bundle at once
    proxy.stop()
    down = f"http://127.0.0.1:{free_port()}/bundle.json"
    cache = proxy.confdir / "aipolicy-feed"
    restarted = make_proxy("feed-restart", extra=feed_options(down, pubkey, "--set", f"aipolicy_policy_cache={cache}"))
    assert status(restarted, f"http://api.openai.com/{mark}-cached") == 403
    assert status(restarted, f"http://allowed.test/{mark}-cached") == 200
    (cached,) = system_events(restarted, "policy_loaded")
    assert cached["policy"] == second["policy"] and str(cached["source"]).endswith("(cached)")
    assert "unreachable" in wait_until(lambda: "unreachable" in restarted.stderr_text() and restarted.stderr_text())
