"""The proxy following a policy feed, with the network edge replaced by httpx.MockTransport."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
from aipolicy.proxy_addons.enforcer import Enforcer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mitmproxy import exceptions

import aipolicy
from aipolicy import RequestFacts

with warnings.catch_warnings():  # mitmproxy.master imports ldap3, which warns about pyasn1 on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from mitmproxy.test import taddons

URL = "https://feed.example/policy-bundle.json"


def policy_blocking(host: str) -> dict[str, bytes]:
    return {
        "policy.yaml": f"version: 1\nrules:\n  - {{id: feed-{host}, action: block, match: {{hosts: [{host}]}}}}\n".encode()
    }


class Feed:
    """What the feed server answers: a body, an ETag honoured with 304, or a network error."""

    def __init__(self) -> None:
        self.body = b""
        self.etag = ""
        self.stream: list[bytes] | None = None
        self.down = False
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.etag and request.headers.get("if-none-match") == self.etag:
            return httpx.Response(304)
        headers = {"etag": self.etag} if self.etag else {}
        if self.stream is not None:
            return httpx.Response(200, content=_chunks(self.stream), headers=headers)
        return httpx.Response(200, content=self.body, headers=headers)


async def _chunks(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def pubkey(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    path = tmp_path / "feed.pub"
    path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return path


@pytest.fixture
def local_policy(tmp_path: Path) -> Path:
    path = tmp_path / "local.yaml"
    path.write_bytes(policy_blocking("local.example")["policy.yaml"])
    return path


def action(enforcer: Enforcer, host: str) -> str:
    assert enforcer.policy is not None
    return aipolicy.decide(enforcer.policy, RequestFacts(hosts=(host,))).action


def events(log: Path, kind: str) -> list[dict[str, Any]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [e for e in map(json.loads, lines) if e.get("event") == kind]


def declare_proxyserver_options(tctx: Any) -> None:
    """The enforcer reads connection_strategy, which mitmproxy's proxyserver addon declares."""
    if "connection_strategy" not in tctx.options:
        tctx.options.add_option("connection_strategy", str, "lazy", "as declared by mitmproxy's proxyserver addon")


def detach_logging(tctx: Any) -> None:
    """What mitmdump does on shutdown and taddons does not: without it the next test's log calls reach a closed loop."""
    legacy = getattr(tctx.master, "_legacy_log_events", None)
    if legacy is not None:
        legacy.uninstall()


Scenario = Callable[[Enforcer, Feed], Coroutine[Any, Any, None]]


def follow(tmp_path: Path, local_policy: Path, scenario: Scenario, feed: Feed | None = None, **options: Any) -> None:
    """Run scenario against an Enforcer configured to follow URL, inside a running event loop."""

    async def main() -> None:
        enforcer = Enforcer()
        served = feed or Feed()
        enforcer.feed.transport = httpx.MockTransport(served)
        with taddons.context(enforcer) as tctx:
            declare_proxyserver_options(tctx)
            settings = {
                "aipolicy_policy": str(local_policy),
                "aipolicy_log": str(tmp_path / "events.jsonl"),
                "aipolicy_policy_url": URL,
                "aipolicy_policy_cache": str(tmp_path / "cache"),
                **options,
            }
            tctx.configure(enforcer, **settings)
            try:
                await scenario(enforcer, served)
            finally:
                await enforcer.done()
                detach_logging(tctx)

    asyncio.run(main())


