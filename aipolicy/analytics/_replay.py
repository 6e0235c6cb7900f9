"""Replaying recorded events against a candidate policy.

Each decision event is turned back into the request facts it recorded (hosts,
SNI, path, method, scheme, port, client address, user, groups) and decided
again by ``decide()``, the function the proxy calls. What a replay cannot know
is listed in ``LIMITS`` and reported with every result.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from aipolicy.decision import Decision, RequestFacts, decide
from aipolicy.eventlog import LogEvent
from aipolicy.policy import Policy

LIMITS = (
    "Only recorded events are replayed: the proxy records block and monitor decisions, never allowed "
    "requests, so traffic the current policy allows and the candidate would block or monitor cannot be found "
    "here (run with a 'default: monitor' policy for a while to record everything).",
    "Request bodies are never logged: a model rule that reads the model id from the body is replayed with the "
    "event's recorded 'model' field; an event without one, where the candidate needs the body, is reported "
    "as undetermined.",
    "Query strings are stripped from logged paths unless settings.log_query was true; headers other than those "
    "recorded (Host, via 'hosts') are not available.",
    "Connection-level events (stage connect, tls, tcp) are replayed without a path, as the proxy decided them.",
)
CONNECTION_STAGES = frozenset(("connect", "tls", "tcp"))
EXAMPLES = 3


@dataclass
class Transition:
    """Events the candidate decides differently in one way: (old action, old rule) -> (new action, new rule)."""

    old_action: str
    old_rule: str
    new_action: str
    new_rule: str
    count: int = 0
    users: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": {"action": self.old_action, "rule": self.old_rule},
            "new": {"action": self.new_action, "rule": self.new_rule},
            "count": self.count,
            "users": dict(self.users.most_common()),
            "examples": self.examples,
        }


@dataclass
class ReplayReport:
    policy: str  # the candidate's hash
    total: int = 0
    same: int = 0
    undetermined: int = 0
    transitions: dict[tuple[str, str, str, str], Transition] = field(default_factory=dict)
    by_user: dict[str, Counter[str]] = field(default_factory=dict)  # user -> "old -> new" counts
    undetermined_examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(t.count for t in self.transitions.values())

    @property
    def action_changed(self) -> int:
        return sum(t.count for t in self.transitions.values() if t.old_action != t.new_action)

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "events": self.total,
            "same": self.same,
            "changed": self.changed,
            "action_changed": self.action_changed,
            "undetermined": self.undetermined,
            "transitions": [t.as_dict() for t in self.sorted_transitions()],
            "by_user": {
                user: dict(counts.most_common())
                for user, counts in sorted(self.by_user.items(), key=lambda item: -sum(item[1].values()))
            },
            "undetermined_examples": self.undetermined_examples,
            "limits": list(LIMITS),
        }

    def sorted_transitions(self) -> list[Transition]:
        return sorted(self.transitions.values(), key=lambda t: (-t.count, t.old_rule, t.new_rule))


def facts_from_event(data: dict[str, Any]) -> RequestFacts:
    """The request facts an event recorded."""
    hosts = [h for h in _strings(data.get("hosts")) if h]
    for extra in (data.get("host"), data.get("sni")):
        if isinstance(extra, str) and extra and extra not in hosts:
            hosts.append(extra)
    stage = data.get("stage")
    path = data.get("path") if isinstance(data.get("path"), str) else ""
    port = data.get("port")
    return RequestFacts(
        hosts=tuple(hosts),
        path=None if stage in CONNECTION_STAGES else (path or "/"),
        method=str(data.get("method") or ""),
        scheme=str(data.get("scheme") or ""),
        port=port if isinstance(port, int) and not isinstance(port, bool) else 0,
        client_ip=str(data.get("client_ip") or ""),
        user=str(data.get("user") or ""),
        groups=tuple(_strings(data.get("groups"))),
    )


def redecide(policy: Policy, data: dict[str, Any]) -> Decision:
    """The candidate's decision on a recorded event; ``final`` is False when it needs a body the log lacks."""
    facts = facts_from_event(data)
    decision = decide(policy, facts)
    model = data.get("model")
    if decision.final or not isinstance(model, str) or not model or facts.path is None:
        return decision
    return decide(policy, _with_model(policy, facts, model))


def _with_model(policy: Policy, facts: RequestFacts, model: str) -> RequestFacts:
    """The facts with the recorded model id placed wherever any provider reads one: a JSON body
    field or a header (model ids in the URL path are in the recorded path already)."""
    fields: dict[str, str] = {}
    headers: dict[str, str] = {"content-type": "application/json"}
    for provider in policy.catalog.providers.values():
        fields.update((name, model) for name in provider.json_fields)
        headers.update((name, model) for name in provider.headers)
    body = json.dumps(fields or {"model": model}).encode()
    return replace(facts, headers=headers, body=body)


def replay(policy: Policy, events: Iterable[LogEvent]) -> ReplayReport:
    """Decide every event again with ``policy`` and count what changes."""
    report = ReplayReport(policy.hash)
    for event in events:
        report.total += 1
        data = event.data
        decision = redecide(policy, data)
        example = _example(event, decision)
        if not decision.final:
            report.undetermined += 1
            if len(report.undetermined_examples) < EXAMPLES:
                report.undetermined_examples.append(example)
            continue
        old_action, old_rule = str(data.get("action") or ""), str(data.get("rule") or "")
        if (old_action, old_rule) == (decision.action, decision.rule):
            report.same += 1
            continue
        key = (old_action, old_rule, decision.action, decision.rule)
        transition = report.transitions.get(key)
        if transition is None:
            transition = report.transitions[key] = Transition(*key)
        user = str(data.get("user") or data.get("client_ip") or "(unknown)")
        transition.count += 1
        transition.users[user] += 1
        if len(transition.examples) < EXAMPLES:
            transition.examples.append(example)
        report.by_user.setdefault(user, Counter())[f"{old_action}:{old_rule} -> {decision.action}:{decision.rule}"] += 1
    return report


def _example(event: LogEvent, decision: Decision) -> dict[str, Any]:
    data = event.data
    return {
        "ts": event.ts,
        "where": f"{event.file}:{event.line}",
        "host": data.get("host"),
        "path": data.get("path"),
        "user": data.get("user"),
        "client_ip": data.get("client_ip"),
        "model": data.get("model"),
        "old": f"{data.get('action')}:{data.get('rule')}",
        "new": f"{decision.action}:{decision.rule}" if decision.final else "undetermined (needs the request body)",
    }


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
