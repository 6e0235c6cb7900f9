"""The decision as it was computed before the hot path was tuned (the code of 2026-11-30,
commit a9a447a), kept as an oracle: no caches, every candidate listed and sorted per request,
the catalogue app looked up on its own. tests/aipolicy/test_decision_paths.py checks that
:func:`aipolicy.decide` gives equal decisions on random policies and requests."""

from __future__ import annotations

import re
from dataclasses import replace
from operator import itemgetter

from aipolicy import Decision, Policy, RequestFacts
from aipolicy.controls._controls import is_write
from aipolicy.decision._decide import SEVERITY, _exception_for, _excused, _Who, _with_findings, scan_request
from aipolicy.matching._hosts import _decode_and_resolve, normalise_host, parse_ip
from aipolicy.matching._index import PathPattern
from aipolicy.policy._policy import DlpCondition, Entry, Rule
from aipolicy.policy._providers import ModelCondition, ModelReader
from aipolicy.policy._scope import PolicyException

_FIRST = itemgetter(0)


def reference_decide(policy: Policy, facts: RequestFacts) -> Decision:
    if len(facts.hosts) == 1:
        name = normalise_host(facts.hosts[0])
        return _decide_name(policy, name, facts, (name,), None)
    names = tuple(dict.fromkeys(normalise_host(h) for h in facts.hosts if h))
    if len(names) == 1:
        return _decide_name(policy, names[0], facts, names, None)
    best: Decision | None = None
    pending = False
    reader = ModelReader(facts.path, facts.headers, facts.body)
    for name in names:
        verdict = _decide_name(policy, name, facts, names, reader)
        if not verdict.final:
            pending = True
        elif best is None or SEVERITY[verdict.action] > SEVERITY[best.action]:
            best = verdict
    if best is None:
        best = _default(policy, names[0] if names else "", names)
    if pending and not best.blocked:
        return replace(best, final=False)
    return best


def _decide_name(
    policy: Policy, name: str, facts: RequestFacts, names: tuple[str, ...], reader: ModelReader | None
) -> Decision:
    address = parse_ip(name)
    candidates: list[Entry] = policy.networks.lookup(address) if address is not None else policy.hosts.lookup(name)
    if policy.always:
        candidates.extend(policy.always)
    if not candidates:
        return _default(policy, name, names)
    candidates.sort(key=_FIRST)
    raw_path = facts.path
    path = None
    who: _Who | None = None
    excused: PolicyException | None = None
    for rule_index, condition, app in candidates:
        rule = policy.rules[rule_index]
        if rule.personal:
            who = who or _Who(policy, facts)
            if rule.scope is not None and not rule.scope.applies(who.user, who.groups, who.client_ip, who.moment):
                continue
        model = ""
        findings: dict[str, int] | None = None
        if condition is not None:
            if raw_path is None:
                return _verdict(policy, rule, name, app, names, final=False)
            scanner = None
            if type(condition) is DlpCondition:
                scanner, condition = condition.scanner, condition.inner
            if type(condition) is PathPattern:
                if path is None:
                    path = _normalise_path(raw_path)
                if not condition.matches(path):
                    continue
            elif condition is not None:
                assert isinstance(condition, ModelCondition)
                if reader is None:
                    reader = ModelReader(raw_path, facts.headers, facts.body)
                models = reader.models(condition.provider)
                if models is None:
                    return _verdict(policy, rule, name, app, names, final=False)
                hit = condition.match(models)
                if hit is None:
                    continue
                model, app = hit
            if scanner is not None:
                if facts.body is None:
                    return _verdict(policy, rule, name, app, names, final=False)
                findings = scan_request(scanner, facts)
                if not findings:
                    continue
        if rule.exceptions:
            assert who is not None
            lifted = _exception_for(rule, who)
            if lifted is not None:
                excused = excused or lifted
                continue
        if rule.action == "read-only":
            verdict = _read_only(policy, rule, name, app, names, facts)
        else:
            verdict = _verdict(policy, rule, name, app, names, model=model)
        if findings:
            verdict = _with_findings(verdict, findings)
        return _excused(verdict, excused)
    return _excused(_default(policy, name, names), excused)


def _read_only(
    policy: Policy, rule: Rule, name: str, app: str | None, names: tuple[str, ...], facts: RequestFacts
) -> Decision:
    verdict = _verdict(policy, rule, name, app, names, final=facts.path is not None)
    if facts.path is None or not is_write(facts.method, facts.headers):
        return verdict
    subject = verdict.app_name or name
    reason = rule.reason or f"{subject} is read-only under rule {rule.id}: prompts and uploads are not sent"
    return replace(verdict, action="block", reason=reason, control="read-only")


def _verdict(
    policy: Policy,
    rule: Rule,
    name: str,
    app_id: str | None,
    names: tuple[str, ...],
    final: bool = True,
    model: str = "",
) -> Decision:
    catalog = policy.catalog
    app = catalog.apps.get(app_id) if app_id else catalog.app_for_host(name)
    vendor = catalog.vendors.get(app.vendor) if app else None
    return Decision(
        action=rule.action,
        rule=rule.id,
        reason=rule.reason or _default_reason(rule.action, app.name if app else name, rule.id),
        final=final,
        host=name,
        hosts=names,
        app=app.id if app else "",
        app_name=app.name if app else "",
        vendor=vendor.id if vendor else "",
        vendor_name=vendor.name if vendor else "",
        categories=app.categories if app else (),
        country=vendor.country if vendor else "",
        directive=rule.directive,
        contact=rule.contact or policy.contact,
        policy=policy.hash,
        model=model,
    )


def _default(policy: Policy, name: str, names: tuple[str, ...]) -> Decision:
    if policy.default != "allow":
        rule = Rule("default", policy.default, reason=f"no rule matched; the policy's default is {policy.default}")
        return _verdict(policy, rule, name, None, names)
    return Decision("allow", "default", "no rule matched; the policy's default is allow", policy=policy.hash)


def _default_reason(action: str, subject: str, rule_id: str) -> str:
    verb = {
        "block": "is blocked",
        "warn": "needs a confirmation",
        "read-only": "is read-only",
        "quota": "has a usage budget",
        "redact": "has sensitive data removed",
        "monitor": "is monitored",
        "allow": "is allowed",
    }[action]
    return f"{subject} {verb} by rule {rule_id}"


def _normalise_path(raw: str) -> str:
    """normalise_path as it was: a regex for the plain-path fast path (the long way is shared)."""
    plain = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9_~!$&'()*+,;=:@.-]+)*/?")
    path = raw.split("?", 1)[0].split("#", 1)[0]
    if path and plain.fullmatch(path):
        return path.lower()
    return _decode_and_resolve(path)
