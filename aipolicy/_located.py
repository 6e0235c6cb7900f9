"""YAML loading that remembers where every key and value came from.

PyYAML's composer gives node positions; we build plain dicts and lists from
the nodes and keep the positions beside them, so that validation can report
``FILE:LINE:COL`` for any value. Duplicate keys (which PyYAML silently
overwrites) and alias bombs are reported instead of accepted.
"""

from __future__ import annotations

from typing import Any

import yaml

from ._errors import Problem

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

MAX_NODES = 20_000_000
Position = tuple[int, int]


class LocatedDict(dict[str, Any]):
    """A mapping that knows the position of itself, its keys and its values."""

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position
        self.key_positions: dict[str, Position] = {}
        self.value_positions: dict[str, Position] = {}


class LocatedList(list[Any]):
    """A sequence that knows the position of itself and of each item."""

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position
        self.item_positions: list[Position] = []


def _position(node: yaml.Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def load_located(text: str, filename: str) -> tuple[Any, list[Problem]]:
    """Parse YAML text; return (data, problems). Data is None on a syntax error."""
    loader = _Loader(text)
    problems: list[Problem] = []
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"not valid YAML: {error.problem or error}"
        if error.context:
            message += f" ({error.context})"
        return None, [Problem(filename, line, column, "yaml-syntax", message)]
    except yaml.YAMLError as error:
        return None, [Problem(filename, 1, 1, "yaml-syntax", f"not valid YAML: {error}")]
    finally:
        loader.dispose()
    if root is None:
        return None, [Problem(filename, 1, 1, "empty-file", "the file is empty")]
    counter = [0]
    try:
        data = _build(root, loader, filename, problems, counter)
    except _TooLarge:
        return None, [Problem(filename, 1, 1, "too-large", f"more than {MAX_NODES:,} YAML values (alias expansion?)")]
    return data, problems


class _TooLarge(Exception):
    pass


def _build(node: yaml.Node, loader: Any, filename: str, problems: list[Problem], counter: list[int]) -> Any:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise _TooLarge
    if isinstance(node, yaml.MappingNode):
        mapping = LocatedDict(_position(node))
        for key_node, value_node in node.value:
            key = _build(key_node, loader, filename, problems, counter)
            if not isinstance(key, str):
                key = str(key)
            if key in mapping:
                line, column = _position(key_node)
                problems.append(
                    Problem(
                        filename,
                        line,
                        column,
                        "duplicate-key",
                        f"duplicate key {key!r}; the later value would silently win",
                    )
                )
            mapping[key] = _build(value_node, loader, filename, problems, counter)
            mapping.key_positions[key] = _position(key_node)
            mapping.value_positions[key] = _position(value_node)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        sequence = LocatedList(_position(node))
        for item in node.value:
            sequence.append(_build(item, loader, filename, problems, counter))
            sequence.item_positions.append(_position(item))
        return sequence
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as error:
        line, column = _position(node)
        problems.append(Problem(filename, line, column, "yaml-value", f"cannot read value {node.value!r}: {error}"))
        return node.value
