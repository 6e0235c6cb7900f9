"""Summaries of the event log: who tried to reach what, when, how often, and the trend.

    reader = read_events(paths, since=format_ts(previous_start), until=...)
    summary = summarise(filter_events(reader, EventFilter(actions={"block"})), ["user", "app"], since=..., until=...)

Events are counted in one streaming pass; memory grows with the number of
groups (and distinct users per group), never with the number of events.
"""

from __future__ import annotations

import datetime
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from aipolicy.eventlog import LogEvent

BY_KEYS = ("user", "group", "host", "app", "vendor", "rule", "directive", "action", "day", "hour")


def as_text(value: object) -> str | None:
    """A field's value as a string (events are hostile input: a field may hold anything)."""
    if value is None or type(value) is str:
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def who(data: dict[str, Any]) -> str | None:
    """The user, or the client's address when the request was not authenticated."""
    return as_text(data.get("user")) or as_text(data.get("client_ip"))


def groups_of(data: dict[str, Any]) -> list[str | None]:
    """The event's groups, each once; ``[None]`` when it has none."""
    value = data.get("groups")
    if isinstance(value, list):
        names = list(dict.fromkeys(as_text(name) for name in value if name is not None))
    else:
        names = [as_text(value)] if value else []
    return names or [None]


KeyReader = Callable[[dict[str, Any], str, str | None], str | None]


def _field(name: str) -> KeyReader:
    def read(data: dict[str, Any], ts: str, user: str | None) -> str | None:
        value = data.get(name)
        return value if value is None or type(value) is str else as_text(value)

    return read


# How each --by key reads an event, given its data, canonical ts and who (``group`` is apart: it may give several).
_KEY_READERS: dict[str, KeyReader] = {
    "user": lambda data, ts, user: user,
    "host": _field("host"),
    "app": _field("app"),
    "vendor": _field("vendor"),
    "rule": _field("rule"),
    "directive": _field("directive"),
    "action": _field("action"),
    "day": lambda data, ts, user: ts[:10],
    "hour": lambda data, ts, user: ts[:13] + ":00Z",
}


@dataclass(frozen=True)
class EventFilter:
    """Which events count: each non-empty set must hold the event's value (any of its groups)."""

    users: frozenset[str] = frozenset()  # user names or client addresses
    groups: frozenset[str] = frozenset()
    apps: frozenset[str] = frozenset()
    vendors: frozenset[str] = frozenset()
    rules: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    directives: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return any((self.users, self.groups, self.apps, self.vendors, self.rules, self.actions, self.directives))

    def matches(self, data: dict[str, Any]) -> bool:
        single = (
            (self.apps, "app"),
            (self.vendors, "vendor"),
            (self.rules, "rule"),
            (self.actions, "action"),
            (self.directives, "directive"),
        )
        if any(wanted and as_text(data.get(name)) not in wanted for wanted, name in single):
            return False
        if self.users and not {as_text(data.get("user")), as_text(data.get("client_ip"))} & self.users:
            return False
        return not self.groups or any(name in self.groups for name in groups_of(data))


def filter_events(events: Iterable[LogEvent], event_filter: EventFilter) -> Iterator[LogEvent]:
    if not event_filter:
        return iter(events)
    return (event for event in events if event_filter.matches(event.data))


class _Tally:
    __slots__ = ("count", "previous", "users", "first", "last")

    def __init__(self) -> None:
        self.count = 0
        self.previous = 0
        self.users: set[str | None] = set()
        self.first = "~"  # after any timestamp
        self.last = ""

    def add(self, ts: str, user: str | None) -> None:
        self.count += 1
        self.users.add(user)
        if ts < self.first:
            self.first = ts
        if ts > self.last:
            self.last = ts


@dataclass(frozen=True)
class GroupSummary:
    """One row: the values of the ``by`` keys and what happened under them."""

    key: dict[str, str | None]
    count: int
    users: int
    first: str | None
    last: str | None
    previous: int | None  # in the period of the same length just before ``since``

    @property
    def change(self) -> int | None:
        return None if self.previous is None else self.count - self.previous

    @property
    def change_percent(self) -> float | None:
        if self.previous is None or self.previous == 0:
            return None
        return round(100 * (self.count - self.previous) / self.previous, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.key,
            "count": self.count,
            "users": self.users,
            "first": self.first,
            "last": self.last,
            "previous": self.previous,
            "change": self.change,
            "change_percent": self.change_percent,
        }


@dataclass(frozen=True)
class Summary:
    by: tuple[str, ...]
    since: str | None
    until: str | None
    previous_since: str | None
    groups: list[GroupSummary]  # by count, largest first
    overall: GroupSummary  # every event: the total line
    days: dict[str, int]  # events per day (UTC), in day order

    @property
    def total(self) -> int:
        return self.overall.count

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "since": self.since,
            "until": self.until,
            "by": list(self.by),
            "groups": [group.as_dict() for group in self.groups],
            "users": self.overall.users,
            "first": self.overall.first,
            "last": self.overall.last,
            "previous_since": self.previous_since,
            "previous": self.overall.previous,
            "change": self.overall.change,
            "change_percent": self.overall.change_percent,
            "days": dict(self.days),
        }


