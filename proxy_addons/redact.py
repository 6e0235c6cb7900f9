"""The ``redact`` action: the request goes on with what the rule's DLP detectors found replaced,
or is blocked when something would remain (a secret used as a JSON key, say).
"""

from __future__ import annotations

from dataclasses import replace

from mitmproxy import http

import aipolicy
from aipolicy import Decision, Policy, RequestFacts

from .recorder import Recording
from .responses import Blocker


def redacted_body(policy: Policy, decision: Decision, facts: RequestFacts) -> bytes | None:
    """The body with what the rule's detectors found replaced, or None if something would remain:
    then the request is blocked instead. Pure work, safe in a thread."""
    assert facts.body is not None
    rule = policy.rule(decision.rule)
    if rule is None or rule.dlp is None:
        return None
    content_type = facts.headers.get("content-type", "")
    redacted, _ = rule.dlp.redact_body(facts.body, content_type)
    if aipolicy.scan_request(rule.dlp, replace(facts, body=redacted)):
        return None
    return redacted


class Redact:
    def __init__(self, recorder: Recording, blocker: Blocker) -> None:
        self.recorder, self.blocker = recorder, blocker

    def apply(self, flow: http.HTTPFlow, decision: Decision, facts: RequestFacts, redacted: bytes | None) -> None:
        """Forward the redacted body and record the redaction, or block if it could not be made."""
        if redacted is None:
            reason = f"{decision.reason}; it could not be redacted completely, so the request was not sent"
            self.blocker.block(flow, replace(decision, action="block", reason=reason), facts)
            return
        if not self.recorder.record(decision, facts, "request", flow=flow):
            self.blocker.unlogged(flow, decision, facts)
            return
        flow.request.content = redacted  # encoded again as the request declares; Content-Length follows
        flow.metadata["aipolicy_redacted"] = dict(decision.dlp or {})
