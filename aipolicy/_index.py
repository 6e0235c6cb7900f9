"""Hash indexes whose lookup cost does not grow with the number of entries.

A host is looked up by its label suffixes: ``a.b.example.com`` costs five dict
probes whether the index holds ten names or ten million. IP networks are kept
in one dict per prefix length, so an address costs one probe per distinct
prefix length in use.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import translate
from typing import Generic, TypeVar

from ._hosts import IPAddress

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PathPattern:
    """A path prefix (segment-aligned) or glob, matched against a normalised path."""

    text: str
    regex: re.Pattern[str] | None

    @classmethod
    def parse(cls, text: str) -> PathPattern:
        lowered = text.lower()
        if lowered.endswith("/*") and not any(c in lowered[:-2] for c in "*?["):
            lowered = lowered[:-2]  # "/org/*" is the prefix "/org": the org page and all under it
        if any(c in lowered for c in "*?["):
            return cls(lowered, re.compile(translate(lowered)))
        return cls(lowered.rstrip("/") or "/", None)

    def matches(self, path: str) -> bool:
        if self.regex is not None:
            return self.regex.match(path) is not None
        prefix = self.text
        if prefix == "/":
            return True
        return path == prefix or path.startswith(prefix) and path[len(prefix)] == "/"


class HostIndex(Generic[T]):
    """Maps domain patterns to values; :meth:`lookup` yields every value that applies.

    Pattern kinds: ``example.com`` (itself and subdomains), ``*.example.com``
    (subdomains only) and ``=example.com`` (that host only).
    """

    __slots__ = ("_self", "_parent", "size")

    def __init__(self) -> None:
        self._self: dict[str, tuple[T, ...]] = {}  # applies when host == key
        self._parent: dict[str, tuple[T, ...]] = {}  # applies when key is a proper suffix
        self.size = 0

    def add(self, pattern: str, value: T) -> None:
        if pattern.startswith("*."):
            self._put(self._parent, pattern[2:], value)
        elif pattern.startswith("="):
            self._put(self._self, pattern[1:], value)
        else:
            self._put(self._self, pattern, value)
            self._put(self._parent, pattern, value)
        self.size += 1

    def add_many(self, patterns: list[str], shared: tuple[T, ...]) -> None:
        """Add many patterns with one shared value tuple (cheap for million-entry lists)."""
        for pattern in patterns:
            if pattern.startswith(("*.", "=")) or pattern in self._self or pattern in self._parent:
                for value in shared:
                    self.add(pattern, value)
                continue
            self._self[pattern] = shared
            self._parent[pattern] = shared
            self.size += 1

    @staticmethod
    def _put(table: dict[str, tuple[T, ...]], key: str, value: T) -> None:
        existing = table.get(key)
        if existing is None:
            table[key] = (value,)
        elif value not in existing:
            table[key] = existing + (value,)

    def lookup(self, host: str) -> Iterator[T]:
        found = self._self.get(host)
        if found:
            yield from found
        parent = self._parent
        dot = host.find(".")
        while dot != -1:
            found = parent.get(host[dot + 1 :])
            if found:
                yield from found
            dot = host.find(".", dot + 1)


class NetworkIndex(Generic[T]):
    """Maps IP addresses and networks to values."""

    __slots__ = ("_tables",)

    def __init__(self) -> None:
        # (version, prefix length) -> {network address as int: values}
        self._tables: dict[tuple[int, int], dict[int, tuple[T, ...]]] = {}

    def add(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network, value: T) -> None:
        table = self._tables.setdefault((network.version, network.prefixlen), {})
        key = int(network.network_address)
        existing = table.get(key, ())
        if value not in existing:
            table[key] = existing + (value,)

    def __len__(self) -> int:
        return sum(len(t) for t in self._tables.values())

    def lookup(self, address: IPAddress) -> Iterator[T]:
        number = int(address)
        bits = address.max_prefixlen
        for (version, prefix), table in self._tables.items():
            if version != address.version:
                continue
            found = table.get(number >> (bits - prefix) << (bits - prefix))
            if found:
                yield from found
