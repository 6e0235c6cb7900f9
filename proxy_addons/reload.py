"""The policy in force: loaded at start-up, reloaded when its files change (hot reload), and
replaced by the policy feed through ``install``. A policy that does not load never replaces
the last good one: the attempt is recorded as ``policy_rejected``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from mitmproxy import ctx, exceptions

import aipolicy
from aipolicy import Policy, PolicyError

from .recorder import Recording

logger = logging.getLogger("aipolicy")


class Reloader:
    def __init__(self, recorder: Recording, metrics: aipolicy.Metrics, override: Callable[[], str]) -> None:
        self.recorder, self.metrics = recorder, metrics
        self.override = override  # the policy file a followed feed unpacked, if any: it wins over the option
        self.policy: Policy | None = None
        self.fingerprint: tuple[object, ...] = ()
        self.rejected: tuple[object, ...] = ()
        self.interval = 2.0
        self.watcher: asyncio.Task[None] | None = None

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option("aipolicy_policy", str, "", "Policy file to enforce. Empty: the shipped default policy.")
        loader.add_option(
            "aipolicy_reload",
            str,
            "2",
            "Time between checks of the policy files for changes: seconds, or 30s, 5m; 0 turns hot reload off.",
        )

    def configure(self, updated: set[str]) -> None:
        if "aipolicy_policy" in updated:
            self.policy = self.load_file(self.path())
            self.fingerprint = fingerprint(self.policy.files)
            self._summary()
        if "aipolicy_reload" in updated:
            try:
                self.interval = aipolicy.parse_duration(ctx.options.aipolicy_reload, zero="off")
            except ValueError as error:
                raise exceptions.OptionsError(f"aipolicy_reload: {error}") from None

    def running(self) -> None:
        if self.interval > 0 and self.watcher is None:
            self.watcher = asyncio.get_running_loop().create_task(self._watch())

    def done(self) -> None:
        if self.watcher:
            self.watcher.cancel()

    @property
    def hash(self) -> str:
        return self.policy.hash if self.policy else ""

    def path(self) -> str:
        """The policy file to enforce: a followed feed's, else the option's, else the shipped default."""
        return self.override() or ctx.options.aipolicy_policy or str(aipolicy.default_policy())

    @staticmethod
    def load_file(path: str) -> Policy:
        try:
            policy = aipolicy.load_policy(path)
        except PolicyError as error:
            raise exceptions.OptionsError(f"aipolicy: policy {path!r} does not load:\n{error}") from None
        for warning in policy.warnings:
            logger.warning(f"aipolicy: {warning}")
        return policy

    def install(self, policy: Policy, message: str, **extra: object) -> None:
        """Enforce policy from now on and record a policy_loaded event (hot reload, the policy feed)."""
        old = self.hash
        self.policy, self.fingerprint, self.rejected = policy, fingerprint(policy.files), ()
        logger.warning(f"aipolicy: policy reloaded: {old} -> {policy.hash}")
        self._summary()
        self.recorder.write(
            aipolicy.system_event(
                "policy_loaded", message, policy=policy.hash, proxy_id=self.recorder.proxy_id, previous=old, **extra
            )
        )

    def reject(self, origin: str, reason: str, **extra: object) -> None:
        """Record a policy_rejected event; the policy in force stays."""
        logger.error(f"aipolicy: new policy {origin!r} rejected; still enforcing {self.hash}:\n{reason}")
        self.recorder.write(
            aipolicy.system_event("policy_rejected", reason, policy=self.hash, proxy_id=self.recorder.proxy_id, **extra)
        )

    async def reload_if_changed(self) -> None:
        if self.override():
            return  # a followed feed's policy changes only through a verified bundle
        files = self.policy.files if self.policy else (self.path(),)
        current = fingerprint(files)
        if (current == self.fingerprint and not (self.policy and self.policy.stale)) or current == self.rejected:
            return  # unchanged (and no rule has expired since it was loaded), or already rejected
        path = self.path()
        try:
            policy = await asyncio.to_thread(aipolicy.load_policy, path)
        except PolicyError as error:
            self.rejected = current
            self.reject(path, str(error), file=path)
            return
        self.install(policy, f"policy reloaded from {path}")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(max(self.interval, 0.2))
            try:
                await self.reload_if_changed()
            except Exception:  # keep watching whatever happens; the last good policy stays
                logger.exception("aipolicy: policy reload failed")

    def _summary(self) -> None:
        policy = self.policy
        assert policy is not None
        actions = {a: sum(r.action == a for r in policy.rules) for a in ("block", "monitor", "allow")}
        self.metrics.loaded(policy.hash, policy.path, len(policy.rules))
        logger.info(
            f"aipolicy: enforcing {policy.path} (policy {policy.hash}): {len(policy.rules)} rules "
            f"({actions['block']} block, {actions['monitor']} monitor, {actions['allow']} allow), "
            f"{policy.hosts.size:,} host patterns, default {policy.default}"
        )


def fingerprint(files: tuple[str, ...]) -> tuple[object, ...]:
    result: list[object] = []
    for name in files:
        try:
            info = os.stat(name)
            result.append((name, info.st_mtime_ns, info.st_size, info.st_ino))
        except OSError:
            result.append((name, None))
    return tuple(result)
