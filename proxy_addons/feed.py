"""Follow a policy feed: a signed bundle (``aipolicy policy sign``) fetched over HTTP(S).

Owned by the Enforcer, which calls its ``load``/``configure``/``running``/``done``.
Every ``aipolicy_policy_refresh`` seconds the bundle is fetched with
``httpx.AsyncClient`` (timeout, size cap, ``If-None-Match`` with the last ETag),
verified and unpacked off the event loop, loaded with the real loader, and
installed through the Enforcer's reloader (``policy_loaded``). A bundle that
is malformed, unsigned or wrongly signed (when a public key is set), stale,
older than the one in force, oversized or whose policy does not load is
rejected with a ``policy_rejected`` event, and the last good policy stays.

The last good bundle is kept in the cache directory, so a proxy that starts
while the feed is unreachable enforces it rather than its local policy.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from mitmproxy import ctx, exceptions

import aipolicy
from aipolicy import Policy, PolicyError
from aipolicy.distribution import MAX_BUNDLE_BYTES, Bundle, BundleError, load_public_key, unpack_fresh, verify_bundle
from aipolicy.distribution import public_url as display
from aipolicy.distribution import write_atomically as _write_atomically

logger = logging.getLogger("aipolicy")

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
DEADLINE = 60.0  # seconds for a whole fetch, however slowly the bytes trickle in
OPTIONS = {"aipolicy_policy_url", "aipolicy_policy_pubkey", "aipolicy_policy_refresh", "aipolicy_policy_cache"}


class FeedUnavailable(Exception):
    """The feed could not be fetched (network, HTTP status): the policy in force stays, no rejection."""


class PolicyTarget(Protocol):
    """Where the feed's policies go: the Enforcer's reloader."""

    @property
    def hash(self) -> str: ...

    def path(self) -> str: ...

    def load_file(self, path: str) -> Policy: ...

    def install(self, policy: Policy, message: str, **extra: object) -> None: ...

    def reject(self, origin: str, reason: str, **extra: object) -> None: ...


class PolicyFeed:
    def __init__(self, target: PolicyTarget, started: Callable[[], Awaitable[None]]) -> None:
        self.target = target
        self.started = started  # returns once the proxy's start-up is over
        self.url = ""
        self.public_key: Ed25519PublicKey | None = None
        self.refresh = 300.0
        self.cache = Path()
        self.max_bytes = MAX_BUNDLE_BYTES
        self.transport: httpx.AsyncBaseTransport | None = None  # tests inject httpx.MockTransport
        self.current: Bundle | None = None
        self.policy_file = ""  # the unpacked policy in force; "" while not following a feed
        self.etag = ""
        self.last_rejection: tuple[str, str] = ("", "")  # (reason, body digest): each rejection is recorded once
        self.unreachable = False
        self.expired_warned = ""  # digest of the expired bundle already warned about
        self.task: asyncio.Task[None] | None = None

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option(
            "aipolicy_policy_url",
            str,
            "",
            "Follow a signed policy bundle (aipolicy policy sign) at this http(s) URL or local path, instead of "
            "aipolicy_policy, which is then enforced only until the first good bundle arrives.",
        )
        loader.add_option(
            "aipolicy_policy_pubkey",
            str,
            "",
            "Ed25519 public key (PEM) that the feed's bundles must be signed with. Empty: signatures are not checked.",
        )
        loader.add_option(
            "aipolicy_policy_refresh",
            str,
            "300",
            "Time between fetches of aipolicy_policy_url: seconds, or 30s, 5m, 1h.",
        )
        loader.add_option(
            "aipolicy_policy_cache",
            str,
            "",
            "Directory for the last good bundle of the feed, used when the feed is unreachable at start-up. "
            "Empty: aipolicy-feed in mitmproxy's confdir.",
        )

    def configure(self, updated: set[str]) -> None:
        if not updated & OPTIONS:
            return
        options = ctx.options
        url = options.aipolicy_policy_url.strip()
        public_key = None
        if options.aipolicy_policy_pubkey:
            try:
                public_key = load_public_key(os.path.expanduser(options.aipolicy_policy_pubkey))
            except BundleError as error:
                raise exceptions.OptionsError(f"aipolicy_policy_pubkey: {error}") from None
        try:
            refresh = aipolicy.parse_duration(options.aipolicy_policy_refresh)
        except ValueError as error:
            raise exceptions.OptionsError(f"aipolicy_policy_refresh: {error}") from None
        if not 0.1 <= refresh <= 7 * 86400:
            raise exceptions.OptionsError(
                f"aipolicy_policy_refresh must be from 0.1 seconds to 7 days, got {options.aipolicy_policy_refresh!r}"
            )
        cache = options.aipolicy_policy_cache or os.path.join(options.confdir, "aipolicy-feed")
        if url != self.url or public_key != self.public_key:
            self.current, self.etag, self.last_rejection = None, "", ("", "")
        self.url, self.public_key, self.refresh = url, public_key, refresh
        self.cache = Path(os.path.expanduser(cache))
        if not url:
            if self.policy_file:  # the feed was turned off: back to the local policy
                self.policy_file = ""
                local = self.target.path()
                self.target.install(self.target.load_file(local), f"policy feed turned off; policy loaded from {local}")
            return
        if public_key is None:
            logger.warning(
                f"aipolicy: following {display(url)} WITHOUT a public key: bundle signatures are not checked"
            )
        if self.current is None:
            self._use_cache()

    def running(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._follow())

    def done(self) -> None:
        if self.task:
            self.task.cancel()

    # --- the loop -------------------------------------------------------------

    async def _follow(self) -> None:
        await self.started()  # an error logged during mitmproxy's start-up would stop the proxy
        while True:
            if self.url:
                try:
                    await self.poll()
                    self._warn_if_expired()
                except Exception:  # keep following whatever happens; the last good policy stays
                    logger.exception("aipolicy: policy feed update failed")
            await asyncio.sleep(self.refresh)

    async def poll(self) -> None:
        """Fetch the feed once and act on what it serves."""
        url = self.url
        try:
            body, etag = await self._fetch(url)
        except FeedUnavailable as error:
            if not self.unreachable:
                logger.error(
                    f"aipolicy: policy feed {display(url)} unreachable ({error}); still enforcing {self.target.hash}"
                )
            self.unreachable = True
            return
        except BundleError as error:
            self._reject(url, str(error), "")
            return
        if self.unreachable:
            logger.warning(f"aipolicy: policy feed {display(url)} reachable again")
            self.unreachable = False
        if body is None:
            return  # 304 Not Modified
        digest = hashlib.sha256(body).hexdigest()
        try:
            prepared = await asyncio.to_thread(self._prepare, body, etag)
        except (BundleError, PolicyError) as error:
            self.etag = etag  # not fetched again until it changes
            self._reject(url, str(error), digest)
            return
        except OSError as error:  # the cache could not be written: try again next time
            self._reject(url, f"cannot unpack into {self.cache}: {error}", digest)
            return
        self.etag = etag
        if prepared is not None:
            self._adopt(*prepared, source=url)

    def _warn_if_expired(self) -> None:
        """Once per bundle: it is still enforced after it expires, but the feed should have replaced it."""
        current = self.current
        if current and current.digest != self.expired_warned and current.expires <= datetime.datetime.now(datetime.UTC):
            self.expired_warned = current.digest
            logger.warning(
                f"aipolicy: the policy bundle in force expired at {current.manifest['expires']}; still enforcing it "
                f"until {display(self.url)} serves a newer one (re-sign the policy)"
            )

    async def _fetch(self, url: str) -> tuple[bytes | None, str]:
        """(body, etag), or (None, etag) when not modified."""
        if not url.startswith(("http://", "https://")):
            return await asyncio.to_thread(self._read_local, url)
        try:
            fetched = await aipolicy.fetch_capped_async(
                url,
                max_bytes=self.max_bytes,
                accept="application/json",
                headers={"if-none-match": self.etag} if self.etag else {},
                statuses=(200, 304),
                timeout=TIMEOUT.read,
                connect_timeout=TIMEOUT.connect,
                deadline=DEADLINE,
                trust_env=False,
                transport=self.transport,
            )
        except aipolicy.FetchTooLarge as error:
            raise BundleError(f"the feed {error.reason}") from None
        except aipolicy.FetchError as error:
            raise FeedUnavailable(error.reason) from None
        if fetched.status == 304:
            return None, self.etag
        return fetched.body, fetched.headers.get("etag", "")

    def _read_local(self, path: str) -> tuple[bytes | None, str]:
        try:
            info = os.stat(path)
            if info.st_size > self.max_bytes:
                raise BundleError(f"{path} is {info.st_size:,} bytes, over the limit of {self.max_bytes:,}")
            tag = f"{info.st_mtime_ns}-{info.st_size}-{info.st_ino}"
            if tag == self.etag:
                return None, tag
            with open(path, "rb") as handle:
                return handle.read(self.max_bytes + 1), tag
        except OSError as error:
            raise FeedUnavailable(error.strerror or str(error)) from None

    def _prepare(self, body: bytes, etag: str) -> tuple[Bundle, Policy, Path] | None:
        """Verify, unpack and load a fetched bundle (in a worker thread); None if it is the one in force."""
        bundle = verify_bundle(body, self.public_key, max_bytes=self.max_bytes)
        current = self.current
        if current is not None and bundle.digest == current.digest:
            return None
        if current is not None and bundle.signed_at < current.signed_at:
            raise BundleError(
                f"the bundle was signed at {bundle.manifest['signed_at']}, before the one in force "
                f"({current.manifest['signed_at']}): an old bundle served again is not accepted"
            )
        bundles = self.cache / "bundles"
        self._prune(bundles, keep=current)
        path = unpack_fresh(bundle, bundles)
        policy = aipolicy.load_policy(path)
        _write_atomically(self.cache / "bundle.json", body)
        _write_atomically(self.cache / "etag", etag.encode("utf-8", "replace"))
        return bundle, policy, path

    def _adopt(self, bundle: Bundle, policy: Policy, path: Path, source: str) -> None:
        self.current, self.policy_file, self.last_rejection = bundle, str(path), ("", "")
        if bundle.policy_sha256 and bundle.policy_sha256 != policy.sha256:
            logger.warning(
                "aipolicy: the feed's policy hashes differently here than where it was signed "
                "(it uses a shipped file, such as the built-in catalogue, of another aipolicy version)"
            )
        self.target.install(
            policy,
            f"policy from the feed {display(source)}",
            source=display(source),
            bundle=bundle.digest[:16],
            signed_at=bundle.manifest["signed_at"],
            expires=bundle.manifest["expires"],
            key_id=bundle.key_id if bundle.signed else None,
        )

    def _reject(self, url: str, reason: str, digest: str) -> None:
        if (reason, digest) == self.last_rejection:
            return  # the same bad bundle again: recorded once
        self.last_rejection = (reason, digest)
        self.target.reject(display(url), f"policy feed: {reason}", source=display(url), bundle_sha256=digest or None)

    # --- the cache ------------------------------------------------------------

    def _use_cache(self) -> None:
        """At start-up: enforce the last good bundle, if there is one, until the feed answers."""
        cached = self.cache / "bundle.json"
        if not cached.exists():
            return
        try:
            body = cached.read_bytes()
            bundle = verify_bundle(body, self.public_key, max_bytes=self.max_bytes, allow_expired=True)
            path = unpack_fresh(bundle, self.cache / "bundles")
            policy = aipolicy.load_policy(path)
        except (BundleError, PolicyError, OSError) as error:
            logger.error(f"aipolicy: the cached policy bundle {cached} is not usable, so it is ignored:\n{error}")
            return
        if bundle.expires <= datetime.datetime.now(datetime.UTC):
            logger.warning(
                f"aipolicy: the cached policy bundle expired at {bundle.manifest['expires']}; enforcing it until the feed answers"
            )
        try:
            self.etag = (self.cache / "etag").read_text("utf-8")[:1024]
        except OSError:
            self.etag = ""
        self._adopt(bundle, policy, path, source=f"{self.url} (cached)")

    @staticmethod
    def _prune(bundles: Path, keep: Bundle | None) -> None:
        """Remove unpacked bundles other than the one in force."""
        if not bundles.is_dir():
            return
        for entry in bundles.iterdir():
            if keep is None or entry.name != keep.digest[:16]:
                shutil.rmtree(entry, ignore_errors=True)
