"""Collects every problem in a file instead of stopping at the first."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from aipolicy._errors import PolicyError, Problem

from ._located import LocatedDict, LocatedList, Position, load_located

IDENTIFIER = re.compile(r"[a-z0-9](?:[a-z0-9_.:-]{0,62}[a-z0-9])?")


class Checker:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[Problem] = []

    def error(self, position: Position, code: str, message: str) -> None:
        self.problems.append(Problem(self.filename, position[0], position[1], code, message))

    def warning(self, position: Position, code: str, message: str) -> None:
        self.problems.append(Problem(self.filename, position[0], position[1], code, message, "warning"))

    @property
    def failed(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    def mapping(self, value: Any, position: Position, what: str) -> LocatedDict | None:
        if isinstance(value, LocatedDict):
            return value
        self.error(position, "wrong-type", f"{what} must be a mapping (key: value), got {_describe(value)}")
        return None

    def sequence(self, value: Any, position: Position, what: str) -> LocatedList | None:
        if isinstance(value, LocatedList):
            return value
        self.error(position, "wrong-type", f"{what} must be a list, got {_describe(value)}")
        return None

    def items(self, mapping: LocatedDict, key: str, what: str) -> list[tuple[Any, Position]]:
        """The items of an optional list under ``key``, with their positions."""
        if key not in mapping:
            return []
        sequence = self.sequence(mapping[key], mapping.value_positions[key], f"{what}.{key}")
        if sequence is None:
            return []
        return list(zip(sequence, sequence.item_positions, strict=True))

    def entries(self, mapping: LocatedDict, key: str, what: str) -> list[tuple[str, Any, Position]]:
        """The (key, value, position) entries of an optional mapping under ``key``."""
        if key not in mapping:
            return []
        inner = self.mapping(mapping[key], mapping.value_positions[key], f"{what}.{key}")
        if inner is None:
            return []
        return [(k, v, inner.value_positions[k]) for k, v in inner.items()]

    def keys(self, mapping: LocatedDict, what: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
        for key, position in mapping.key_positions.items():
            if key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                self.warning(
                    position,
                    "unknown-key",
                    f"unknown key {key!r} in {what} may be a typo{suggestion} (valid keys: {', '.join(allowed)})",
                )
        for key in required:
            if key not in mapping:
                self.error(mapping.position, "missing-key", f"{what} has no {key!r} (required)")

    def string(self, mapping: LocatedDict, key: str, what: str, required: bool = False) -> str | None:
        if key not in mapping:
            return None
        value = mapping[key]
        if isinstance(value, str) and (value.strip() or not required):
            return value
        self.error(
            mapping.value_positions[key],
            "wrong-type",
            f"{what}.{key} must be a non-empty string, got {_describe(value)}"
            + (
                " (YAML reads on/off/yes/no/true/false as booleans: put the value in quotes)"
                if isinstance(value, bool)
                else ""
            ),
        )
        return None

    def identifier(self, mapping: LocatedDict, key: str, what: str) -> str | None:
        value = self.string(mapping, key, what, required=True)
        if value is not None and not IDENTIFIER.fullmatch(value):
            self.error(
                mapping.value_positions[key],
                "bad-id",
                f"{what}.{key} {value!r} is not a valid id: use lower-case letters, digits and - _ . : (at most 64)",
            )
            return None
        return value

    def choice(self, mapping: LocatedDict, key: str, what: str, valid: tuple[str, ...], hint: str = "") -> str | None:
        value = mapping.get(key)
        if key not in mapping:
            return None
        if isinstance(value, str) and value in valid:
            return value
        close = difflib.get_close_matches(str(value), valid, n=1)
        suggestion = f"; did you mean {close[0]!r}?" if close else ""
        self.error(
            mapping.value_positions[key],
            "bad-value",
            f"{what}.{key} is {value!r}{suggestion} (valid: {', '.join(valid)}){hint}",
        )
        return None

    def strings(self, mapping: LocatedDict, key: str, what: str) -> list[tuple[str, Position]]:
        """A list of strings (a single string is accepted as a list of one)."""
        if key not in mapping:
            return []
        value = mapping[key]
        if isinstance(value, str):
            return [(value, mapping.value_positions[key])]
        items = self.sequence(value, mapping.value_positions[key], f"{what}.{key}")
        if items is None:
            return []
        result = []
        for item, position in zip(items, items.item_positions, strict=True):
            if isinstance(item, str) and item.strip():
                result.append((item.strip(), position))
            else:
                self.error(
                    position,
                    "wrong-type",
                    f"each entry of {what}.{key} must be a non-empty string, got {_describe(item)}",
                )
        return result


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def read_yaml_file(path: str | Path, what: str, content: bytes | None = None) -> tuple[bytes, Any, Checker]:
    """Read a UTF-8 YAML file: (its bytes, its located data or None, a Checker holding the
    YAML problems). Raises PolicyError when the file cannot be read or is not UTF-8.
    With ``content``, those bytes are read as if they were the file (to check an edit before writing it)."""
    filename = str(path)
    try:
        raw = Path(path).read_bytes() if content is None else content
    except OSError as error:
        raise PolicyError(
            [Problem(filename, 1, 1, "unreadable", f"cannot read {what}: {error.strerror or error}")]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PolicyError(
            [Problem(filename, 1, 1, "not-utf8", f"{what} is not UTF-8 text (byte {error.start})")]
        ) from None
    data, problems = load_located(text, filename)
    check = Checker(filename)
    check.problems.extend(problems)
    return raw, data, check
