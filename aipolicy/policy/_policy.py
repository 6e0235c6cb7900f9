"""The policy model and its loader.

A policy is an ordered list of rules (first match wins, like a firewall) and a
default action. Loading validates everything and raises one PolicyError that
lists every problem as FILE:LINE:COL; warnings (such as probable typos) are kept
on the loaded policy.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from operator import itemgetter
from pathlib import Path
from typing import Any

from aipolicy._errors import PolicyError, Problem
from aipolicy._resources import shipped_catalog
from aipolicy._units import parse_date, parse_duration, parse_size
from aipolicy.controls import JUSTIFICATION_MODES, QUOTA_SUBJECTS, QuotaSettings, WarnSettings
from aipolicy.dlp import DlpError, Scanner, build_detectors, check_custom_regex, check_keyword, resolve_names
from aipolicy.matching import HostIndex, NetworkIndex, PathPattern, Target, parse_target

from ._catalog import Catalog, load_catalog
from ._checker import Checker, read_yaml_file
from ._located import LocatedDict, LocatedList, Position
from ._providers import ModelCondition
from ._scope import Identity, PolicyException, Scope
from ._scope_loader import ScopeReader

ACTIONS = ("block", "warn", "read-only", "quota", "redact", "monitor", "allow")
DLP_ACTIONS = ("block", "redact", "monitor")
DEFAULT_ACTIONS = ("block", "monitor", "allow")
PLANNED_ACTIONS: tuple[str, ...] = ()
MATCH_KEYS = ("domains", "hosts", "ips", "urls", "lists", "vendors", "apps", "categories", "models", "any")
RULE_KEYS = (
    "id", "description", "action", "match", "reason", "directive", "owner", "review", "expires", "enabled", "contact", "warn",
    "quota", "when", "dlp",
)  # fmt: skip
DLP_KEYS = ("detectors", "keywords", "patterns")
WARN_KEYS = ("justification", "remember", "message")
QUOTA_KEYS = ("requests", "bytes", "per", "by", "alert")
ALERT_KEYS = ("factor", "min_requests")
POLICY_KEYS = (
    "version", "name", "description", "default", "catalog", "settings", "lists", "groups", "networks", "identity",
    "rules", "exceptions",
)  # fmt: skip
SETTINGS_KEYS = ("contact", "log_query", "block_page_title", "inspect_max_bytes", "oversize")
OVERSIZE_ACTIONS = ("block", "monitor")
DIRECTIVE_KEYS = ("id", "title", "reference", "issued", "authority")
LIST_FILE_KEYS = ("file", "format", "description")
LIST_FORMATS = ("plain", "hosts")


@dataclass(frozen=True)
class DlpCondition:
    """A DLP rule's condition on a host: what the rule also matched there (a path or a model
    condition, or nothing), and the scanner that must find something in the request body."""

    scanner: Scanner
    inner: PathPattern | ModelCondition | None = None


# An entry in an index: (rule position, condition on the request or None, catalogue app id or None).
Entry = tuple[int, PathPattern | ModelCondition | DlpCondition | None, str | None]
rule_position: Callable[[Entry], int] = itemgetter(0)


@dataclass(frozen=True)
class Rule:
    id: str
    action: str
    reason: str = ""
    description: str = ""
    directive: dict[str, str] | None = None
    owner: str = ""
    review: str = ""
    contact: str = ""
    line: int = 0
    warn: WarnSettings | None = None  # action warn: how the acknowledgement works
    quota: QuotaSettings | None = None  # action quota: the budget
    scope: Scope | None = None  # `when`: the users, groups, networks and times the rule applies to
    dlp: Scanner | None = None  # `dlp`: the detectors whose findings in the request body the rule needs
    exceptions: tuple[PolicyException, ...] = ()  # who the rule is lifted for, until when
    expires: str = ""  # a rule past this date is inactive (checked when the policy loads)
    # Worked out once, for decide(): does whether the rule applies depend on who asks, from
    # where, or when? And is a match all it needs (not personal, not read-only)?
    personal: bool = field(init=False, repr=False, compare=False)
    plain: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        personal = self.scope is not None or bool(self.exceptions)
        object.__setattr__(self, "personal", personal)
        object.__setattr__(self, "plain", not personal and self.action != "read-only")


@dataclass
class Policy:
    path: str
    name: str
    default: str
    rules: tuple[Rule, ...]
    catalog: Catalog
    hosts: HostIndex[Entry]
    networks: NetworkIndex[Entry]
    always: tuple[Entry, ...]
    sha256: str
    contact: str = ""
    log_query: bool = False
    inspect_max_bytes: int = 8 * 1024 * 1024  # bodies read for model rules; larger ones get `oversize`
    oversize: str = "block"  # what a body too large to inspect gets: block (fail closed) or monitor
    block_page_title: str = "Blocked by your organisation's AI policy"
    warnings: list[Problem] = field(default_factory=list)
    files: tuple[str, ...] = ()  # every file read, for hot reload
    groups: dict[str, frozenset[str]] = field(default_factory=dict)  # group -> members (case-folded)
    identity: Identity = field(default_factory=Identity)
    exceptions: tuple[PolicyException, ...] = ()
    cache: dict[Any, Any] = field(default_factory=dict)  # decisions and their parts that do not depend on the request
    decisions: dict[str, Any] = field(default_factory=dict)  # host name -> its Decision, where no path or body matters

    def groups_of(self, user: str) -> frozenset[str]:
        """The policy's groups a user belongs to."""
        if not user or not self.groups:
            return frozenset()
        key = ("groups-of", user.casefold())
        found = self.cache.get(key)
        if found is None:
            if len(self.cache) > 100_000:
                self.cache.clear()
            found = self.cache[key] = frozenset(g for g, members in self.groups.items() if user.casefold() in members)
        return found

    def rule(self, rule_id: str) -> Rule | None:
        """The enabled rule with this id."""
        by_id = self.cache.get("rules-by-id")
        if by_id is None:
            by_id = self.cache["rules-by-id"] = {rule.id: rule for rule in self.rules}
        return by_id.get(rule_id)

    @property
    def stale(self) -> bool:
        """A rule has expired since the policy was loaded: load it again to drop that rule."""
        return any(_expired(rule) for rule in self.rules)

    @property
    def hash(self) -> str:
        """Short content hash recorded in events: policy, catalogue and lists together."""
        return self.sha256[:16]