def test_a_signed_bundle_replaces_the_local_policy(
    tmp_path: Path, local_policy: Path, key: Ed25519PrivateKey, pubkey: Path
) -> None:
    async def scenario(enforcer: Enforcer, feed: Feed) -> None:
        assert action(enforcer, "local.example") == "block"  # until the feed answers
        feed.body, feed.etag = aipolicy.sign_bundle(policy_blocking("one.example"), key), '"v1"'
        await enforcer.feed.poll()
        assert action(enforcer, "one.example") == "block"
        assert action(enforcer, "local.example") == "allow"
        assert enforcer.reloader.path() == enforcer.feed.policy_file
        assert enforcer.feed.policy_file.startswith(str(tmp_path / "cache" / "bundles"))

        await enforcer.feed.poll()  # not modified
        assert feed.requests[-1].headers["if-none-match"] == '"v1"'

        feed.body, feed.etag = aipolicy.sign_bundle(policy_blocking("two.example"), key, now=_later()), '"v2"'
        await enforcer.feed.poll()
        assert (action(enforcer, "one.example"), action(enforcer, "two.example")) == ("allow", "block")

        # an edit to the unpacked files is not a verified bundle: hot reload leaves it alone
        Path(enforcer.feed.policy_file).write_bytes(policy_blocking("edited.example")["policy.yaml"])
        await enforcer.reloader.reload_if_changed()
        assert action(enforcer, "edited.example") == "allow" and action(enforcer, "two.example") == "block"

    follow(tmp_path, local_policy, scenario, aipolicy_policy_pubkey=str(pubkey))
    loaded = events(tmp_path / "events.jsonl", "policy_loaded")
    assert len(loaded) == 2  # the 304 changed nothing
    assert loaded[1]["previous"] == loaded[0]["policy"] and loaded[1]["signed_at"] > loaded[0]["signed_at"]
    assert len(list((tmp_path / "cache" / "bundles").iterdir())) <= 2


def test_the_loaded_event_names_the_bundle_and_key(
    tmp_path: Path, local_policy: Path, key: Ed25519PrivateKey, pubkey: Path
) -> None:
    async def scenario(enforcer: Enforcer, feed: Feed) -> None:
        feed.body = aipolicy.sign_bundle(policy_blocking("one.example"), key)
        await enforcer.feed.poll()

    follow(tmp_path, local_policy, scenario, aipolicy_policy_pubkey=str(pubkey))
    (loaded,) = events(tmp_path / "events.jsonl", "policy_loaded")
    bundle = aipolicy.verify_bundle(
        json.dumps(json.loads((tmp_path / "cache" / "bundle.json").read_bytes())).encode(), None
    )
    assert loaded["source"] == URL and loaded["key_id"] == aipolicy.key_id(key.public_key())
    assert loaded["bundle"] == bundle.digest[:16] and loaded["expires"] == bundle.manifest["expires"]


def _later(seconds: int = 5) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)


def _tamper(data: bytes) -> bytes:
    document = json.loads(data)
    document["files"]["policy.yaml"] = base64.b64encode(policy_blocking("nothing.example")["policy.yaml"]).decode()
    return json.dumps(document).encode()


def _unsign(data: bytes) -> bytes:
    document = json.loads(data)
    del document["signature"]
    return json.dumps(document).encode()


BAD_FEEDS: dict[str, tuple[Callable[[Ed25519PrivateKey], bytes], str]] = {
    "tampered": (
        lambda k: _tamper(aipolicy.sign_bundle(policy_blocking("bad.example"), k, now=_later())),
        "bytes, but the manifest says",
    ),
    "unsigned": (
        lambda k: _unsign(aipolicy.sign_bundle(policy_blocking("bad.example"), k, now=_later())),
        "not signed",
    ),
    "other key": (
        lambda k: aipolicy.sign_bundle(policy_blocking("bad.example"), Ed25519PrivateKey.generate(), now=_later()),
        "signature does not verify",
    ),
    "stale": (
        lambda k: aipolicy.sign_bundle(
            policy_blocking("bad.example"),
            k,
            now=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2),
            valid_for=datetime.timedelta(days=1),
        ),
        "expired at",
    ),
    "older than in force": (
        lambda k: aipolicy.sign_bundle(
            policy_blocking("bad.example"), k, now=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
        ),
        "before the one in force",
    ),
    "policy does not load": (
        lambda k: aipolicy.sign_bundle(
            {"policy.yaml": b"version: 1\nrules:\n  - {id: x, action: blok}\n"}, k, now=_later()
        ),
        "policy.yaml:3:",
    ),
    "not a bundle": (lambda k: b"<html>maintenance</html>", "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_FEEDS))
def test_a_bad_feed_is_rejected_once_and_the_last_good_policy_stays(
    tmp_path: Path, local_policy: Path, key: Ed25519PrivateKey, pubkey: Path, case: str
) -> None:
    make, reason = BAD_FEEDS[case]

    async def scenario(enforcer: Enforcer, feed: Feed) -> None:
        feed.body = aipolicy.sign_bundle(policy_blocking("good.example"), key)
        await enforcer.feed.poll()
        good = enforcer.policy
        feed.body = make(key)
        await enforcer.feed.poll()
        await enforcer.feed.poll()  # served again: not recorded again
        assert enforcer.policy is good
        assert action(enforcer, "good.example") == "block" and action(enforcer, "bad.example") == "allow"

    follow(tmp_path, local_policy, scenario, aipolicy_policy_pubkey=str(pubkey))
    rejected = events(tmp_path / "events.jsonl", "policy_rejected")
    assert len(rejected) == 1, rejected
    assert reason in rejected[0]["reason"] and rejected[0]["reason"].startswith("policy feed: ")
    assert rejected[0]["policy"] == events(tmp_path / "events.jsonl", "policy_loaded")[0]["policy"]
    assert rejected[0]["source"] == URL


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "streamed"])
def test_an_oversized_feed_is_rejected(
    tmp_path: Path, local_policy: Path, key: Ed25519PrivateKey, pubkey: Path, streamed: bool
) -> None:
    async def scenario(enforcer: Enforcer, feed: Feed) -> None:
        enforcer.feed.max_bytes = 2000
        body = aipolicy.sign_bundle(policy_blocking("x" * 3000 + ".example"), key)
        if streamed:
            feed.stream = [body[i : i + 500] for i in range(0, len(body), 500)]
        else:
            feed.body = body
        await enforcer.feed.poll()
        assert action(enforcer, "local.example") == "block"

    follow(tmp_path, local_policy, scenario, aipolicy_policy_pubkey=str(pubkey))
    (rejected,) = events(tmp_path / "events.jsonl", "policy_rejected")
    assert "over the limit of 2,000" in rejected["reason"] or "more than the limit of 2,000" in rejected["reason"]


