"""YAML loading that remembers where every key and value came from.

PyYAML's composer gives node positions; we build plain dicts and lists from
the nodes and keep the positions beside them, so that validation can report
``FILE:LINE:COL`` for any value. Duplicate keys (which PyYAML silently
overwrites) and alias bombs are reported instead of accepted.
"""

from __future__ import annotations

from typing import Any

import yaml

from aipolicy._errors import Problem

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

MAX_NODES = 5_000_000  # values built; large lists belong in list files
MAX_DEPTH = 64
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
    builder = _Builder(loader, filename, problems)
    try:
        data = builder.build(root, 0)
    except _TooLarge as error:
        return None, [Problem(filename, error.position[0], error.position[1], "too-large", error.message)]
    if data is None:
        return None, [Problem(filename, 1, 1, "empty-file", "the file holds no document (only null or comments)")]
    return data, problems


class _TooLarge(Exception):
    def __init__(self, position: Position, message: str) -> None:
        self.position = position
        self.message = message


class _Builder:
    """Builds plain data from nodes. A node reached again through an alias is
    built once and shared, so alias bombs cost nothing; depth is bounded."""

    def __init__(self, loader: Any, filename: str, problems: list[Problem]) -> None:
        self.loader = loader
        self.filename = filename
        self.problems = problems
        self.count = 0
        self.built: dict[int, Any] = {}

    def build(self, node: yaml.Node, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge(_position(node), f"more than {MAX_NODES:,} YAML values; put large lists in a list file")
        if depth > MAX_DEPTH:
            raise _TooLarge(_position(node), f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        shared = self.built.get(id(node))
        if shared is not None:
            return shared
        if isinstance(node, yaml.MappingNode):
            result: Any = self._mapping(node, depth)
        else:
            result = self._sequence(node, depth)  # type: ignore[arg-type]
        self.built[id(node)] = result
        return result

    def _mapping(self, node: yaml.MappingNode, depth: int) -> LocatedDict:
        mapping = LocatedDict(_position(node))
        for key_node, value_node in node.value:
            key = self.build(key_node, depth + 1)
            if not isinstance(key, str):
                key = str(key)
            if key in mapping:
                line, column = _position(key_node)
                self.problems.append(
                    Problem(
                        self.filename,
                        line,
                        column,
                        "duplicate-key",
                        f"duplicate key {key!r}; the later value would silently win",
                    )
                )
            mapping[key] = self.build(value_node, depth + 1)
            mapping.key_positions[key] = _position(key_node)
            mapping.value_positions[key] = _position(value_node)
        return mapping

    def _sequence(self, node: yaml.SequenceNode, depth: int) -> LocatedList:
        sequence = LocatedList(_position(node))
        for item in node.value:
            sequence.append(self.build(item, depth + 1))
            sequence.item_positions.append(_position(item))
        return sequence

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError) as error:
            line, column = _position(node)
            self.problems.append(
                Problem(self.filename, line, column, "yaml-value", f"cannot read value {node.value!r}: {error}")
            )
            return node.value
