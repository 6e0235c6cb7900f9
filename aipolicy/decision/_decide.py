"""The one decision function. The proxy calls it at each hook; the CLI calls it
for ``aipolicy policy test``; nothing here does I/O."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from operator import itemgetter

from aipolicy.controls import is_write
from aipolicy.dlp import ScanLimitError, Scanner
from aipolicy.matching import PathPattern, normalise_host, normalise_path, parse_ip
from aipolicy.policy import App, DlpCondition, Entry, ModelCondition, ModelReader, Policy, PolicyException, Rule

SEVERITY = {"allow": 0, "read-only": 1, "monitor": 1, "redact": 2, "quota": 2, "warn": 2, "block": 3}
# Names whose decision depends on neither path nor body are remembered per policy, so a name seen
# again costs one normalisation and one dict lookup. Bounded: a full cache is emptied and refilled.
DECISION_CACHE_SIZE = 16_384
_FIRST = itemgetter(0)


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the proxy knows about a request when it asks. ``path`` is None at
    connection level (CONNECT, TLS ClientHello), before a request is seen."""

    hosts: tuple[str, ...]  # every name presented: CONNECT target, SNI, Host / :authority
    path: str | None = None
    method: str = ""
    scheme: str = ""
    port: int = 0
    client_ip: str = ""
    user: str = ""
    groups: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    time: datetime.datetime | None = None  # when the request was made, for time windows; None: now


@dataclass(slots=True)
class Decision:
    """What to do with a request. Treat it as immutable: the policy shares some decisions between requests."""

    action: str  # "block", "monitor" or "allow"
    rule: str  # a rule id, or "default"
    reason: str
    final: bool = True  # False: a rule needs the decrypted request to decide
    host: str = ""  # the normalised name that decided
    hosts: tuple[str, ...] = ()
    app: str = ""
    app_name: str = ""
    vendor: str = ""
    vendor_name: str = ""
    categories: tuple[str, ...] = ()
    country: str = ""
    directive: Mapping[str, str] | None = None
    contact: str = ""
    policy: str = ""
    model: str = ""  # the model id that matched a model rule
    control: str = ""  # "read-only" when a read-only rule refused a submission
    exception: Mapping[str, str] | None = None  # the exception that lifted a rule for this request
    dlp: Mapping[str, int] | None = None  # DLP findings: detector name -> count (never the matched text)

    @property
    def blocked(self) -> bool:
        """Blocked for certain; a non-final "block" only says what an undecided rule would do."""
        return self.action == "block" and self.final

    def as_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "rule": self.rule,
            "reason": self.reason,
            "final": self.final,
            "host": self.host,
            "hosts": list(self.hosts),
            "app": self.app or None,
            "vendor": self.vendor or None,
            "categories": list(self.categories),
            "country": self.country or None,
            "directive": dict(self.directive) if self.directive else None,
            "contact": self.contact or None,
            "policy": self.policy,
            "model": self.model or None,
            "control": self.control or None,
            "exception": dict(self.exception) if self.exception else None,
            "dlp": dict(self.dlp) if self.dlp else None,
        }


def decide(policy: Policy, facts: RequestFacts) -> Decision:
    """Decide what to do with a request, or a connection when ``facts.path`` is None.

    Each name the client presented is judged on its own (first matching rule
    wins); the most severe verdict over all names stands, so a banned SNI or
    Host header behind an innocent CONNECT target is still blocked.
    """
    hosts = facts.hosts
    if len(hosts) == 1:
        name = normalise_host(hosts[0])
        known = policy.decisions.get(name)
        if known is not None:
            return known  # type: ignore[no-any-return]
        return _decide_name(policy, name, facts, (name,), None)
    names = tuple(dict.fromkeys(normalise_host(h) for h in hosts if h))
    if len(names) == 1:  # the usual request: the Host header names the host it was sent to
        name = names[0]
        known = policy.decisions.get(name)
        if known is not None:
            return known  # type: ignore[no-any-return]
        return _decide_name(policy, name, facts, names, None)
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


def decide_oversize(policy: Policy, facts: RequestFacts, size: int) -> Decision:
    """A body a model rule needs is larger than the policy lets the proxy read."""
    names = tuple(dict.fromkeys(normalise_host(h) for h in facts.hosts if h))
    reason = (
        f"the request body ({size:,} bytes) is larger than the {policy.inspect_max_bytes:,} bytes the policy "
        f"inspects for model rules; settings.oversize is {policy.oversize}"
    )
    rule = Rule("aipolicy:body-too-large", policy.oversize, reason=reason)
    return _verdict(policy, rule, names[0] if names else "", None, names, cache=False)


