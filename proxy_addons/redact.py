"""The ``redact`` action: the request goes on with what the rule's DLP detectors found replaced.
``aipolicy.evaluate`` makes the redacted body, or turns the decision into a block when something
would remain (a secret used as a JSON key, say).
"""

from __future__ import annotations

from mitmproxy import http

from aipolicy import Decision, RequestFacts

from .recorder import Recording
from .responses import Blocker


class Redact:
    def __init__(self, recorder: Recording, blocker: Blocker) -> None:
        self.recorder, self.blocker = recorder, blocker

    def apply(
        self, flow: http.HTTPFlow, decision: Decision, facts: RequestFacts, redacted: bytes | None, note: str = ""
    ) -> None:
        """Forward the redacted body (aipolicy.evaluate made it) and record the redaction."""
        if redacted is None:  # evaluate() turns a redaction it cannot make into a block: never forward unredacted
            raise RuntimeError("a redact decision without its redacted body")
        if not self.recorder.record(decision, facts, "request", flow=flow, note=note):
            self.blocker.unlogged(flow, decision, facts)
            return
        flow.request.content = redacted  # encoded again as the request declares; Content-Length follows
        flow.metadata["aipolicy_redacted"] = dict(decision.dlp or {})
