"""Hash indexes whose lookup cost does not grow with the number of entries.

A host is looked up by its label suffixes: ``a.b.example.com`` costs five dict
probes whether the index holds ten names or ten million. IP networks are kept
in one dict per prefix length, so an address costs one probe per distinct
prefix length in use.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import translate
from typing import Any, Generic, TypeVar

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

    With an ``order`` (a key function), the values stored under each name are kept
    stably sorted by it, so that :meth:`walk` can hand back a stored tuple as is.
    """

    __slots__ = ("_table", "size", "_order", "no_companion")

    def __init__(self, order: Callable[[T], Any] | None = None) -> None:
        # name -> (values on the name, values below it, companion's first value on it, below it)
        self._table: dict[str, tuple[Any, ...]] = {}
        self.size = 0
        self._order = order
        # what walk()'s companion value means when it is None: None, there is no companion
        # (ask it yourself); once one is added, "": the companion holds nothing for that name
        self.no_companion: str | None = None

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
        bucket = (on_self, on_parent, None, None)
        self._table[key] = _merge(existing, bucket, self._order) if existing else bucket
        self.size += 1

    def add_many(self, names: list[str], value: T) -> None:
        """Add many plain domains (itself and subdomains) with one value, at C speed."""
        bucket = ((value,), (value,), None, None)
        new = dict.fromkeys(names, bucket)
        self.size += len(new)
        old = self._table
        small, large = (old, new) if len(old) <= len(new) else (new, old)
        for key, pair in small.items():
            other = large.get(key)
            large[key] = _merge(other, pair, self._order) if other is not None and other is not pair else pair
        self._table = large

    def names(self) -> Iterator[tuple[str, bool, bool]]:
        """Every indexed name, whether values apply to the name itself, and to names below it."""
        for name, (on_self, on_parent, _, _) in self._table.items():
            if on_self or on_parent:  # not a name only the companion holds
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

    def match(self, host: str) -> tuple[T, ...]:
        """What :meth:`lookup` returns, as a tuple stably sorted by the index's order (if it has one)."""
        _, found, in_order, _ = self.walk(host)
        return found if in_order or self._order is None else tuple(sorted(found, key=self._order))

    def walk(self, host: str) -> tuple[T | None, tuple[T, ...], bool, Any]:
        """One walk over a host's labels, for the hot path of a decision: (first, values, in_order, companion).

        ``values``: what :meth:`lookup` returns, as a tuple (a stored one, not a copy, when one
        name holds them all: the usual case); ``in_order``: whether that tuple is already stably
        sorted by the index's order; ``first``: the value a stable sort would put first (None if
        none), found without sorting; ``companion``: what the companion index's :meth:`first`
        would return (see :meth:`add_companion`; None if it has nothing or there is none)."""
        get = self._table.get
        order = self._order
        bucket = get(host)
        if bucket is None:
            found: tuple[T, ...] = ()
            first = companion = None
        else:
            found = bucket[0]
            first = found[0] if found else None
            companion = bucket[2]
        in_order = True
        rest = host
        while True:  # partition, not find and slice: the fewest string operations per label
            _, dot, rest = rest.partition(".")
            if not dot:
                return first, found, in_order, companion
            bucket = get(rest)
            if bucket is not None:
                below = bucket[1]
                if below:
                    if found:
                        found += below
                        in_order = False
                        if order is not None and order(below[0]) < order(first):  # type: ignore[arg-type]
                            first = below[0]
                    else:
                        found = below
                        first = below[0]
                if companion is None:
                    companion = bucket[3]

    def first(self, host: str) -> T | None:
        """The first value :meth:`lookup` would return, without building the list."""
        get = self._table.get
        bucket = get(host)
        if bucket is not None and bucket[0]:
            found: T = bucket[0][0]
            return found
        rest = host
        while True:
            _, dot, rest = rest.partition(".")
            if not dot:
                return None
            bucket = get(rest)
            if bucket is not None and bucket[1]:
                found = bucket[1][0]
                return found

    def add_companion(self, other: HostIndex[Any]) -> None:
        """Keep, beside this index's values, what ``other.first(host)`` would return, so that
        :meth:`walk` answers both in one pass (a policy's rules and its
        catalogue's apps). Values added later keep it; ``other`` is read, not changed."""
        table = self._table
        self.no_companion = ""
        for key, (on_self, on_parent, _, _) in other._table.items():
            existing = table.get(key, ((), (), None, None))
            table[key] = (
                existing[0],
                existing[1],
                on_self[0] if on_self else None,
                on_parent[0] if on_parent else None,
            )


def _merge(a: tuple[Any, ...], b: tuple[Any, ...], order: Callable[[Any], Any] | None) -> tuple[Any, ...]:
    on_self = a[0] + tuple(v for v in b[0] if v not in a[0])
    on_parent = a[1] + tuple(v for v in b[1] if v not in a[1])
    if order is not None:  # stable: values with equal keys keep the order they were added in
        on_self, on_parent = tuple(sorted(on_self, key=order)), tuple(sorted(on_parent, key=order))
    companion = (a[2], a[3]) if a[2] is not None or a[3] is not None else (b[2], b[3])
    return on_self, on_parent, *companion


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