def _decide_name(
    policy: Policy, name: str, facts: RequestFacts, names: tuple[str, ...], reader: ModelReader | None
) -> Decision:
    # first: the entry of the first rule (in policy order) that matches the name; candidates:
    # every entry that matches; app: the catalogue app the name belongs to, for rules that name none
    address = parse_ip(name) if name[-1:].isdigit() or ":" in name else None  # parse_ip's own first test
    if address is None:
        first, candidates, in_order, app = policy.hosts.walk(name)
    else:
        candidates, in_order, app = tuple(sorted(policy.networks.lookup(address), key=_FIRST)), True, None
        first = candidates[0] if candidates else None
    if policy.always:
        candidates, in_order = tuple(sorted(candidates + policy.always, key=_FIRST)), True  # stable, as the index
        first = candidates[0]
    if address is None:
        app = app or policy.hosts.no_companion
    if first is None:
        decision = _default(policy, name, names)
    elif first[1] is None and policy.rules[first[0]].plain:
        # the common case: the first rule that matches has no further condition
        decision = _verdict(policy, policy.rules[first[0]], name, first[2] or app, names)
    else:
        rule = policy.rules[first[0]]
        if first[1] is None and not rule.personal:  # read-only: the method and headers decide
            return _read_only(policy, rule, name, first[2] or app, names, facts)
        if not in_order:
            candidates = tuple(sorted(candidates, key=_FIRST))  # stable: ties keep lookup order
        return _decide_conditions(policy, name, facts, names, reader, candidates, app)
    if len(names) == 1:  # remember a decision that only the name made
        cache = policy.decisions
        if len(cache) >= DECISION_CACHE_SIZE:
            cache.clear()
        cache[name] = decision
    return decision


def _decide_conditions(
    policy: Policy,
    name: str,
    facts: RequestFacts,
    names: tuple[str, ...],
    reader: ModelReader | None,
    candidates: tuple[Entry, ...],
    name_app: str | None,
) -> Decision:
    """The first rule, in policy order, whose conditions (who, path, model, body) hold.
    ``name_app``: the catalogue app of the name ("" none, None not looked up yet)."""
    raw_path = facts.path
    path = None
    who: _Who | None = None
    excused: PolicyException | None = None
    rules = policy.rules
    for rule_index, condition, app in candidates:
        rule = rules[rule_index]
        app = app or name_app
        if rule.personal:
            who = who or _Who(policy, facts)
            if rule.scope is not None and not rule.scope.applies(who.user, who.groups, who.client_ip, who.moment):
                continue
        model = ""
        findings: dict[str, int] | None = None
        if condition is not None:
            if raw_path is None:  # connection level: only the decrypted request can tell
                return _verdict(policy, rule, name, app, names, final=False)
            scanner = None
            if type(condition) is DlpCondition:
                scanner, condition = condition.scanner, condition.inner
            if type(condition) is PathPattern:
                if path is None:
                    path = normalise_path(raw_path)
                if not condition.matches(path):
                    continue
            elif condition is not None:
                assert isinstance(condition, ModelCondition)
                if condition.body_only and facts.body is None:  # what ModelReader would say, without one
                    return _verdict(policy, rule, name, app, names, final=False)
                if reader is None:
                    reader = ModelReader(raw_path, facts.headers, facts.body)
                models = reader.models(condition.provider)
                if models is None:  # the model id is in the body, not read yet
                    return _verdict(policy, rule, name, app, names, final=False)
                hit = condition.match(models)
                if hit is None:
                    continue
                model, app = hit
                app = app or name_app
            if scanner is not None:
                if facts.body is None:  # the body is not read yet
                    return _verdict(policy, rule, name, app, names, final=False)
                findings = scan_request(scanner, facts)
                if not findings:
                    continue
        if rule.exceptions:
            assert who is not None
            lifted = _exception_for(rule, who)
            if lifted is not None:
                excused = excused or lifted
                continue  # lifted for this user: the next rule decides
        if rule.action == "read-only":
            verdict = _read_only(policy, rule, name, app, names, facts)
        else:
            verdict = _verdict(policy, rule, name, app, names, model=model)
        if findings:
            verdict = _with_findings(verdict, findings)
        return verdict if excused is None else _excused(verdict, excused)
    return _excused(_default(policy, name, names), excused)


class _Who:
    """Who asks, from where and when: worked out once per decision, only for personal rules."""

    __slots__ = ("user", "groups", "client_ip", "moment")

    def __init__(self, policy: Policy, facts: RequestFacts) -> None:
        self.user = facts.user
        self.groups = frozenset(g.casefold() for g in facts.groups) | policy.groups_of(facts.user)
        self.client_ip = facts.client_ip
        self.moment = facts.time or datetime.datetime.now(datetime.UTC)