def load_policy(path: str | Path, content: bytes | None = None) -> Policy:
    """Load, validate and compile a policy; raise PolicyError listing every problem.
    With ``content``, validate those bytes as the file at ``path`` (lists and catalogue beside it)."""
    filename = str(path)
    raw, data, check = read_yaml_file(path, "policy", content)
    loader = _PolicyLoader(check, Path(path).parent)
    digest = hashlib.sha256(raw)
    policy = loader.read(data, filename, digest) if data is not None else None
    if policy is None or loader.check.failed:
        raise PolicyError(loader.check.problems)
    policy.warnings = [p for p in loader.check.problems if p.severity == "warning"]
    return policy


class _PolicyLoader:
    def __init__(self, check: Checker, base: Path) -> None:
        self.check = check
        self.base = base
        self.files: list[str] = [check.filename]
        self.lists: dict[str, ListEntries] = {}
        self.catalog: Catalog | None = None

    def read(self, data: Any, filename: str, digest: Any) -> Policy | None:
        check = self.check
        root = check.mapping(data, (1, 1), "the policy")
        if root is None:
            return None
        check.keys(root, "the policy", POLICY_KEYS, ("version", "rules"))
        if "version" in root and root["version"] != 1:
            check.error(
                root.value_positions["version"],
                "bad-version",
                f"policy version {root['version']!r} is not supported (valid: 1)",
            )
        default = check.choice(root, "default", "policy", DEFAULT_ACTIONS) or "allow"
        self.catalog = self._read_catalog(root)
        digest.update(self.catalog.sha256.encode() if self.catalog else b"")
        settings = self._read_settings(root)
        self._read_lists(root, digest)
        self.scopes = ScopeReader(check, self.base, digest)
        self.scopes.read_groups(root)
        self.scopes.read_networks(root)
        identity = self.scopes.read_identity(root)
        hosts: HostIndex[Entry] = HostIndex(order=rule_position)  # decide() takes each name's first entry
        networks: NetworkIndex[Entry] = NetworkIndex()
        always: list[Entry] = []
        rules: list[Rule] = []
        seen: dict[str, int] = {}
        for body, position in check.items(root, "rules", "the policy"):
            rule_map = check.mapping(body, position, "a rule")
            if rule_map is None:
                continue
            rule = self._read_rule(rule_map, seen)
            if rule is None or rule_map.get("enabled", True) is False or _expired(rule):
                # still check what it matches, so that every problem is reported at once
                self._index_rule(rule_map, -1, HostIndex(), NetworkIndex(), [])
                continue
            index = len(rules)
            rules.append(rule)
            self._index_rule(rule_map, index, hosts, networks, always, rule.dlp)
        exceptions = self.scopes.read_exceptions(root, seen)
        rules = [replace(r, exceptions=tuple(e for e in exceptions if e.rule == r.id)) for r in rules]
        self.files.extend(self.scopes.files)
        if self.catalog is None:
            return None
        hosts.add_companion(self.catalog.index)  # a name's rules and its app in one walk over its labels
        return Policy(
            path=filename,
            name=str(root.get("name", Path(filename).stem)),
            default=default,
            rules=tuple(rules),
            catalog=self.catalog,
            hosts=hosts,
            networks=networks,
            always=tuple(always),
            sha256=digest.hexdigest(),
            files=tuple(self.files),
            groups=self.scopes.groups,
            identity=identity,
            exceptions=tuple(exceptions),
            **settings,
        )

    def _read_catalog(self, root: LocatedDict) -> Catalog | None:
        name = self.check.string(root, "catalog", "policy")
        path = (self.base / name) if name else shipped_catalog()
        try:
            catalog = load_catalog(path)
        except PolicyError as error:
            if name:
                self.check.error(
                    root.value_positions["catalog"],
                    "bad-catalog",
                    f"the catalogue {str(path)!r} does not load (details follow)",
                )
            self.check.problems.extend(error.problems)
            return None
        self.files.extend(catalog.files)
        return catalog

    def _read_settings(self, root: LocatedDict) -> dict[str, Any]:
        if "settings" not in root:
            return {}
        settings = self.check.mapping(root["settings"], root.value_positions["settings"], "settings")
        if settings is None:
            return {}
        self.check.keys(settings, "settings", SETTINGS_KEYS)
        result: dict[str, Any] = {}
        for key in ("contact", "block_page_title"):
            value = self.check.string(settings, key, "settings")
            if value:
                result[key] = value
        if "log_query" in settings:
            if isinstance(settings["log_query"], bool):
                result["log_query"] = settings["log_query"]
            else:
                self.check.error(
                    settings.value_positions["log_query"], "wrong-type", "settings.log_query must be true or false"
                )
        if "inspect_max_bytes" in settings:
            value = settings["inspect_max_bytes"]
            if isinstance(value, int) and not isinstance(value, bool) and 1024 <= value <= 1 << 30:
                result["inspect_max_bytes"] = value
            else:
                self.check.error(
                    settings.value_positions["inspect_max_bytes"],
                    "bad-value",
                    f"settings.inspect_max_bytes must be a number of bytes from 1024 to 1073741824, got {value!r}",
                )
        oversize = self.check.choice(settings, "oversize", "settings", OVERSIZE_ACTIONS)
        if oversize:
            result["oversize"] = oversize
        return result

    def _read_lists(self, root: LocatedDict, digest: Any) -> None:
        for name, body, position in self.check.entries(root, "lists", "the policy"):
            if isinstance(body, LocatedDict):
                self.lists[name] = self._read_list_file(name, body, digest)
            elif isinstance(body, LocatedList):
                entries = ListEntries()
                for item, item_position in zip(body, body.item_positions, strict=True):
                    target = self._target(item, item_position, f"list {name!r}")
                    if target is not None:
                        entries.targets.append((target, item_position))
                self.lists[name] = entries
            else:
                self.check.error(
                    position, "wrong-type", f"list {name!r} must be a list of targets or a mapping with 'file'"
                )

    def _read_list_file(self, name: str, body: LocatedDict, digest: Any) -> ListEntries:
        check = self.check
        check.keys(body, f"list {name!r}", LIST_FILE_KEYS, ("file",))
        file_name = check.string(body, "file", f"list {name!r}", required=True)
        list_format = check.choice(body, "format", f"list {name!r}", LIST_FORMATS) or "plain"
        if not file_name:
            return ListEntries()
        path = self.base / file_name
        try:
            raw = path.read_bytes()
        except OSError as error:
            check.error(
                body.value_positions["file"],
                "unreadable",
                f"list {name!r}: cannot read {str(path)!r}: {error.strerror or error}",
            )
            return ListEntries()
        digest.update(raw)
        self.files.append(str(path))
        return _parse_list_text(raw.decode("utf-8", errors="replace"), str(path), list_format, check)

    def _target(self, item: Any, position: Position, what: str) -> Target | None:
        if not isinstance(item, str):
            self.check.error(position, "wrong-type", f"each entry of {what} must be a string, got {item!r}")
            return None
        try:
            return parse_target(item)
        except ValueError as error:
            self.check.error(position, "bad-target", f"{what}: {error}")
            return None

    def _read_rule(self, rule: LocatedDict, seen: dict[str, int]) -> Rule | None:
        check = self.check
        check.keys(rule, "a rule", RULE_KEYS, ("id", "action", "match"))
        rule_id = check.identifier(rule, "id", "rule")
        what = f"rule {rule_id!r}" if rule_id else "a rule"
        if rule_id and rule_id in seen:
            check.error(
                rule.value_positions["id"],
                "duplicate-id",
                f"rule id {rule_id!r} is already used on line {seen[rule_id]}",
            )
        if rule_id:
            seen[rule_id] = rule.position[0]
        if rule.get("action") in PLANNED_ACTIONS:
            check.error(
                rule.value_positions["action"],
                "unsupported-action",
                f"{what}: action {rule['action']!r} is not available in this version (valid: {', '.join(ACTIONS)})",
            )
            action = None
        else:
            action = check.choice(rule, "action", what, ACTIONS)
        if "enabled" in rule and not isinstance(rule["enabled"], bool):
            check.error(rule.value_positions["enabled"], "wrong-type", f"{what}.enabled must be true or false")
        directive = self._read_directive(rule, what)
        review = self._read_date(rule, "review", what, "review-due", "was due for review on")
        expires = self._read_date(rule, "expires", what, "rule-expired", "is inactive: it expired on")
        text: dict[str, Any] = {
            key: check.string(rule, key, what) or "" for key in ("reason", "description", "owner", "contact")
        }
        self._check_match(rule, what)
        warn = self._read_warn(rule, what, action)
        quota = self._read_quota(rule, what, action)
        scope = self.scopes.read_when(rule, what)
        dlp = self._read_dlp(rule, what, action)
        if not rule_id or not action:
            return None
        return Rule(
            rule_id,
            action,
            directive=directive,
            review=review,
            expires=expires,
            line=rule.position[0],
            warn=warn,
            quota=quota,
            scope=scope,
            dlp=dlp,
            **text,
        )

    def _read_dlp(self, rule: LocatedDict, what: str, action: str | None) -> Scanner | None:
        check = self.check
        if "dlp" not in rule:
            if action == "redact":
                check.error(
                    rule.position,
                    "missing-key",
                    f"{what} has action redact but no dlp: (what to redact, e.g. dlp: {{detectors: [secret, pii]}})",
                )
            return None
        position = rule.value_positions["dlp"]
        if action is not None and action not in DLP_ACTIONS:
            check.error(
                position, "misplaced-key", f"{what}.dlp goes with action {', '.join(DLP_ACTIONS)}, not {action}"
            )
            return None
        settings = check.mapping(rule["dlp"], position, f"{what}.dlp")
        if settings is None:
            return None
        check.keys(settings, f"{what}.dlp", DLP_KEYS)
        ok = True
        names = []
        for name, name_position in check.strings(settings, "detectors", f"{what}.dlp"):
            try:
                if not name.startswith("custom."):
                    resolve_names([name])
                names.append(name)
            except DlpError as error:
                check.error(name_position, "unknown-detector", f"{what}.dlp.detectors: {error}")
                ok = False
        keywords: dict[str, list[str]] = {}
        for set_name, body, body_position in check.entries(settings, "keywords", f"{what}.dlp"):
            words = [body] if isinstance(body, str) else list(body) if isinstance(body, list) else None
            if not words:
                check.error(body_position, "wrong-type", f"{what}.dlp.keywords.{set_name} must be a list of words")
                ok = False
                continue
            for word in words:
                for message in check_keyword(word):
                    check.error(body_position, "bad-keyword", f"{what}.dlp.keywords.{set_name}: {word!r} {message}")
                    ok = False
            keywords[set_name] = [str(w) for w in words]
        patterns: dict[str, str] = {}
        for set_name, body, body_position in check.entries(settings, "patterns", f"{what}.dlp"):
            messages = check_custom_regex(body) if isinstance(body, str) else ["must be a regular expression string"]
            for message in messages:
                check.error(body_position, "bad-pattern", f"{what}.dlp.patterns.{set_name}: {message}")
                ok = False
            patterns[set_name] = str(body)
        if not names and not keywords and not patterns:
            check.error(settings.position, "empty-dlp", f"{what}.dlp names no detectors, keywords or patterns")
            return None
        if not ok:
            return None
        try:
            return build_detectors(names, keywords, patterns)
        except DlpError as error:
            check.error(position, "bad-dlp", f"{what}.dlp: {error}")
            return None

    def _control_mapping(self, rule: LocatedDict, key: str, what: str, action: str | None) -> LocatedDict | None:
        if key not in rule:
            return None
        position = rule.value_positions[key]
        if action is not None and action != key:
            self.check.error(position, "misplaced-key", f"{what}.{key} only applies to rules with action {key}")
            return None
        return self.check.mapping(rule[key], position, f"{what}.{key}")

    def _read_warn(self, rule: LocatedDict, what: str, action: str | None) -> WarnSettings | None:
        settings = self._control_mapping(rule, "warn", what, action)
        if settings is None:
            return WarnSettings() if action == "warn" else None
        check = self.check
        check.keys(settings, f"{what}.warn", WARN_KEYS)
        mode = check.choice(settings, "justification", f"{what}.warn", JUSTIFICATION_MODES) or "optional"
        remember = self._value(settings, "remember", f"{what}.warn", parse_duration) or WarnSettings.remember
        return WarnSettings(mode, remember, check.string(settings, "message", f"{what}.warn") or "")

    def _read_quota(self, rule: LocatedDict, what: str, action: str | None) -> QuotaSettings | None:
        settings = self._control_mapping(rule, "quota", what, action)
        if settings is None:
            if action == "quota":
                check_position = rule.position
                self.check.error(
                    check_position,
                    "missing-key",
                    f"{what} has action quota but no quota: (e.g. quota: {{requests: 500, per: 1h}})",
                )
            return None
        check = self.check
        check.keys(settings, f"{what}.quota", QUOTA_KEYS, ("per",))
        per = self._value(settings, "per", f"{what}.quota", parse_duration)
        requests = self._value(settings, "requests", f"{what}.quota", _positive_int)
        size = self._value(settings, "bytes", f"{what}.quota", parse_size)
        by = check.choice(settings, "by", f"{what}.quota", QUOTA_SUBJECTS) or "user"
        if requests is None and size is None and "requests" not in settings and "bytes" not in settings:
            check.error(
                settings.position, "empty-quota", f"{what}.quota sets no budget (use requests:, bytes: or both)"
            )
        factor, minimum = None, 100
        alert = (
            check.mapping(settings["alert"], settings.value_positions["alert"], f"{what}.quota.alert")
            if "alert" in settings
            else None
        )
        if alert is not None:
            check.keys(alert, f"{what}.quota.alert", ALERT_KEYS, ("factor",))
            factor = self._value(alert, "factor", f"{what}.quota.alert", _positive_number)
            minimum = self._value(alert, "min_requests", f"{what}.quota.alert", _positive_int) or minimum
        if per is None:
            return None
        return QuotaSettings(per, requests, size, by, factor, minimum)

    def _value(self, mapping: LocatedDict, key: str, what: str, parse: Any) -> Any:
        """A setting read by ``parse``, which raises ValueError with the message to show."""
        if key not in mapping:
            return None
        try:
            return parse(mapping[key])
        except ValueError as error:
            self.check.error(mapping.value_positions[key], "bad-value", f"{what}.{key}: {error}")
            return None

    def _read_date(self, rule: LocatedDict, key: str, what: str, code: str, past: str) -> str:
        if key not in rule:
            return ""
        try:
            value = parse_date(rule[key])
        except ValueError:
            self.check.error(
                rule.value_positions[key], "bad-date", f"{what}.{key} must be a date like 2026-06-30, got {rule[key]!r}"
            )
            return ""
        if value < datetime.date.today():
            self.check.warning(rule.value_positions[key], code, f"{what} {past} {value.isoformat()}")
        return value.isoformat()

    def _read_directive(self, rule: LocatedDict, what: str) -> dict[str, str] | None:
        if "directive" not in rule:
            return None
        value = rule["directive"]
        if isinstance(value, str):
            return {"id": value}
        directive = self.check.mapping(value, rule.value_positions["directive"], f"{what}.directive")
        if directive is None:
            return None
        self.check.keys(directive, f"{what}.directive", DIRECTIVE_KEYS, ("id",))
        result = {k: str(v) for k, v in directive.items() if k in DIRECTIVE_KEYS}
        reference = result.get("reference", "")
        if reference and not reference.startswith(("https://", "http://")):
            self.check.error(
                directive.value_positions["reference"],
                "bad-reference",
                f"{what}.directive.reference must be a URL, got {reference!r}",
            )
        return result

    def _check_match(self, rule: LocatedDict, what: str) -> None:
        if "match" not in rule:
            return  # already reported as a missing key
        match = self.check.mapping(rule.get("match"), rule.value_positions.get("match", rule.position), f"{what}.match")
        if match is None:
            return
        self.check.keys(match, f"{what}.match", MATCH_KEYS)
        if not any(key in match for key in MATCH_KEYS):
            self.check.error(
                match.position, "empty-match", f"{what}.match matches nothing (use one of: {', '.join(MATCH_KEYS)})"
            )

    def _index_rule(
        self,
        rule: LocatedDict,
        index: int,
        hosts: HostIndex[Entry],
        networks: NetworkIndex[Entry],
        always: list[Entry],
        dlp: Scanner | None = None,
    ) -> None:
        wrap = _dlp_wrapper(dlp)
        match = rule.get("match")
        if not isinstance(match, LocatedDict):
            return
        what = f"rule {rule.get('id')!r}"
        if match.get("any") is True:
            always.append((index, wrap(None), None))
        elif "any" in match:
            self.check.error(match.value_positions["any"], "wrong-type", f"{what}.match.any must be true (or left out)")
        targets: list[tuple[Target, str | None]] = []
        kinds = {"domains": ("domain",), "hosts": ("domain",), "ips": ("network",), "urls": ("url",)}
        for key, allowed in kinds.items():
            for text, position in self.check.strings(match, key, f"{what}.match"):
                target = self._target(
                    ("=" + text if key == "hosts" and not text.startswith("=") else text),
                    position,
                    f"{what}.match.{key}",
                )
                if target is None:
                    continue
                if target.kind not in allowed:
                    self.check.error(
                        position,
                        "wrong-kind",
                        f"{what}.match.{key}: {text!r} is a {target.kind}; put it under {_key_for(target.kind)}",
                    )
                    continue
                targets.append((target, None))
        for name, position in self.check.strings(match, "lists", f"{what}.match"):
            if name not in self.lists:
                self.check.error(
                    position,
                    "unknown-list",
                    f"{what} refers to list {name!r}, which is not defined under 'lists' (defined: {', '.join(self.lists) or 'none'})",
                )
                continue
            self._index_list(name, index, hosts, networks, wrap)
        patterns: list[tuple[str, str | None]] = []
        for text, _ in self.check.strings(match, "models", f"{what}.match"):
            patterns.append((text.lower(), None))
        for app_id in self._catalog_apps(match, what):
            app = self.catalog.apps[app_id]  # type: ignore[union-attr]
            targets.extend((target, app_id) for target in app.targets)
            patterns.extend((pattern, app_id) for pattern in app.models)
        for target, app in targets:
            if app is None and target.kind == "domain" and self.catalog is not None:
                found = self.catalog.app_for_host(target.host.lstrip("*.="))  # annotate once, not per request
                app = found.id if found else None
            _index_target(target, (index, wrap(target.path), app), hosts, networks)
        if patterns and self.catalog is not None:
            self._index_models(tuple(dict.fromkeys(patterns)), index, hosts, wrap)

    def _index_models(
        self, patterns: tuple[tuple[str, str | None], ...], index: int, hosts: HostIndex[Entry], wrap: _Wrap
    ) -> None:
        """A model rule applies on every provider API host in the catalogue, where it reads the model id."""
        for provider in self.catalog.providers.values():  # type: ignore[union-attr]
            condition = ModelCondition(provider, patterns)
            for target in provider.targets:
                hosts.add(target.host, (index, wrap(condition), None))

    def _index_list(
        self, name: str, index: int, hosts: HostIndex[Entry], networks: NetworkIndex[Entry], wrap: _Wrap
    ) -> None:
        entries = self.lists[name]
        for target, _ in entries.targets:
            _index_target(target, (index, wrap(target.path), None), hosts, networks)
        hosts.add_many(entries.domains, (index, wrap(None), None))

    def _catalog_apps(self, match: LocatedDict, what: str) -> list[str]:
        catalog = self.catalog
        if catalog is None:
            return []
        apps: list[str] = []
        references = (("vendors", catalog.vendors), ("apps", catalog.apps), ("categories", catalog.categories))
        for key, known in references:
            for name, position in self.check.strings(match, key, f"{what}.match"):
                if name not in known:
                    self.check.error(
                        position,
                        f"unknown-{key[:-1] if key != 'categories' else 'category'}",
                        f"{what}.match.{key}: {name!r} is not in the catalogue (known: {_sample(known)})",
                    )
                elif key == "vendors":
                    apps.extend(catalog.vendors[name].apps)
                elif key == "apps":
                    apps.append(name)
                else:
                    apps.extend(a.id for a in catalog.apps_in_category(name))
        return list(dict.fromkeys(apps))