def test_an_unreachable_feed_changes_nothing(tmp_path: Path, local_policy: Path, pubkey: Path) -> None:
    async def scenario(enforcer: Enforcer, feed: Feed) -> None:
        feed.down = True
        await enforcer.feed.poll()
        await enforcer.feed.poll()
        assert action(enforcer, "local.example") == "block" and enforcer.feed.unreachable

    follow(tmp_path, local_policy, scenario, aipolicy_policy_pubkey=str(pubkey))
    assert events(tmp_path / "events.jsonl", "policy_rejected") == []


def test_start_up_with_an_unreachable_feed_uses_the_cached_bundle(
    tmp_path: Path, local_policy: Path, key: Ed25519PrivateKey, pubkey: Path
) -> None:
    async def first(enforcer: Enforcer, feed: Feed) -> None:
        feed.body, feed.etag = aipolicy.sign_bundle(policy_blocking("cached.example"), key), '"c1"'
        await enforcer.feed.poll()

    follow(tmp_path, local_policy, first, aipolicy_policy_pubkey=str(pubkey))

    async def restart(enforcer: Enforcer, feed: Feed) -> None:
        assert action(enforcer, "cached.example") == "block"  # before any fetch
        assert action(enforcer, "local.example") == "allow"
        feed.down = True
        await enforcer.feed.poll()
        assert action(enforcer, "cached.example") == "block"
        feed.down, feed.etag = False, '"c1"'
        await enforcer.feed.poll()
        assert feed.requests[-1].headers["if-none-match"] == '"c1"'

    follow(tmp_path, local_policy, restart, aipolicy_policy_pubkey=str(pubkey))
    loaded = events(tmp_path / "events.jsonl", "policy_loaded")
    assert len(loaded) == 2 and loaded[1]["source"] == f"{URL} (cached)"


def test_a_cached_bundle_signed_by_another_key_is_ignored(
    tmp_path: Path, local_policy: Path, key: Ed25519PrivateKey, pubkey: Path
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "bundle.json").write_bytes(
        aipolicy.sign_bundle(policy_blocking("planted.example"), Ed25519PrivateKey.generate())
    )

    async def scenario(enforcer: Enforcer, feed: Feed) -> None:
        assert action(enforcer, "planted.example") == "allow" and action(enforcer, "local.example") == "block"

    follow(tmp_path, local_policy, scenario, aipolicy_policy_pubkey=str(pubkey))


def test_without_a_public_key_signatures_are_not_required(
    tmp_path: Path, local_policy: Path, key: Ed25519PrivateKey
) -> None:
    async def scenario(enforcer: Enforcer, feed: Feed) -> None:
        feed.body = _unsign(aipolicy.sign_bundle(policy_blocking("open.example"), key))
        await enforcer.feed.poll()
        assert action(enforcer, "open.example") == "block"
        feed.body = _tamper(aipolicy.sign_bundle(policy_blocking("open2.example"), key, now=_later()))
        await enforcer.feed.poll()  # the hashes are still checked
        assert action(enforcer, "open.example") == "block"

    follow(tmp_path, local_policy, scenario)
    assert len(events(tmp_path / "events.jsonl", "policy_rejected")) == 1


