"""A semantic diff of two policies: what a reviewer needs to know, not which lines moved.

Both policies must load. Rules are paired by id; targets are compared in the
core's canonical form (``DeepSeek.COM.`` equals ``deepseek.com``), lists by
their entries whether inline or in a file, so reformatting, reordering a
rule's targets or moving a list into a file shows as no change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aipolicy.policy import MATCH_KEYS, SETTINGS_KEYS, Policy, load_policy, read_yaml_file

from ._list_import import _list_file_entries, canonical

_TARGET_KEYS = frozenset(("domains", "hosts", "ips", "urls"))
PROVENANCE_KEYS = ("description", "reason", "directive", "owner", "review", "contact")
_METADATA_KEYS = ("name", "description", "catalog")
SAMPLE = 10


@dataclass
class _View:
    default: str
    metadata: dict[str, Any]
    settings: dict[str, Any]
    rules: dict[str, dict[str, Any]]  # id -> {action, enabled, match: {key: [values]}, provenance…}
    order: list[str]
    lists: dict[str, list[str]]
    list_sources: dict[str, str]
    catalog_hash: str


@dataclass
class PolicyDiff:
    """The differences from policy ``a`` to policy ``b``; empty when they decide alike in every way."""

    a: str
    b: str
    default: tuple[str, str] | None = None
    metadata: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    settings: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    catalog: tuple[str, str] | None = None
    rules_added: list[dict[str, Any]] = field(default_factory=list)
    rules_removed: list[dict[str, Any]] = field(default_factory=list)
    rules_changed: list[dict[str, Any]] = field(default_factory=list)
    order: tuple[list[str], list[str]] | None = None  # rules present in both, in a different order
    lists_added: dict[str, int] = field(default_factory=dict)
    lists_removed: dict[str, int] = field(default_factory=dict)
    lists_changed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.as_dict()["changes"]

    def as_dict(self) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if self.default:
            changes["default"] = {"before": self.default[0], "after": self.default[1]}
        for key, pairs in (("metadata", self.metadata), ("settings", self.settings)):
            if pairs:
                changes[key] = {name: {"before": old, "after": new} for name, (old, new) in pairs.items()}
        if self.catalog:
            changes["catalog"] = {"before": self.catalog[0], "after": self.catalog[1]}
        rules: dict[str, Any] = {}
        for key, value in (
            ("added", self.rules_added),
            ("removed", self.rules_removed),
            ("changed", self.rules_changed),
        ):
            if value:
                rules[key] = value
        if self.order:
            rules["order"] = {"before": self.order[0], "after": self.order[1]}
        if rules:
            changes["rules"] = rules
        lists: dict[str, Any] = {}
        if self.lists_added:
            lists["added"] = self.lists_added
        if self.lists_removed:
            lists["removed"] = self.lists_removed
        if self.lists_changed:
            lists["changed"] = self.lists_changed
        if lists:
            changes["lists"] = lists
        return {"a": self.a, "b": self.b, "same": not changes, "changes": changes}


def diff_policies(a: str | Path, b: str | Path) -> PolicyDiff:
    """Compare two policy files; raises PolicyError if either does not load."""
    view_a, view_b = _view(a), _view(b)
    result = PolicyDiff(str(a), str(b))
    if view_a.default != view_b.default:
        result.default = (view_a.default, view_b.default)
    result.metadata = _changed_keys(view_a.metadata, view_b.metadata)
    result.settings = _changed_keys(view_a.settings, view_b.settings)
    if view_a.catalog_hash != view_b.catalog_hash:
        result.catalog = (view_a.catalog_hash[:16], view_b.catalog_hash[:16])
    _diff_rules(view_a, view_b, result)
    _diff_lists(view_a, view_b, result)
    return result


def _changed_keys(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {key: (a.get(key), b.get(key)) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)}


def _diff_rules(a: _View, b: _View, result: PolicyDiff) -> None:
    for position, rule_id in enumerate(b.order, start=1):
        if rule_id not in a.rules:
            result.rules_added.append({"id": rule_id, "position": position, **b.rules[rule_id]})
    for position, rule_id in enumerate(a.order, start=1):
        if rule_id not in b.rules:
            result.rules_removed.append({"id": rule_id, "position": position, **a.rules[rule_id]})
    for rule_id in b.order:
        if rule_id in a.rules:
            change = _diff_rule(a.rules[rule_id], b.rules[rule_id])
            if change:
                result.rules_changed.append({"id": rule_id, **change})
    common_a = [r for r in a.order if r in b.rules]
    common_b = [r for r in b.order if r in a.rules]
    if common_a != common_b:
        result.order = (common_a, common_b)


def _diff_rule(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    change: dict[str, Any] = {}
    for key in ("action", "enabled", *PROVENANCE_KEYS):
        if old.get(key) != new.get(key):
            change[key] = {"before": old.get(key), "after": new.get(key)}
    match: dict[str, Any] = {}
    for key in MATCH_KEYS:
        before, after = old["match"].get(key, []), new["match"].get(key, [])
        added = [value for value in after if value not in before]
        removed = [value for value in before if value not in after]
        if added or removed:
            match[key] = {"added": added, "removed": removed}
    if match:
        change["match"] = match
    return change


def _diff_lists(a: _View, b: _View, result: PolicyDiff) -> None:
    for name in sorted(set(b.lists) - set(a.lists)):
        result.lists_added[name] = len(b.lists[name])
    for name in sorted(set(a.lists) - set(b.lists)):
        result.lists_removed[name] = len(a.lists[name])
    for name in sorted(set(a.lists) & set(b.lists)):
        before, after = set(a.lists[name]), set(b.lists[name])
        added, removed = sorted(after - before), sorted(before - after)
        change: dict[str, Any] = {}
        if added or removed:
            change = {
                "added": len(added),
                "removed": len(removed),
                "added_sample": added[:SAMPLE],
                "removed_sample": removed[:SAMPLE],
                "entries_before": len(before),
                "entries_after": len(after),
            }
        if a.list_sources[name] != b.list_sources[name]:
            change["source"] = {"before": a.list_sources[name], "after": b.list_sources[name]}
        if change:
            result.lists_changed.append({"name": name, **change})


def _view(path: str | Path) -> _View:
    loaded: Policy = load_policy(path)  # raises PolicyError: a diff of a broken policy would mislead
    _, data, _ = read_yaml_file(path, "policy")
    base = Path(path).parent
    rules: dict[str, dict[str, Any]] = {}
    for rule in data.get("rules") or []:
        rules[str(rule["id"])] = _rule_view(rule)
    lists: dict[str, list[str]] = {}
    sources: dict[str, str] = {}
    for name, body in (data.get("lists") or {}).items():
        if isinstance(body, dict):
            file_path = base / str(body["file"])
            text = file_path.read_text(encoding="utf-8", errors="replace")
            list_format = str(body.get("format", "plain"))
            lists[name] = [e for entries in _list_file_entries(text, list_format) for e in entries]
            sources[name] = f"file {body['file']} ({list_format})"
        else:
            lists[name] = [canonical(item) for item in body]
            sources[name] = "inline"
    settings = {key: getattr(loaded, key) for key in SETTINGS_KEYS}  # effective values: defaults count
    return _View(
        default=loaded.default,
        metadata={key: data.get(key) for key in _METADATA_KEYS if data.get(key) is not None},
        settings=settings,
        rules=rules,
        order=list(rules),
        lists=lists,
        list_sources=sources,
        catalog_hash=loaded.catalog.sha256,
    )


def _rule_view(rule: dict[str, Any]) -> dict[str, Any]:
    match: dict[str, list[str]] = {}
    for key, value in (rule.get("match") or {}).items():
        values = value if isinstance(value, list) else [value]
        if key in _TARGET_KEYS:
            match[key] = sorted(dict.fromkeys(canonical(item) for item in values))
        else:
            match[key] = sorted(dict.fromkeys(str(item).lower() if key != "models" else str(item) for item in values))
    view: dict[str, Any] = {"action": rule.get("action"), "enabled": rule.get("enabled", True), "match": match}
    for key in PROVENANCE_KEYS:
        if key in rule:
            value = rule[key]
            view[key] = dict(value) if isinstance(value, dict) else str(value)
    if isinstance(view.get("directive"), str):
        view["directive"] = {"id": view["directive"]}
    return view