def _expired(rule: Rule) -> bool:
    return bool(rule.expires) and rule.expires < datetime.date.today().isoformat()


def _index_target(target: Target, entry: Entry, hosts: HostIndex[Entry], networks: NetworkIndex[Entry]) -> None:
    if target.network is not None:
        networks.add(target.network, entry)
    else:
        hosts.add(target.host, entry)


def _key_for(kind: str) -> str:
    return {"domain": "domains", "network": "ips", "url": "urls"}[kind]


def _sample(known: dict[str, Any]) -> str:
    names = sorted(known)
    return ", ".join(names[:12]) + (f" … ({len(names)} in all; see 'aipolicy catalog')" if len(names) > 12 else "")


def _parse_list_text(text: str, filename: str, list_format: str, check: Checker) -> ListEntries:
    """Parse a list file. Plain lower-case domains, one per line, are found by one
    regex scan at C speed (a million lines in a fraction of a second); every
    other line goes through the full target parser, with its line number."""
    if "\r" in text:
        text = text.replace("\r", "")
    if list_format == "plain":
        fast = _PLAIN_LINE.findall(text)
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        # the scan for other lines costs as much as the one for domains: skip it when every line was a domain
        others = [] if len(fast) == lines else [(m.start(), m.group()) for m in _OTHER_LINE.finditer(text)]
    else:
        fast, others = [], [(m.start(), m.group()) for m in re.finditer(r"^.+$", text, re.M)]
    entries = ListEntries(fast)
    file_check = Checker(filename)
    line, offset = 1, 0
    for start, raw in others:
        line += text.count("\n", offset, start)
        offset = start
        item = raw.split("#", 1)[0].strip()
        if not item:
            continue
        if list_format == "hosts":
            fields = item.split()
            if len(fields) < 2:
                file_check.error((line, 1), "bad-hosts-line", f"expected 'ADDRESS NAME…', got {item[:80]!r}")
                continue
            names = [n for n in fields[1:] if n not in _HOSTS_FILE_LOCAL]
        else:
            names = [item]
        for name in names:
            try:
                entries.targets.append((parse_target(name), (line, 1)))
            except ValueError as error:
                file_check.error((line, 1), "bad-target", str(error))
    check.problems.extend(file_check.problems)
    return entries


@dataclass
class ListEntries:
    domains: list[str] = field(default_factory=list)  # plain domains (itself and subdomains): the fast path
    targets: list[tuple[Target, Position]] = field(default_factory=list)  # everything else


_DOMAIN = r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z_][a-z0-9_-]{0,62}"
_PLAIN_LINE = re.compile(rf"^{_DOMAIN}$", re.M)
_OTHER_LINE = re.compile(rf"^(?!{_DOMAIN}$).+$", re.M)
_HOSTS_FILE_LOCAL = frozenset(
    ("localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost", "ip6-loopback")
)


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected a whole number above 0, got {value!r}")
    return value


def _positive_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"expected a number above 0, got {value!r}")
    return float(value)


_Wrap = Any  # Callable[[condition], condition]


def _dlp_wrapper(dlp: Scanner | None) -> _Wrap:
    """For a DLP rule, every entry's condition also needs the scanner to find something."""
    if dlp is None:
        return lambda condition: condition
    return lambda condition: DlpCondition(dlp, condition)