def previous_period(since: datetime.datetime, until: datetime.datetime) -> datetime.datetime:
    """The start of the period of the same length that ends where ``since`` begins."""
    return since - (until - since)


Key = tuple[str | None, ...]


def _key_function(by: Sequence[str]) -> Callable[[dict[str, Any], str, str | None], list[Key]]:
    """The keys an event counts under: one, or one per group when grouping by group."""
    if "group" in by:
        readers = [None if key == "group" else _KEY_READERS[key] for key in by]

        def keys(data: dict[str, Any], ts: str, user: str | None) -> list[Key]:
            values = [groups_of(data) if read is None else [read(data, ts, user)] for read in readers]
            return list(itertools.product(*values))

        return keys
    simple = [_KEY_READERS[key] for key in by]
    if len(simple) == 1:
        (read,) = simple
        return lambda data, ts, user: [(read(data, ts, user),)]
    return lambda data, ts, user: [tuple([read(data, ts, user) for read in simple])]


def summarise(
    events: Iterable[LogEvent],
    by: Sequence[str] = ("rule",),
    *,
    since: str | None = None,
    until: str | None = None,
    previous_since: str | None = None,
) -> Summary:
    """Count events per combination of ``by`` values (an event in several groups counts in each).

    Events before ``since`` count as the previous period (the caller reads from
    ``previous_since``); the others are the period summarised.
    """
    unknown = [key for key in by if key not in BY_KEYS]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)} (valid: {', '.join(BY_KEYS)})")
    keys_of = _key_function(by)
    tallies: dict[Key, _Tally] = {}
    overall = _Tally()
    days: dict[str, int] = {}
    start = since or ""  # every timestamp sorts after ""
    for ts, data, _, _ in events:
        user = data.get("user")
        if not user or type(user) is not str:
            user = who(data)
        if ts < start:
            overall.previous += 1
            for key in keys_of(data, ts, user):
                tally = tallies.get(key)
                if tally is None:
                    tally = tallies[key] = _Tally()
                tally.previous += 1
            continue
        day = ts[:10]
        days[day] = days.get(day, 0) + 1
        overall.add(ts, user)
        for key in keys_of(data, ts, user):
            tally = tallies.get(key)
            if tally is None:
                tally = tallies[key] = _Tally()
            tally.add(ts, user)
    has_previous = since is not None and previous_since is not None
    rows = [_row(by, key, tally, has_previous) for key, tally in tallies.items() if tally.count]
    rows.sort(key=lambda row: (-row.count, [(value is None, value or "") for value in row.key.values()]))
    return Summary(
        by=tuple(by),
        since=since,
        until=until,
        previous_since=previous_since if has_previous else None,
        groups=rows,
        overall=_row((), (), overall, has_previous),
        days=dict(sorted(days.items())),
    )


def _row(by: Sequence[str], key: tuple[str | None, ...], tally: _Tally, has_previous: bool) -> GroupSummary:
    return GroupSummary(
        key=dict(zip(by, key, strict=True)),
        count=tally.count,
        users=len(tally.users),
        first=tally.first if tally.count else None,
        last=tally.last if tally.count else None,
        previous=tally.previous if has_previous else None,
    )


def sparkline(days: dict[str, int], *, width: int = 60) -> tuple[str, str, str]:
    """(first day, last day, one character per day) up to the last day with events, at most ``width`` days."""
    dates = [_date(day) for day in days]
    valid = [date for date in dates if date is not None]  # a day such as 2026-02-31 came from a forged line
    if not valid:
        return "", "", ""
    last = max(valid)
    first = max(min(valid), last - datetime.timedelta(days=width - 1))
    counts = [days.get((first + datetime.timedelta(days=n)).isoformat(), 0) for n in range((last - first).days + 1)]
    peak = max(counts)
    bars = "▁▂▃▄▅▆▇█"
    line = "".join("·" if c == 0 else bars[min(len(bars) - 1, (c * len(bars) - 1) // peak)] for c in counts)
    return first.isoformat(), last.isoformat(), line


def _date(day: str) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(day)
    except ValueError:
        return None


def format_change(count: int, previous: int | None) -> str:
    """``+3 (+50%)``, ``-2 (-40%)``, ``+4 (new)``; empty when there is no previous period."""
    if previous is None:
        return ""
    change = count - previous
    if previous == 0:
        return "0" if change == 0 else f"+{change} (new)"
    if change == 0:
        return "0 (0%)"
    return f"{change:+d} ({100 * change / previous:+.0f}%)"
