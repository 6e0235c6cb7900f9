"""The ``quota`` control: a budget of requests and/or bytes per user (or client) and window;
over it, 429 with Retry-After. A volume far above the subject's usual one is a ``volume`` event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from mitmproxy import http

from aipolicy import Decision, Policy, RequestFacts

from .recorder import Recording
from .responses import Blocker, human_duration, json_refusal
from .shared_controls import Controlled

COUNT_BATCH = 256 * 1024  # bytes of a streamed response counted against a byte quota at once
METADATA = "aipolicy_quota"  # on a flow within its budget: (rule id, subject, settings), to count its bytes


class Quota:
    def __init__(self, stores: Controlled, recorder: Recording, blocker: Blocker, clock: Callable[[], float]) -> None:
        self.stores, self.recorder, self.blocker, self.clock = stores, recorder, blocker, clock

    def over(self, flow: http.HTTPFlow, decision: Decision, facts: RequestFacts, size: int, policy: Policy) -> bool:
        """Charge the request (``size``: its declared body size) to its budget. True if it was
        answered (429, or blocked because the event could not be written); False lets it pass."""
        rule = policy.rule(decision.rule)
        if rule is None or rule.quota is None:
            return False
        settings = rule.quota
        subject = facts.client_ip if settings.by == "client" else (facts.user or facts.client_ip)
        verdict = self.stores.quotas.charge(rule.id, subject, settings, size, self.clock())
        if verdict.alert:
            reason = (
                f"{subject} sent {verdict.requests} requests to {decision.app_name or decision.host} in one "
                f"{human_duration(settings.per)} window, about {verdict.requests / verdict.baseline:.0f}x their "
                f"usual {verdict.baseline:.0f}"
            )
            event = self.recorder.event(replace(decision, action="monitor", reason=reason), facts, flow)
            event.update(event="volume", requests=verdict.requests, baseline=verdict.baseline)
            self.recorder.write(event)
        if verdict.allowed:
            flow.metadata[METADATA] = (rule.id, subject, settings)
            return False
        used = f"{verdict.requests} requests" + (f", {verdict.bytes:,} bytes" if settings.bytes else "")
        refused = replace(
            decision,
            reason=f"the budget of rule {rule.id} is used up for this {human_duration(settings.per)} window ({used})",
        )
        flow.response = json_refusal(
            refused, 429, lead="Usage limit of your organisation's AI policy reached", kind="rate_limit_error",
            code="aipolicy_quota", hint=f"Try again in {verdict.retry_after} seconds.",
        )  # fmt: skip
        flow.response.headers["retry-after"] = str(verdict.retry_after)
        event = self.recorder.event(refused, facts, flow)
        event.update(retry_after=verdict.retry_after, window_requests=verdict.requests, window_bytes=verdict.bytes)
        if not self.recorder.write(event):
            self.blocker.unlogged(flow, decision, facts)
        return True

    def count_bytes(self, flow: http.HTTPFlow, size: int) -> None:
        rule_id, subject, settings = flow.metadata[METADATA]
        self.stores.quotas.add_bytes(rule_id, subject, settings, size, self.clock())

    def byte_counter(self, flow: http.HTTPFlow) -> Callable[[bytes], bytes]:
        """A response stream function that counts the bytes passing, charged in batches of
        COUNT_BATCH bytes and at the end (mitmproxy passes b"" then): with shared state each
        charge is a database write, so not one per chunk."""
        pending = 0

        def count(chunk: bytes) -> bytes:
            nonlocal pending
            pending += len(chunk)
            if pending and (not chunk or pending >= COUNT_BATCH):
                self.count_bytes(flow, pending)
                pending = 0
            return chunk

        return count
