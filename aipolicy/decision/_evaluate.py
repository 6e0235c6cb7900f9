"""The whole request sequence, which the proxy and ``aipolicy policy test`` share: decide on the
headers; when a rule needs the body, read and decode it within the policy's cap (a body past it
gets ``settings.oversize``); decide with it; redact, or block when a match would survive.

Pure: no I/O and no clock beyond what ``decide`` reads, so the proxy can run it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from aipolicy.policy import Policy

from ._bodies import BodyTooLarge, decode_body
from ._decide import Decision, RequestFacts, decide, decide_oversize, scan_request

_Decide = Callable[[Policy, RequestFacts], Decision]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What to do with a request, and what was learnt about its body on the way."""

    decision: Decision
    facts: RequestFacts  # the facts decided on (with the decoded body when one was read)
    needs_body: bool = False  # the headers alone do not decide: read the body, then evaluate again with it
    redacted: bytes | None = None  # a redact decision's decoded body with the findings replaced
    oversize: int = 0  # the size of a body too large to inspect (0 otherwise)
    note: str = ""  # what the event should say about how the body was read, if anything


def evaluate(
    policy: Policy,
    facts: RequestFacts,
    body: bytes | None = None,
    *,
    content_encoding: str = "",
    declared_size: int = 0,
    decide: _Decide = decide,
    provisional: Decision | None = None,
) -> Evaluation:
    """Evaluate a request at the headers (``body`` None) or with its body (the raw bytes as sent,
    still content-encoded as ``content_encoding`` says).

    At the headers, ``facts.body`` is b"" when the headers say no body follows, else None; a body
    a rule needs but ``declared_size`` (the Content-Length) puts past the cap is not waited for.
    With the body, ``provisional`` is the headers' decision when the caller has it (it is not
    made again). ``decide`` is injectable: the proxy times decisions through it."""
    if body is None:
        decision = decide(policy, facts)
        if decision.final:
            return _settled(policy, decision, facts)
        if declared_size > policy.inspect_max_bytes:
            return _oversize(policy, facts, declared_size)
        return Evaluation(decision, facts, needs_body=True)
    unread = replace(facts, body=None)
    decision = provisional if provisional is not None else decide(policy, unread)
    if decision.final:
        return _settled(policy, decision, unread)
    limit = policy.inspect_max_bytes
    if len(body) > limit:
        return _oversize(policy, unread, len(body))
    note = ""
    try:
        decoded = decode_body(body, content_encoding, limit)
    except BodyTooLarge as error:
        note = f"the {len(body):,}-byte body decodes ({content_encoding}) to more than {limit:,} bytes"
        return _oversize(policy, unread, error.size or limit + 1, note)
    except ValueError as error:
        decoded, note = body, f"the body could not be decoded ({error}), so the bytes as sent were inspected"
    read = replace(facts, body=decoded)
    return _settled(policy, decide(policy, read), read, note)


def _oversize(policy: Policy, facts: RequestFacts, size: int, note: str = "") -> Evaluation:
    return Evaluation(decide_oversize(policy, facts, size), facts, oversize=size, note=note)


def _settled(policy: Policy, decision: Decision, facts: RequestFacts, note: str = "") -> Evaluation:
    """A final decision; a redact one comes with the redacted body, or becomes a block."""
    if decision.action != "redact" or not decision.final:
        return Evaluation(decision, facts, note=note)
    redacted = _redacted_body(policy, decision, facts)
    if redacted is None:
        reason = f"{decision.reason}; it could not be redacted completely, so the request was not sent"
        return Evaluation(replace(decision, action="block", reason=reason), facts, note=note)
    return Evaluation(decision, facts, redacted=redacted, note=note)


def _redacted_body(policy: Policy, decision: Decision, facts: RequestFacts) -> bytes | None:
    """The body with what the rule's detectors found replaced, or None if something would remain
    (a secret used as a JSON key, say) or there is no body to redact."""
    rule = policy.rule(decision.rule)
    if rule is None or rule.dlp is None or facts.body is None:
        return None
    redacted, _ = rule.dlp.redact_body(facts.body, facts.headers.get("content-type", ""))
    if scan_request(rule.dlp, replace(facts, body=redacted)):
        return None
    return redacted


__all__ = ["Evaluation", "evaluate"]
