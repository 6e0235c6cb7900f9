"""Importing a community list into a named list of the policy.

    parsed = parse_source(read_source("https://example.org/hosts.txt"))
    plan = plan_import("policy.yaml", "community", parsed, source="https://example.org/hosts.txt")
    print(len(plan.added), "new entries")
    apply_import(plan)      # validated with the real loader, then written atomically

An inline list (``lists: NAME: [...]``) is updated in the policy file, keeping its
comments and layout (ruamel.yaml round trip); a list kept in a file
(``lists: NAME: {file: …}``) has its file rewritten. Entries are compared in the
core's canonical form, so ``DeepSeek.example.`` is a duplicate of
``deepseek.example`` and a second import of the same source adds nothing.
"""

from __future__ import annotations

import datetime
import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.tokens import CommentToken

from aipolicy._errors import AipolicyError, PolicyError
from aipolicy.matching import parse_target
from aipolicy.policy import load_policy, read_yaml_file

from ._community_lists import _PLAIN_DOMAIN, ParsedSource, SourceLine

_SAMPLE = 20
# (mapping, sequence, offset) layouts tried to reproduce a policy file byte for byte.
_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (2, 4, 0))


class ImportListError(AipolicyError):
    """The import cannot be applied: no such list, or the result would not load."""


@dataclass
class ImportPlan:
    """What an import would change; ``apply_import`` writes it."""

    source: str
    list_name: str
    list_kind: str  # "inline" (in the policy file) or "file"
    target_file: str  # the file that changes: the policy, or the list file
    parsed: ParsedSource
    before: int  # entries in the list before the import
    added: list[tuple[str, int]] = field(default_factory=list)  # (entry, source line)
    removed: list[str] = field(default_factory=list)
    duplicates: list[SourceLine] = field(default_factory=list)
    new_text: str = ""
    policy_path: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)

    @property
    def after(self) -> int:
        return self.before + len(self.added) - len(self.removed)

    def as_dict(self) -> dict[str, Any]:
        parsed = self.parsed
        return {
            "source": self.source,
            "format": parsed.format,
            "list": self.list_name,
            "list_kind": self.list_kind,
            "file": self.target_file,
            "changed": self.changed,
            "entries_before": self.before,
            "entries_after": self.after,
            "added": [{"entry": entry, "line": line} for entry, line in self.added],
            "removed": list(self.removed),
            "duplicates": [item.as_dict() for item in self.duplicates],
            "invalid": [item.as_dict() for item in parsed.invalid],
            "skipped": parsed.skipped_counts(),
            "skipped_lines": [item.as_dict() for item in parsed.skipped[:_SAMPLE]],
            "unsupported": [item.as_dict() for item in parsed.skipped if item.reason == "include"],
            "attributes": dict(parsed.attributes),
        }


def canonical(entry: object) -> str:
    """An entry as the core reads it, so that spellings of one target compare equal."""
    text = str(entry)
    if _PLAIN_DOMAIN.fullmatch(text):
        return text  # already canonical: the common case in large lists
    try:
        return str(parse_target(text))
    except ValueError:
        return text.strip()


def plan_import(
    policy_path: str | Path, list_name: str, parsed: ParsedSource, *, source: str, replace: bool = False
) -> ImportPlan:
    """Work out what importing ``parsed`` into the list would change; write nothing.

    With ``replace`` the list becomes exactly the source's valid entries (entries
    not in the source are removed); otherwise the source's entries are added."""
    try:
        load_policy(policy_path)
    except PolicyError as error:
        raise ImportListError(f"the policy does not load; fix it first:\n{error}") from None
    _, data, _ = read_yaml_file(policy_path, "policy")
    lists = data.get("lists") if isinstance(data, dict) else None
    if not isinstance(lists, dict) or list_name not in lists:
        names = ", ".join(sorted(lists)) if isinstance(lists, dict) else "none"
        raise ImportListError(
            f"the policy {str(policy_path)!r} has no list {list_name!r} (its lists: {names}); "
            f"add one under 'lists:' first, e.g. '{list_name}: []' or '{list_name}: {{file: {list_name}.txt}}'"
        )
    body = lists[list_name]
    if isinstance(body, list):
        existing = [canonical(item) for item in body]
        plan = _plan(policy_path, list_name, parsed, source, "inline", str(policy_path), existing, replace)
        if plan.changed:
            document, yaml = _load_round_trip(Path(policy_path))
            _edit_inline(document["lists"][list_name], plan)
            plan.new_text = _dump(yaml, document)
    else:
        list_path = Path(policy_path).parent / str(body["file"])
        list_format = str(body.get("format", "plain"))
        text = list_path.read_text(encoding="utf-8", errors="replace")
        lines = _list_file_entries(text, list_format)
        existing = [entry for entries in lines for entry in entries]
        plan = _plan(policy_path, list_name, parsed, source, "file", str(list_path), existing, replace)
        if plan.changed:
            plan.new_text = _edit_file(text, lines, list_format, plan)
    return plan


def _plan(
    policy_path: str | Path,
    list_name: str,
    parsed: ParsedSource,
    source: str,
    kind: str,
    target_file: str,
    existing: list[str],
    replace: bool,
) -> ImportPlan:
    plan = ImportPlan(source, list_name, kind, target_file, parsed, len(existing), policy_path=str(policy_path))
    present = set(existing)
    first_line: dict[str, int] = {}
    for entry, line in parsed.entries:
        if entry in first_line:
            plan.duplicates.append(SourceLine(line, entry, f"repeats line {first_line[entry]} of the source"))
            continue
        first_line[entry] = line
        if entry in present:
            plan.duplicates.append(SourceLine(line, entry, "already in the list"))
        else:
            plan.added.append((entry, line))
    if replace:
        plan.removed = [entry for entry in dict.fromkeys(existing) if entry not in first_line]
    return plan