def test_a_local_path_can_be_followed(tmp_path: Path, local_policy: Path, key: Ed25519PrivateKey, pubkey: Path) -> None:
    bundle = tmp_path / "share" / "bundle.json"
    bundle.parent.mkdir()
    bundle.write_bytes(aipolicy.sign_bundle(policy_blocking("shared.example"), key))

    async def scenario(enforcer: Enforcer, feed: Feed) -> None:
        await enforcer.feed.poll()
        await enforcer.feed.poll()
        assert action(enforcer, "shared.example") == "block" and feed.requests == []

    follow(tmp_path, local_policy, scenario, aipolicy_policy_url=str(bundle), aipolicy_policy_pubkey=str(pubkey))
    assert len(events(tmp_path / "events.jsonl", "policy_loaded")) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"aipolicy_policy_pubkey": "/nonexistent.pub"}, "cannot read the public key"),
        ({"aipolicy_policy_refresh": "soon"}, "aipolicy_policy_refresh: 'soon' is not a duration"),
        ({"aipolicy_policy_refresh": "0"}, "aipolicy_policy_refresh: a duration must be more than 0 seconds"),
        ({"aipolicy_policy_refresh": "0.05"}, "aipolicy_policy_refresh must be from 0.1 seconds to 7 days"),
        ({"aipolicy_policy_refresh": "nan"}, "aipolicy_policy_refresh: 'nan' is not a duration"),
    ],
)
def test_bad_feed_options_are_refused(tmp_path: Path, options: dict[str, str], message: str) -> None:
    async def main() -> None:
        enforcer = Enforcer()
        with taddons.context(enforcer) as tctx:
            declare_proxyserver_options(tctx)
            with pytest.raises(exceptions.OptionsError, match=message):
                tctx.configure(enforcer, aipolicy_policy_url=URL, **options)
            detach_logging(tctx)

    asyncio.run(main())


def test_redirects_are_followed_and_errors_change_nothing(
    tmp_path: Path, local_policy: Path, key: Ed25519PrivateKey, pubkey: Path
) -> None:
    body = aipolicy.sign_bundle(policy_blocking("moved.example"), key)
    answers = [httpx.Response(500), httpx.Response(302, headers={"location": "https://cdn.example/b.json"})]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.example":
            return httpx.Response(200, content=body)
        return answers.pop(0)

    async def scenario(enforcer: Enforcer, feed: Feed) -> None:
        enforcer.feed.transport = httpx.MockTransport(handler)
        await enforcer.feed.poll()  # HTTP 500: unreachable, nothing rejected
        assert enforcer.feed.unreachable and action(enforcer, "local.example") == "block"
        await enforcer.feed.poll()
        assert not enforcer.feed.unreachable and action(enforcer, "moved.example") == "block"

    follow(tmp_path, local_policy, scenario, aipolicy_policy_pubkey=str(pubkey))
    assert events(tmp_path / "events.jsonl", "policy_rejected") == []


def test_turning_the_feed_off_returns_to_the_local_policy(
    tmp_path: Path, local_policy: Path, key: Ed25519PrivateKey
) -> None:
    async def main() -> None:
        enforcer = Enforcer()
        feed = Feed()
        feed.body = aipolicy.sign_bundle(policy_blocking("feed.example"), key)
        enforcer.feed.transport = httpx.MockTransport(feed)
        with taddons.context(enforcer) as tctx:
            declare_proxyserver_options(tctx)
            tctx.configure(
                enforcer,
                aipolicy_policy=str(local_policy),
                aipolicy_log=str(tmp_path / "events.jsonl"),
                aipolicy_policy_url=URL,
                aipolicy_policy_cache=str(tmp_path / "cache"),
            )
            await enforcer.feed.poll()
            assert action(enforcer, "feed.example") == "block"
            tctx.configure(enforcer, aipolicy_policy_url="")
            assert action(enforcer, "feed.example") == "allow" and action(enforcer, "local.example") == "block"
            detach_logging(tctx)

    asyncio.run(main())
