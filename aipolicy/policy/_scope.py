"""Who and when a rule applies to: users, groups, source networks and time windows; and the
exceptions that lift a rule for some of them until a date.

A scope is a conjunction of dimensions, each a disjunction: ``users: [a, b]`` with
``networks: [lab]`` means "user a or b, from the lab network". An empty dimension does not
restrict. User names and group names compare case-insensitively.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from aipolicy.matching import parse_ip

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class TimeWindow:
    days: frozenset[int]  # 0 = Monday
    start: int  # minutes after midnight
    end: int  # minutes after midnight, exclusive; end <= start crosses midnight
    zone: ZoneInfo

    def contains(self, moment: datetime.datetime) -> bool:
        local = moment.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        day = local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        # crosses midnight: the part after midnight belongs to the window that started the day before
        return (day in self.days and minute >= self.start) or ((day - 1) % 7 in self.days and minute < self.end)


@dataclass(frozen=True)
class Scope:
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()
    times: tuple[TimeWindow, ...] = ()

    def applies(
        self, user: str, groups: frozenset[str], client_ip: str, moment: datetime.datetime | None = None
    ) -> bool:
        if self.users and user.casefold() not in self.users:
            return False
        if self.groups and not (self.groups & groups):
            return False
        if self.networks:
            address = parse_ip(client_ip) if client_ip else None
            if address is None or not any(address.version == n.version and address in n for n in self.networks):
                return False
        if self.times:
            now = moment or datetime.datetime.now(datetime.UTC)
            if not any(window.contains(now) for window in self.times):
                return False
        return True

    def describe(self) -> str:
        parts = []
        if self.users:
            parts.append("users " + ", ".join(sorted(self.users)))
        if self.groups:
            parts.append("groups " + ", ".join(sorted(self.groups)))
        if self.networks:
            parts.append("networks " + ", ".join(str(n) for n in self.networks))
        if self.times:
            parts.append(f"{len(self.times)} time window{'s' if len(self.times) > 1 else ''}")
        return "; ".join(parts) or "everyone"


@dataclass(frozen=True)
class PolicyException:
    """A rule lifted for some users, groups or networks until a moment (exclusive)."""

    id: str
    rule: str
    scope: Scope
    until: datetime.datetime
    ticket: str = ""
    reason: str = ""
    owner: str = ""
    line: int = 0

    def active(self, moment: datetime.datetime) -> bool:
        return moment < self.until

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "rule": self.rule, "ticket": self.ticket, "ends": self.until.isoformat()}


@dataclass(frozen=True)
class Identity:
    """Who the user is, when an authenticating proxy in front says so in a header."""

    user_header: str = ""
    groups_header: str = ""
    trusted_proxies: tuple[Network, ...] = field(default_factory=tuple)

    def trusts(self, client_ip: str) -> bool:
        address = parse_ip(client_ip) if client_ip else None
        return address is not None and any(address.version == n.version and address in n for n in self.trusted_proxies)


def end_of(value: datetime.date | datetime.datetime) -> datetime.datetime:
    """An exception's end: a date lasts through that whole day (UTC); a time without a zone is UTC."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    return datetime.datetime.combine(value + datetime.timedelta(days=1), datetime.time(), datetime.UTC)


def parse_days(value: object) -> frozenset[int]:
    """``[mon, tue]``, ``"mon-fri"``, ``"sat,sun"`` → weekday numbers (Monday 0)."""
    items = value if isinstance(value, list) else str(value).split(",")
    days: set[int] = set()
    for item in items:
        text = str(item).strip().lower()[:3] if "-" not in str(item) else str(item).strip().lower()
        if "-" in text:
            first, _, last = (part.strip()[:3] for part in text.partition("-"))
            if first not in DAYS or last not in DAYS:
                raise ValueError(f"expected day names like mon-fri, got {item!r}")
            start, end = DAYS.index(first), DAYS.index(last)
            days.update(range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)])
        elif text in DAYS:
            days.add(DAYS.index(text))
        else:
            raise ValueError(f"expected day names ({', '.join(DAYS)}) or a range like mon-fri, got {item!r}")
    return frozenset(days)


def parse_hours(value: object) -> tuple[int, int]:
    """``"09:00-17:30"`` → (540, 1050) minutes after midnight."""
    text = str(value).strip()
    first, dash, last = text.partition("-")
    if not dash:
        raise ValueError(f"expected hours like 09:00-17:00, got {value!r}")
    return _minutes(first, value), _minutes(last, value)


def _minutes(text: str, whole: object) -> int:
    hours, colon, minutes = text.strip().partition(":")
    if not (hours.isdigit() and (not colon or minutes.isdigit())):
        raise ValueError(f"expected hours like 09:00-17:00, got {whole!r}")
    total = int(hours) * 60 + (int(minutes) if colon else 0)
    if total > 24 * 60 or (colon and int(minutes) >= 60):
        raise ValueError(f"expected hours like 09:00-17:00, got {whole!r}")
    return total