def _load_round_trip(path: Path) -> tuple[Any, YAML]:
    """The document, and a dumper set to the indentation that reproduces the file best."""
    text = path.read_text(encoding="utf-8")
    try:
        document = _yaml(_LAYOUTS[0]).load(text)
    except YAMLError as error:
        raise ImportListError(f"{path}: cannot be edited: {error}") from None
    best: tuple[int, YAML] | None = None
    for layout in _LAYOUTS:
        yaml = _yaml(layout)
        dumped = _dump(yaml, document)
        if dumped == text:
            return document, yaml
        score = len(set(dumped.splitlines()) ^ set(text.splitlines()))
        if best is None or score < best[0]:
            best = (score, yaml)
    assert best is not None
    return document, best[1]


def _yaml(layout: tuple[int, int, int]) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the author wrote on one
    mapping, sequence, offset = layout
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _dump(yaml: YAML, document: Any) -> str:
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _edit_inline(body: CommentedSeq, plan: ImportPlan) -> None:
    tail = _take_trailing_comment(body)
    removed = set(plan.removed)
    for index in reversed(range(len(body))):
        if canonical(body[index]) in removed:
            del body[index]
    body.extend(entry for entry, _ in plan.added)
    if tail is not None and len(body):
        slot = body.ca.items.setdefault(len(body) - 1, [None, None, None, None])
        if slot[0] is None:
            slot[0] = tail
        else:
            slot[0].value = slot[0].value.rstrip("\n") + "\n" + tail.value[1:]


def _take_trailing_comment(body: CommentedSeq) -> CommentToken | None:
    """ruamel keeps the blank lines and comments that follow a block sequence on its
    last item; take them off it, to put them back after the list's new last item."""
    slot = body.ca.items.get(len(body) - 1) if len(body) else None
    if not slot or slot[0] is None:
        return None
    token = slot[0]
    head, newline, tail = token.value.partition("\n")
    if not tail:
        return None
    token.value = head + newline
    return CommentToken("\n" + tail, token.start_mark, None)


def _list_file_entries(text: str, list_format: str) -> list[list[str]]:
    """The canonical entries on each line of a list file, as the loader reads it."""
    result: list[list[str]] = []
    for raw in text.split("\n"):
        item = raw.replace("\r", "").split("#", 1)[0].strip()
        if not item:
            result.append([])
        elif list_format == "hosts":
            result.append([canonical(name) for name in item.split()[1:]])
        else:
            result.append([canonical(item)])
    return result


def _edit_file(text: str, lines: list[list[str]], list_format: str, plan: ImportPlan) -> str:
    removed = set(plan.removed)
    kept = [raw for raw, entries in zip(text.split("\n"), lines, strict=True) if not removed.intersection(entries)]
    out = "\n".join(kept)
    if plan.added:
        if out and not out.endswith("\n"):
            out += "\n"
        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
        source = plan.source.replace("\n", " ")
        out += f"# {len(plan.added)} entries imported by aipolicy from {source} on {when}\n"
        prefix = "0.0.0.0 " if list_format == "hosts" else ""
        out += "".join(f"{prefix}{entry}\n" for entry, _ in plan.added)
    return out


def apply_import(plan: ImportPlan) -> None:
    """Write the plan: the new text is loaded with the real loader first, and
    replaces the old file atomically only if the whole policy still loads."""
    if not plan.changed:
        return
    target = Path(plan.target_file)
    policy_path = Path(plan.policy_path)
    if plan.list_kind == "inline":
        write_atomically(
            target, plan.new_text.encode(), check=lambda temp: _check_beside(policy_path, temp.read_bytes())
        )
        return
    document, yaml = _load_round_trip(policy_path)

    def check_list(temp: Path) -> None:
        document["lists"][plan.list_name]["file"] = str(temp)  # absolute: the loader joins it to nothing
        _check_beside(policy_path, _dump(yaml, document).encode(), {str(temp): str(target)})

    write_atomically(target, plan.new_text.encode(), check=check_list)


def _check_beside(policy_path: Path, data: bytes, renames: dict[str, str] | None = None) -> None:
    """Load a candidate policy from a temporary file beside the real one (where a symbolic
    link to it is, if it is one), so that its relative catalogue and list paths resolve alike."""
    candidate = _stage(policy_path, data)
    try:
        _check_policy(candidate, policy_path, renames)
    finally:
        candidate.unlink(missing_ok=True)


def _check_policy(candidate: Path, real: Path, renames: dict[str, str] | None = None) -> None:
    try:
        load_policy(candidate)
    except PolicyError as error:
        message = str(error).replace(str(candidate), str(real))
        for temp, final in (renames or {}).items():
            message = message.replace(temp, final)
        raise ImportListError(f"the imported entries would not load, so nothing was written:\n{message}") from None


def write_atomically(path: Path, data: bytes, check: Callable[[Path], None] | None = None) -> None:
    """Replace ``path`` with ``data`` all at once: write a temporary file beside it,
    run ``check`` on it (raising stops the write), then ``os.replace``. Readers see
    the old file or the new one, never half of either; the old file's mode is kept,
    and a symbolic link is followed (its target is replaced, the link stays)."""
    path = Path(os.path.realpath(path))
    temp = _stage(path, data)
    try:
        if check is not None:
            check(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def _stage(path: Path, data: bytes) -> Path:
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(descriptor, os.stat(path).st_mode & 0o7777)
        except FileNotFoundError:
            pass
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _sync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