def _exception_for(rule: Rule, who: _Who) -> PolicyException | None:
    for exception in rule.exceptions:
        if exception.active(who.moment) and exception.scope.applies(who.user, who.groups, who.client_ip, who.moment):
            return exception
    return None


def scan_request(scanner: Scanner, facts: RequestFacts) -> dict[str, int]:
    """DLP findings (detector -> count) in a decoded request body; a body too large to scan
    counts as a finding of its own, so that the rule's action applies (fail closed)."""
    assert facts.body is not None
    try:
        return scanner.scan_body(facts.body, facts.headers.get("content-type", ""))
    except ScanLimitError:
        return {"dlp.too-large-to-scan": 1}


def _with_findings(decision: Decision, findings: dict[str, int]) -> Decision:
    found = ", ".join(f"{name} ({count})" for name, count in sorted(findings.items()))
    action = decision.action
    if action == "redact" and "dlp.too-large-to-scan" in findings:
        action = "block"  # what was not scanned cannot be redacted
    return replace(decision, action=action, reason=f"{decision.reason}; found: {found}", dlp=dict(findings))


def _excused(decision: Decision, exception: PolicyException | None) -> Decision:
    return decision if exception is None else replace(decision, exception=exception.as_dict())


def _read_only(
    policy: Policy, rule: Rule, name: str, app: str | None, names: tuple[str, ...], facts: RequestFacts
) -> Decision:
    """Browsing passes; a request that submits something (a body, a WebSocket) is blocked."""
    verdict = _verdict(policy, rule, name, app, names, final=facts.path is not None)
    if facts.path is None or not is_write(facts.method, facts.headers):
        return verdict  # connection level: decrypt and look at each request
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
    cache: bool = True,
) -> Decision:
    catalog = policy.catalog
    if app_id is None:
        app_id = catalog.index.first(name)  # the app the name belongs to, if any ("": looked up, none)
    key = ("verdict", rule.id, app_id)
    template = policy.cache.get(key) if cache else None
    if template is None:
        template = _template(policy, rule, catalog.apps.get(app_id) if app_id else None)
        if cache:
            policy.cache[key] = template
    (
        action,
        rule_id,
        reason,
        names_host,
        app_key,
        app_name,
        vendor_id,
        vendor_name,
        categories,
        country,
        directive,
        contact,
        digest,
    ) = template
    if names_host:
        reason = name + reason
    return Decision(
        action, rule_id, reason, final, name, names, app_key, app_name, vendor_id, vendor_name, categories, country,
        directive, contact, digest, model,
    )  # fmt: skip


_Template = tuple[str, str, str, bool, str, str, str, str, tuple[str, ...], str, Mapping[str, str] | None, str, str]


def _template(policy: Policy, rule: Rule, app: App | None) -> _Template:
    """The parts of a verdict that the rule and the app make: all but the name (and, when the
    reason is made up and no app is known, the reason's subject, which is the name)."""
    vendor = policy.catalog.vendors.get(app.vendor) if app else None
    names_host = not rule.reason and app is None
    if rule.reason:
        reason = rule.reason
    else:
        reason = (app.name if app else "") + _reason_tail(rule.action, rule.id)
    return (
        rule.action,
        rule.id,
        reason,
        names_host,
        app.id if app else "",
        app.name if app else "",
        vendor.id if vendor else "",
        vendor.name if vendor else "",
        app.categories if app else (),
        vendor.country if vendor else "",
        rule.directive,
        rule.contact or policy.contact,
        policy.hash,
    )


def _default(policy: Policy, name: str = "", names: tuple[str, ...] = ()) -> Decision:
    """The decision when no rule matches. Allow, the hot path, is built once per
    policy and shared (it is immutable, and never logged); a monitor or block
    default names the host and its app, for the event."""
    if policy.default != "allow":
        rule = Rule("default", policy.default, reason=f"no rule matched; the policy's default is {policy.default}")
        return _verdict(policy, rule, name, None, names, cache=False)
    cached = policy.cache.get("default")
    if cached is None:
        cached = policy.cache["default"] = Decision(
            "allow", "default", "no rule matched; the policy's default is allow", policy=policy.hash
        )
    return cached


def _reason_tail(action: str, rule_id: str) -> str:
    """A made-up reason without its subject: " is blocked by rule r"."""
    verb = {
        "block": "is blocked",
        "warn": "needs a confirmation",
        "read-only": "is read-only",
        "quota": "has a usage budget",
        "redact": "has sensitive data removed",
        "monitor": "is monitored",
        "allow": "is allowed",
    }[action]
    return f" {verb} by rule {rule_id}"
