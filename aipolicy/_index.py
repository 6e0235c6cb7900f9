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
    """Maps domain patterns to values; :meth:`lookup` returns every value that applies.

    Pattern kinds: ``example.com`` (itself and subdomains), ``*.example.com``
    (subdomains only) and ``=example.com`` (that host only). One dict holds,
    per name, the values that apply to the name itself and those that apply
    to names below it; a million-entry list shares one such pair.
    """

    __slots__ = ("_table", "size")

    def __init__(self) -> None:
        self._table: dict[str, tuple[tuple[T, ...], tuple[T, ...]]] = {}
        self.size = 0

    def add(self, pattern: str, value: T) -> None:
        one: tuple[T, ...] = (value,)
        none: tuple[T, ...] = ()
        if pattern.startswith("*."):
            key, on_self, on_parent = pattern[2:], none, one
        elif pattern.startswith("="):
            key, on_self, on_parent = pattern[1:], one, none
        else:
            key, on_self, on_parent = pattern, one, one
        existing = self._table.get(key)
        self._table[key] = _merge(existing, (on_self, on_parent)) if existing else (on_self, on_parent)
        self.size += 1

    def add_many(self, names: list[str], value: T) -> None:
        """Add many plain domains (itself and subdomains) with one value, at C speed."""
        bucket: tuple[tuple[T, ...], tuple[T, ...]] = ((value,), (value,))
        new = dict.fromkeys(names, bucket)
        self.size += len(new)
        old = self._table
        small, large = (old, new) if len(old) <= len(new) else (new, old)
        for key, pair in small.items():
            other = large.get(key)
            large[key] = _merge(other, pair) if other is not None and other is not pair else pair
        self._table = large

    def names(self) -> Iterator[tuple[str, bool, bool]]:
        """Every indexed name, whether values apply to the name itself, and to names below it."""
        for name, (on_self, on_parent) in self._table.items():
            yield name, bool(on_self), bool(on_parent)

    def lookup(self, host: str) -> list[T]:
        table = self._table
        found: list[T] = []
        bucket = table.get(host)
        if bucket is not None and bucket[0]:
            found.extend(bucket[0])
        dot = host.find(".")
        while dot != -1:
            bucket = table.get(host[dot + 1 :])
            if bucket is not None and bucket[1]:
                found.extend(bucket[1])
            dot = host.find(".", dot + 1)
        return found


def _merge(
    a: tuple[tuple[T, ...], tuple[T, ...]], b: tuple[tuple[T, ...], tuple[T, ...]]
) -> tuple[tuple[T, ...], tuple[T, ...]]:
    return (a[0] + tuple(v for v in b[0] if v not in a[0]), a[1] + tuple(v for v in b[1] if v not in a[1]))


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

    def lookup(self, address: IPAddress) -> list[T]:
        number = int(address)
        bits = address.max_prefixlen
        found: list[T] = []
        for (version, prefix), table in self._tables.items():
            if version != address.version:
                continue
            values = table.get(number >> (bits - prefix) << (bits - prefix))
            if values:
                found.extend(values)
        return found
