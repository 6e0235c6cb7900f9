"""What the proxy answers in place of the upstream: the 403s, the block page, and the decisions
that stand in for one the policy could not make (an internal error, an unwritable log).

Plain functions of a flow and a decision; no state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from mitmproxy import http

import aipolicy
from aipolicy import Decision, Policy, RequestFacts

from .recorder import Recording


def block_headers(decision: Decision, content_type: str) -> dict[str, str]:
    return {
        "content-type": content_type,
        "cache-control": "no-store",
        "x-aipolicy-rule": decision.rule,
        "proxy-status": f'aipolicy; error=http_request_denied; details="rule {decision.rule}"',
    }


def json_refusal(decision: Decision, status: int = 403, **details: str) -> http.Response:
    """A JSON error for API clients (``details`` go to aipolicy.json_error: lead, kind, code, hint)."""
    return http.Response.make(
        status, aipolicy.json_error(decision, **details), block_headers(decision, "application/json")
    )


def wants_page(request: http.Request) -> bool:
    """A browser navigating (not an API client, not a WebSocket): it gets an HTML page."""
    headers = request.headers
    return aipolicy.wants_html(headers) and headers.get("upgrade", "").lower() != "websocket"


def block_response(request: http.Request, decision: Decision, title: str) -> http.Response:
    """The block page for a browser, a JSON error for anything else."""
    if not wants_page(request):
        return json_refusal(decision)
    body = aipolicy.block_page(decision, request.pretty_url.split("?", 1)[0], title)
    return http.Response.make(403, body, block_headers(decision, "text/html; charset=utf-8"))


def error_decision(error: Exception, policy_hash: str, names: tuple[str, ...]) -> Decision:
    return Decision(
        "block",
        "aipolicy:internal-error",
        f"aipolicy could not decide ({type(error).__name__}); blocked to fail closed",
        host=names[0] if names else "",
        hosts=names,
        policy=policy_hash,
    )


def unlogged(decision: Decision) -> Decision:
    return replace(
        decision,
        action="block",
        rule="aipolicy:log-unavailable",
        reason=f"the event log cannot be written, so AI-app traffic is blocked (would have been: {decision.action} by rule {decision.rule})",
    )


def human_duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"


class Blocker:
    """Answers a request with its block response and records the block."""

    def __init__(self, recorder: Recording, policy: Callable[[], Policy | None]) -> None:
        self.recorder, self.policy = recorder, policy

    def block(self, flow: http.HTTPFlow, decision: Decision, facts: RequestFacts, note: str = "") -> None:
        policy = self.policy()
        flow.response = block_response(flow.request, decision, policy.block_page_title if policy else "Blocked")
        self.recorder.record(decision, facts, "request", flow=flow, note=note)

    def unlogged(self, flow: http.HTTPFlow, decision: Decision, facts: RequestFacts) -> None:
        """The event of ``decision`` could not be written: block instead (fail closed)."""
        self.block(flow, unlogged(decision), facts)
