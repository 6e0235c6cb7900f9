"""Edit a policy file safely, the way ``aipolicy policy block`` and ``aipolicy rule …`` do.

An edit is a function on a round-trip YAML document (ruamel.yaml), so comments,
key order and layout of everything it does not touch stay as they were. The
result is checked by the real loader before anything is written; then, under an
exclusive lock against concurrent edits, the old file is kept as FILE.bak, the
new one is written to a temporary file in the same directory, synced and moved
into place (os.replace), and one JSON line is appended to FILE.audit.jsonl.

Targets on the command line (``block``/``allow``/``monitor``/``unblock``, ``rule add --match``):

example.com, *.example.com, 192.0.2.0/24, example.com/path   as in a rule (see _targets)
=api.example.com                                            that host only (match.hosts)
vendor:ID  app:ID  category:ID                              catalogue references
model:PATTERN                                               a model-name pattern (match.models)

``block TARGET`` adds the target to a CLI-managed rule ``cli-block`` (likewise
``cli-allow``, ``cli-monitor``), created near the top of the rules; targets given
with a --reason, --directive or --expires go to a CLI rule with exactly those
(``cli-block-2`` …). A target lives in one CLI rule at a time: allowing a blocked
target moves it. ``unblock`` removes it from the CLI block rules only.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import errno
import fcntl
import getpass
import io
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from aipolicy._errors import EditError, PolicyError
from aipolicy._units import parse_date
from aipolicy.matching import parse_target
from aipolicy.policy import ACTIONS, Catalog, Policy, load_policy

CLI_RULE = re.compile(r"^cli-(block|allow|monitor)(?:-(\d+))?$")
ACTION_ORDER = {"allow": 0, "block": 1, "monitor": 2}  # CLI rules at the top: exceptions first
REFERENCE_KEYS = {"vendor": "vendors", "app": "apps", "category": "categories", "model": "models"}
LOCK_TIMEOUT = 30.0


def parse_edit_target(text: str, catalog: Catalog | None = None) -> tuple[str, str]:
    """A command-line target as (match key, value); raise EditError saying what is valid."""
    kind, colon, name = text.partition(":")
    if colon and kind in REFERENCE_KEYS:
        name = name.strip()
        if not name:
            raise EditError(f"{text!r}: give a name after '{kind}:'")
        known = _known(catalog, kind)
        if known is not None and name not in known:
            raise EditError(f"{text!r}: no {kind} {name!r} in the catalogue (see 'aipolicy catalog search {name}')")
        return REFERENCE_KEYS[kind], name
    try:
        target = parse_target(text)
    except ValueError as error:
        hint = _reference_hint(text.strip(), catalog)
        raise EditError(f"{error}{hint}") from None
    bare = text.strip().lower()
    if target.kind == "domain" and "." not in bare and _reference_hint(bare, catalog).startswith("; did"):
        raise EditError(f"{text!r} is a catalogue id, not a host name{_reference_hint(bare, catalog)}")
    if target.kind == "network":
        return "ips", str(target)
    if target.kind == "url":
        return "urls", str(target)
    if target.host.startswith("="):
        return "hosts", target.host[1:]
    return "domains", target.host


def _known(catalog: Catalog | None, kind: str) -> dict[str, Any] | None:
    if catalog is None or kind == "model":
        return None
    known: dict[str, dict[str, Any]] = {"vendor": catalog.vendors, "app": catalog.apps, "category": catalog.categories}
    return known[kind]


def _reference_hint(text: str, catalog: Catalog | None) -> str:
    found = [f"{kind}:{text}" for kind in ("vendor", "app", "category") if text in (_known(catalog, kind) or {})]
    if found:
        return f"; did you mean {' or '.join(found)}?"
    return "; catalogue references are written vendor:ID, app:ID, category:ID, and models model:PATTERN"


def format_target(key: str, value: str) -> str:
    """The command-line spelling of a match entry (the inverse of parse_edit_target)."""
    prefix = {v: k + ":" for k, v in REFERENCE_KEYS.items()}.get(key, "=" if key == "hosts" else "")
    return prefix + value


@dataclass
class RuleMeta:
    reason: str = ""
    directive: str = ""
    expires: str = ""  # ISO date
    description: str = ""
    owner: str = ""
    review: str = ""

    def items(self) -> list[tuple[str, Any]]:
        result: list[tuple[str, Any]] = []
        for key in ("description", "reason", "directive", "owner", "review", "expires"):
            value = getattr(self, key)
            if value:
                result.append((key, parse_date(value) if key in ("review", "expires") else value))
        return result


class PolicyDocument:
    """A policy file being edited. Rules are cut, moved and inserted as whole blocks of
    lines (with the comment lines above them); a rule whose content changes is changed
    on the round-trip YAML document and only its own lines are replaced. Every byte
    outside the rules an edit touches stays as it was."""

    def __init__(self, text: str) -> None:
        self.text = text if text.endswith("\n") or not text else text + "\n"
        try:
            _, indent, offset = load_yaml_guess_indent(self.text) if self.text.strip() else (None, 2, 0)
        except YAMLError as error:
            raise EditError(f"the policy is not valid YAML, so it cannot be edited:\n{error}") from None
        self.yaml = YAML()
        self.yaml.preserve_quotes = True
        self.yaml.width = 4096  # never re-wrap long lines
        self.offset = offset or 0
        self.yaml.indent(
            mapping=_mapping_indent(self.text), sequence=max(indent or 2, self.offset + 2), offset=self.offset
        )
        self._load()

    def dump(self) -> str:
        return self.text

    def _load(self) -> None:
        try:
            data = self.yaml.load(self.text)
        except YAMLError as error:
            raise EditError(f"the policy is not valid YAML, so it cannot be edited:\n{error}") from None
        if not isinstance(data, CommentedMap):
            raise EditError("the policy is not a YAML mapping with 'rules', so it cannot be edited")
        self.data = data
        rules = data.get("rules")
        self.rules: list[Any] = list(rules) if isinstance(rules, list) else []  # what is not a mapping has no id
        self.chunks = _chunks(self.text, data)

    def ids(self) -> list[str]:
        return [str(rule.get("id")) if isinstance(rule, CommentedMap) else "" for rule in self.rules]

    def index(self, rule_id: str) -> int:
        ids = self.ids()
        if not rule_id or rule_id not in ids:
            raise EditError(f"no rule {rule_id!r} in the policy (rules: {', '.join(ids) or 'none'})")
        return ids.index(rule_id)

    # --- block / allow / monitor / unblock ------------------------------------------------

    def add_target(self, action: str, key: str, value: str, meta: RuleMeta) -> list[str]:
        """Put a target in the CLI rule for the action (and take it out of other CLI rules)."""
        keep = self._cli_rule(action, meta)
        keep_id = str(keep["id"]) if keep is not None else None
        messages = [
            f"removed {format_target(key, value)} from rule {rule_id!r}"
            for rule_id in self._remove_from_cli_rules(key, value, skip=keep_id)
        ]
        if keep_id is None:
            rule_id = self._new_cli_rule(action, key, value, meta)
            return messages + [f"added {format_target(key, value)} to new rule {rule_id!r} ({action})"]
        match = self.rules[self.index(keep_id)].get("match")
        if isinstance(match, CommentedMap) and isinstance(match.get(key), list) and value in match[key]:
            return messages + [f"{format_target(key, value)} is already in rule {keep_id!r}"]
        self._change(keep_id, lambda rule: _entries(rule, key).append(value))
        return messages + [f"added {format_target(key, value)} to rule {keep_id!r} ({action})"]

    def remove_target(self, action: str, key: str, value: str) -> list[str]:
        removed = self._remove_from_cli_rules(key, value, only=action)
        return [f"removed {format_target(key, value)} from rule {rule_id!r}" for rule_id in removed]

    def cli_rules(self) -> list[tuple[CommentedMap, str]]:
        found = [(rule, CLI_RULE.match(rule_id)) for rule, rule_id in zip(self.rules, self.ids(), strict=True)]
        return [(rule, match.group(1)) for rule, match in found if match]

    def _cli_rule(self, action: str, meta: RuleMeta) -> CommentedMap | None:
        wanted = dict(meta.items())
        for rule, rule_action in self.cli_rules():
            have = {
                k: rule[k] for k in ("description", "reason", "directive", "owner", "review", "expires") if k in rule
            }
            if rule_action == action and rule.get("action") == action and _same(have, wanted):
                return rule
        return None

    def _remove_from_cli_rules(
        self, key: str, value: str, only: str | None = None, skip: str | None = None
    ) -> list[str]:
        removed = []
        for rule, rule_action in self.cli_rules():
            rule_id = str(rule["id"])
            if rule_id == skip or (only and rule_action != only):
                continue
            match = rule.get("match")
            entries = match.get(key) if isinstance(match, CommentedMap) else None
            if not isinstance(entries, list) or value not in entries:
                continue
            if sum(len(v) if isinstance(v, list) else 1 for v in match.values()) == 1:
                self.remove_rule(rule_id)  # its last target: the rule goes
            else:
                self._change(rule_id, lambda rule: _discard(rule, key, value))
            removed.append(rule_id)
        return removed

    def _new_cli_rule(self, action: str, key: str, value: str, meta: RuleMeta) -> str:
        ids = set(self.ids())
        rule_id, number = f"cli-{action}", 1
        while rule_id in ids:
            number += 1
            rule_id = f"cli-{action}-{number}"
        position = 0
        for index, (rule, rule_action) in enumerate(self.cli_rules()):
            if rule is not self.rules[index]:
                break  # only the CLI rules at the top
            if ACTION_ORDER[rule_action] <= ACTION_ORDER[action]:
                position = index + 1
        self.add_rule(rule_id, action, [(key, value)], meta, position, note=f"added by 'aipolicy policy {action}'")
        return rule_id

    # --- rules --------------------------------------------------------------------------------

    def add_rule(
        self,
        rule_id: str,
        action: str,
        matches: list[tuple[str, str]],
        meta: RuleMeta,
        position: int | None = None,
        note: str = "added by 'aipolicy rule add'",
    ) -> list[str]:
        if rule_id in self.ids():
            raise EditError(f"rule {rule_id!r} already exists")
        if action not in ACTIONS:
            raise EditError(f"action {action!r} is not valid (valid: {', '.join(ACTIONS)})")
        rule = CommentedMap([("id", rule_id), ("action", action), ("match", CommentedMap())])
        for key, value in matches:
            entries = _entries(rule, key)
            if value not in entries:
                entries.append(value)
        for key, value in meta.items():
            rule[key] = value
        position = len(self.rules) if position is None else max(0, min(position, len(self.rules)))
        if self.chunks is None:  # no rules yet, or a flow-style list: let the YAML library lay it out
            rules = self.data.get("rules")
            if not isinstance(rules, list):
                self.data["rules"] = rules = CommentedSeq()
            rules.insert(position, rule)
            self._set(_dump(self.yaml, self.data))
        else:
            column = self.chunks[0][1]
            text = f"{' ' * column}# {note}\n" + _render(self.yaml, rule, self.offset, column)
            self._splice(self._boundary(position), self._boundary(position), text)
        return [f"added rule {rule_id!r} ({action}) at position {position + 1}"]

    def remove_rule(self, rule_id: str) -> list[str]:
        start, end = self._block(self.index(rule_id))
        self._splice(start, end, "")
        return [f"removed rule {rule_id!r}"]

    def set_enabled(self, rule_id: str, enabled: bool) -> list[str]:
        rule = self.rules[self.index(rule_id)]
        if rule.get("enabled", True) is enabled:
            raise EditError(f"rule {rule_id!r} is already {'enabled' if enabled else 'disabled'}")

        def change(rule: CommentedMap) -> None:
            if enabled:
                del rule["enabled"]
            elif "enabled" in rule:
                rule["enabled"] = False
            else:
                rule.insert(list(rule).index("action") + 1 if "action" in rule else len(rule), "enabled", False)

        self._change(rule_id, change)
        return [f"{'enabled' if enabled else 'disabled'} rule {rule_id!r}"]

    def move_rule(
        self, rule_id: str, before: str | None = None, after: str | None = None, top: bool = False
    ) -> list[str]:
        if rule_id in (before, after):
            raise EditError(f"cannot move rule {rule_id!r} relative to itself")
        anchor = before or after or ""
        if not top:
            self.index(anchor)  # it exists
        start, end = self._block(self.index(rule_id))
        block = self.text.splitlines(keepends=True)[start:end]
        self._splice(start, end, "")
        target = 0 if top else self.index(anchor) + (1 if after else 0)
        self._splice(self._boundary(target), self._boundary(target), "".join(block))
        return [f"moved rule {rule_id!r} to position {target + 1} of {len(self.rules)}"]

    # --- text ---------------------------------------------------------------------------------

    def _block(self, index: int) -> tuple[int, int]:
        """Lines of rule ``index`` with the comment lines above it."""
        assert self.chunks is not None
        return self.chunks[index][0], self.chunks[index][3]

    def _boundary(self, index: int) -> int:
        assert self.chunks is not None
        return self.chunks[index][0] if index < len(self.chunks) else self.chunks[-1][3]

    def _splice(self, start: int, end: int, text: str) -> None:
        lines = self.text.splitlines(keepends=True)
        self._set("".join(lines[:start]) + text + "".join(lines[end:]))

    def _set(self, text: str) -> None:
        self.text = text
        self._load()

    def _change(self, rule_id: str, change: Callable[[CommentedMap], object]) -> None:
        """Change one rule on the YAML document, then replace only that rule's own lines."""
        index = self.index(rule_id)
        if self.chunks is None:
            change(self.rules[index])
            self._set(_dump(self.yaml, self.data))
            return
        rule = self.rules[index]
        _detach_trailing_comment(rule)  # the comment above the next rule: it stays where it is
        change(rule)
        dumped = _dump(self.yaml, self.data)
        new_chunks = _chunks(dumped, self.yaml.load(dumped))
        assert new_chunks is not None
        body = dumped.splitlines(keepends=True)[new_chunks[index][2] : new_chunks[index][3]]
        self._splice(self.chunks[index][2], self.chunks[index][3], "".join(body))


