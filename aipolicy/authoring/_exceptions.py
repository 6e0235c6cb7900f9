"""Adding and removing a policy's exceptions, as edits of the policy text: a new exception is
appended as lines of its own, a removed one loses only its own lines, so comments and layout
elsewhere stay as they were. Used with ``edit_policy`` (validated, locked, backed up, audited)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from aipolicy._errors import EditError

from ._editor import PolicyDocument


@dataclass(frozen=True)
class NewException:
    rule: str
    until: str  # YYYY-MM-DD
    ticket: str
    reason: str = ""
    users: Sequence[str] = ()
    groups: Sequence[str] = ()
    networks: Sequence[str] = ()
    id: str = ""
    owner: str = ""


def _scalar(value: str) -> str:
    """A YAML scalar that reads back as exactly this string: JSON's double-quoted form is valid YAML."""
    return json.dumps(value, ensure_ascii=False)


def _lines(exception: NewException, indent: str) -> list[str]:
    fields: list[tuple[str, str]] = []
    if exception.id:
        fields.append(("id", _scalar(exception.id)))
    fields.append(("rule", _scalar(exception.rule)))
    for key, values in (("users", exception.users), ("groups", exception.groups), ("networks", exception.networks)):
        if values:
            fields.append((key, "[" + ", ".join(_scalar(v) for v in values) + "]"))
    fields.append(("until", exception.until))
    fields.append(("ticket", _scalar(exception.ticket)))
    if exception.reason:
        fields.append(("reason", _scalar(exception.reason)))
    if exception.owner:
        fields.append(("owner", _scalar(exception.owner)))
    first, *rest = fields
    return [f"{indent}- {first[0]}: {first[1]}\n"] + [f"{indent}  {key}: {value}\n" for key, value in rest]


def add_exception(document: PolicyDocument, exception: NewException) -> list[str]:
    if exception.rule not in document.ids():
        raise EditError(f"no rule {exception.rule!r} in the policy (rules: {', '.join(document.ids()) or 'none'})")
    data = document.data
    existing = data.get("exceptions")
    ident = exception.id or exception.ticket
    for item in existing or []:
        if isinstance(item, dict) and (item.get("id") or item.get("ticket")) == ident:
            raise EditError(f"an exception with id {ident!r} already exists (remove it first, or pass another --id)")
    text = document.text
    if existing is None:
        if "exceptions" in data:
            raise EditError("the policy's 'exceptions' is empty (null): write 'exceptions: []' or remove the key")
        addition = "\nexceptions:\n" + "".join(_lines(exception, "  "))
        document._set(text + addition)
    elif not isinstance(existing, list):
        raise EditError("the policy's 'exceptions' is not a list, so it cannot be edited")
    else:
        lines = text.splitlines(keepends=True)
        start, end = _section(document, "exceptions", lines)
        if not existing:  # `exceptions: []` on one line
            lines[start] = "exceptions:\n"
            indent = "  "
        else:
            column = existing.lc.item(0)[1]  # type: ignore[attr-defined]  # ruamel's CommentedSeq
            indent = " " * max(0, column - 2)
        insert = end
        while insert > start + 1 and not lines[insert - 1].strip():
            insert -= 1  # keep blank lines after the section where they were
        document._set("".join(lines[:insert] + _lines(exception, indent) + lines[insert:]))
    return [f"exception {ident!r}: rule {exception.rule} lifted until {exception.until} (ticket {exception.ticket})"]


def remove_exception(document: PolicyDocument, ident: str) -> list[str]:
    existing = document.data.get("exceptions")
    items = existing if isinstance(existing, list) else []
    ids = [str(item.get("id") or item.get("ticket")) if isinstance(item, dict) else "" for item in items]
    if ident not in ids:
        raise EditError(f"no exception {ident!r} in the policy (exceptions: {', '.join(ids) or 'none'})")
    index = ids.index(ident)
    lines = document.text.splitlines(keepends=True)
    _, section_end = _section(document, "exceptions", lines)
    positions = items.lc  # type: ignore[attr-defined]  # ruamel's CommentedSeq
    start = positions.item(index)[0]
    end = positions.item(index + 1)[0] if index + 1 < len(items) else section_end
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    while start > 0 and lines[start - 1].lstrip().startswith("#") and index > 0:
        start -= 1  # a comment line above the item belongs to it
    remaining = lines[:start] + lines[end:]
    if len(items) == 1:
        key_line = document.data.lc.key("exceptions")[0]
        remaining[key_line] = "exceptions: []\n"
    document._set("".join(remaining))
    return [f"exception {ident!r} removed"]


def _section(document: PolicyDocument, key: str, lines: list[str]) -> tuple[int, int]:
    """Line numbers (0-based, end exclusive) of a top-level key and its value."""
    keys = list(document.data.keys())
    start = document.data.lc.key(key)[0]
    following = keys.index(key) + 1
    end = document.data.lc.key(keys[following])[0] if following < len(keys) else len(lines)
    while end > start + 1 and lines[end - 1].lstrip().startswith("#"):
        end -= 1  # comments above the next key belong to it
    return start, end