def _mapping_indent(text: str) -> int:
    """How far the file indents a mapping nested in a mapping (new rules are written the same way)."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for line, following in zip(lines, lines[1:], strict=False):
        if _BLOCK_KEY.match(line) and not following.lstrip().startswith("-"):
            step = (len(following) - len(following.lstrip())) - (len(line) - len(line.lstrip()))
            if step > 0:
                return step
    return 2


_BLOCK_KEY = re.compile(r"^\s*[\w.-]+:\s*$")


def _dump(yaml: YAML, data: Any) -> str:
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def _render(yaml: YAML, rule: CommentedMap, offset: int, column: int) -> str:
    """A new rule as lines of a block list whose dashes are at ``column``."""
    text = _dump(yaml, CommentedSeq([rule]))
    shift = column - offset
    return "".join((" " * shift + line if shift >= 0 else line[-shift:]) for line in text.splitlines(keepends=True))


def _detach_trailing_comment(node: Any) -> None:
    """Keep only the end-of-line comment after a node's last value (ruamel hangs the
    comment lines that follow a node, i.e. those above the next rule, on its last value)."""
    while isinstance(node, CommentedMap | CommentedSeq) and len(node):
        last = list(node)[-1] if isinstance(node, CommentedMap) else len(node) - 1
        slots = node.ca.items.get(last)
        token = (slots[2] if isinstance(node, CommentedMap) else slots[0]) if slots else None
        if token is not None and "\n" in token.value:
            token.value = token.value[: token.value.index("\n") + 1]
        node = node[last]


def _chunks(text: str, data: Any) -> list[tuple[int, int, int, int]] | None:
    """For each rule: (first line of the comments above it, its dash column, its first line, end line).
    None when there are no rules or they are written as a flow list."""
    rules = data.get("rules") if isinstance(data, CommentedMap) else None
    if not isinstance(rules, CommentedSeq) or not len(rules) or rules.fa.flow_style():
        return None
    lines = text.splitlines()
    result: list[tuple[int, int, int, int]] = []
    floor = int(data.lc.key("rules")[0]) + 1
    for index in range(len(rules)):
        line = int(rules.lc.item(index)[0])
        while line > floor and not lines[line].lstrip().startswith("-"):
            line -= 1
        column = len(lines[line]) - len(lines[line].lstrip())
        lead = line
        while lead > floor and (not lines[lead - 1].strip() or lines[lead - 1].lstrip().startswith("#")):
            lead -= 1
        if result:
            previous = result[-1]
            result[-1] = (previous[0], previous[1], previous[2], lead)
        result.append((lead, column, line, len(lines)))
        floor = line + 1
    lead, column, line, _ = result[-1]
    end = line + 1
    while end < len(lines):
        stripped = lines[end].strip()
        indent = len(lines[end]) - len(lines[end].lstrip())
        if stripped and not stripped.startswith("#") and indent <= column:
            break
        end += 1
    while end > line + 1 and (not lines[end - 1].strip() or _is_comment_at(lines[end - 1], column)):
        end -= 1
    result[-1] = (lead, column, line, end)
    return result


def _is_comment_at(line: str, column: int) -> bool:
    return line.lstrip().startswith("#") and len(line) - len(line.lstrip()) <= column


def _discard(rule: CommentedMap, key: str, value: str) -> None:
    match = rule["match"]
    match[key].remove(value)
    if not match[key]:
        del match[key]


def _entries(rule: CommentedMap, key: str) -> CommentedSeq:
    match = rule.setdefault("match", CommentedMap())
    if not isinstance(match.get(key), list):
        match[key] = CommentedSeq()
    entries: CommentedSeq = match[key]
    return entries


def _same(have: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return {k: str(v) for k, v in have.items()} == {k: str(v) for k, v in wanted.items()}


@dataclass
class EditResult:
    path: str
    before: str
    after: str
    messages: list[str]
    policy: Policy  # the edited policy, as loaded
    before_hash: str | None
    written: bool = False  # False for a dry run, and when the edit changes nothing
    backup: str = ""
    audit: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.after != self.before

    @property
    def diff(self) -> str:
        name = Path(self.path).name
        lines = difflib.unified_diff(
            self.before.splitlines(keepends=True), self.after.splitlines(keepends=True), f"a/{name}", f"b/{name}"
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def edit_policy(
    path: str | Path,
    change: Callable[[PolicyDocument, Policy | None], list[str]],
    *,
    command: dict[str, Any],
    dry_run: bool = False,
) -> EditResult:
    """Apply ``change`` to the policy file at ``path``: validated, atomic, locked, backed up, audited.
    ``change`` gets the document and the current policy (None when it does not load). A dry run
    takes no lock and writes nothing: the file is only ever replaced whole, so it reads a whole one."""
    target = Path(path)  # validated as the proxy reads it: lists and catalogue beside this path
    real = target.resolve()  # written through a symlink, not over it
    with contextlib.nullcontext() if dry_run else _locked(real):
        before = _read(target)
        try:
            current: Policy | None = load_policy(target)
        except PolicyError:
            current = None
        document = PolicyDocument(before)
        messages = change(document, current)
        after = document.dump()
        if after == before and current is not None:  # e.g. blocking what is already blocked: nothing to do
            return EditResult(str(target), before, after, messages, current, current.hash)
        try:
            edited = load_policy(target, after.encode())
        except PolicyError as error:
            raise EditError(
                f"the edit was refused because the result would not load; {target} is unchanged:\n{error}"
            ) from None
        result = EditResult(str(target), before, after, messages, edited, current.hash if current else None)
        if dry_run:
            return result
        try:
            result.backup = _backup(real)
            _write_atomically(real, after.encode())
        except OSError as error:
            raise EditError(f"cannot write {error.filename or real}: {error.strerror}; {target} is unchanged") from None
        result.written = True
        try:
            result.audit = _audit(real, command, result)
        except OSError as error:
            raise EditError(
                f"the policy was written, but the audit record could not be: {error.filename}: {error.strerror}"
            ) from None
    return result


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EditError(f"{path} does not exist (create one with 'aipolicy init {path}')") from None
    except (OSError, UnicodeDecodeError) as error:
        raise EditError(f"cannot read {path}: {error}") from None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on PATH.lock that serialises edits (read, change, write, audit)."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise EditError(f"cannot create the lock file {lock_path}: {error.strerror}") from None
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise EditError(
                        f"{path} is being edited by another process (lock {lock_path}); try again"
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # releases the lock


def _backup(path: Path) -> str:
    backup = path.with_name(path.name + ".bak")
    _write_atomically(backup, path.read_bytes(), mode_from=path)
    return str(backup)


def _write_atomically(path: Path, content: bytes, mode_from: Path | None = None) -> None:
    mode = (mode_from or path).stat().st_mode & 0o7777 if (mode_from or path).exists() else 0o644
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def audit_log_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".audit.jsonl")


def _audit(path: Path, command: dict[str, Any], result: EditResult) -> str:
    record = {
        "ts": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "user": _user(),
        "sudo_user": os.environ.get("SUDO_USER", ""),
        "host": os.uname().nodename,
        "file": str(path.resolve()),
        **command,
        "changes": result.messages,
        "before": result.before_hash,
        "after": result.policy.hash,
    }
    audit = audit_log_path(path)
    line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()
    fd = os.open(audit, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write per line: lines from concurrent writers never interleave
        os.fsync(fd)
    finally:
        os.close(fd)
    return str(audit)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
