"""Reading the identity parts of a policy: ``groups``, ``networks``, ``identity``,
``exceptions`` and each rule's ``when``. Problems go to the policy's Checker with positions."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aipolicy._units import parse_timestamp

from ._checker import Checker
from ._located import LocatedDict, LocatedList, Position
from ._scope import Identity, Network, PolicyException, Scope, TimeWindow, end_of, parse_days, parse_hours

SCOPE_KEYS = ("users", "groups", "networks", "time")
TIME_KEYS = ("days", "hours", "timezone")
IDENTITY_KEYS = ("user_header", "groups_header", "trusted_proxies")
EXCEPTION_KEYS = ("id", "rule", "users", "groups", "networks", "until", "ticket", "reason", "owner")


class ScopeReader:
    def __init__(self, check: Checker, base: Path, digest: Any) -> None:
        self.check = check
        self.base = base
        self.digest = digest
        self.groups: dict[str, frozenset[str]] = {}
        self.networks: dict[str, tuple[Network, ...]] = {}
        self.files: list[str] = []

    # --- top level ---------------------------------------------------------------------------

    def read_groups(self, root: LocatedDict) -> None:
        for name, body, position in self.check.entries(root, "groups", "the policy"):
            members: list[str] = []
            if isinstance(body, LocatedDict):
                self.check.keys(body, f"group {name!r}", ("file", "description"), ("file",))
                members = self._members_file(name, body)
            elif isinstance(body, LocatedList):
                for item, item_position in zip(body, body.item_positions, strict=True):
                    if isinstance(item, str) and item.strip():
                        members.append(item.strip())
                    else:
                        self.check.error(item_position, "wrong-type", f"group {name!r}: members must be user names")
            else:
                self.check.error(position, "wrong-type", f"group {name!r} must be a list of users or {{file: PATH}}")
            self.groups[name.casefold()] = frozenset(m.casefold() for m in members)

    def _members_file(self, name: str, body: LocatedDict) -> list[str]:
        file_name = self.check.string(body, "file", f"group {name!r}", required=True)
        if not file_name:
            return []
        path = self.base / file_name
        try:
            raw = path.read_bytes()
        except OSError as error:
            self.check.error(
                body.value_positions["file"],
                "unreadable",
                f"group {name!r}: cannot read {str(path)!r}: {error.strerror or error}",
            )
            return []
        self.digest.update(raw)
        self.files.append(str(path))
        lines = raw.decode("utf-8", errors="replace").splitlines()
        return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]

    def read_networks(self, root: LocatedDict) -> None:
        for name, _, _ in self.check.entries(root, "networks", "the policy"):
            inner = root["networks"]
            self.networks[name] = tuple(self._network_list(inner, name, f"network {name!r}", named=False))

    def read_identity(self, root: LocatedDict) -> Identity:
        if "identity" not in root:
            return Identity()
        identity = self.check.mapping(root["identity"], root.value_positions["identity"], "identity")
        if identity is None:
            return Identity()
        self.check.keys(identity, "identity", IDENTITY_KEYS)
        user_header = self.check.string(identity, "user_header", "identity") or ""
        groups_header = self.check.string(identity, "groups_header", "identity") or ""
        trusted = tuple(self._network_list(identity, "trusted_proxies", "identity.trusted_proxies", named=True))
        if (user_header or groups_header) and not trusted:
            self.check.error(
                identity.position,
                "untrusted-header",
                "identity: a user or groups header needs trusted_proxies (the addresses of the authenticating "
                "proxies allowed to set it); otherwise any client could claim to be anyone",
            )
        return Identity(user_header.lower(), groups_header.lower(), trusted)

    def read_exceptions(self, root: LocatedDict, rule_ids: dict[str, int]) -> list[PolicyException]:
        found: list[PolicyException] = []
        seen: set[str] = set()
        for body, position in self.check.items(root, "exceptions", "the policy"):
            item = self.check.mapping(body, position, "an exception")
            if item is None:
                continue
            exception = self._exception(item, rule_ids, seen)
            if exception is not None:
                found.append(exception)
        return found

    def _exception(self, item: LocatedDict, rule_ids: dict[str, int], seen: set[str]) -> PolicyException | None:
        check = self.check
        check.keys(item, "an exception", EXCEPTION_KEYS, ("rule", "until", "ticket"))
        rule = check.string(item, "rule", "exception", required=True)
        ticket = check.string(item, "ticket", "exception", required=True) or ""
        ident = check.string(item, "id", "exception") or ticket
        what = f"exception {ident!r}" if ident else "an exception"
        if rule and rule not in rule_ids:
            check.error(
                item.value_positions["rule"],
                "unknown-rule",
                f"{what} refers to rule {rule!r}, which the policy does not define (rules: {', '.join(rule_ids) or 'none'})",
            )
        if ident and ident in seen:
            check.error(item.position, "duplicate-id", f"{what}: the id {ident!r} is already used")
        seen.add(ident)
        scope = self._scope_fields(item, what)
        if scope is not None and not (scope.users or scope.groups or scope.networks):
            check.error(
                item.position,
                "empty-exception",
                f"{what} names no users, groups or networks (to switch a rule off for everyone, use enabled: false)",
            )
        until = self._until(item, what)
        reason = check.string(item, "reason", what) or ""
        owner = check.string(item, "owner", what) or ""
        if until is not None and until <= datetime.datetime.now(datetime.UTC):
            check.warning(item.value_positions["until"], "expired", f"{what} expired on {until.date().isoformat()}")
        if not rule or scope is None or until is None or not ticket:
            return None
        return PolicyException(ident, rule, scope, until, ticket, reason, owner, item.position[0])

    def _until(self, item: LocatedDict, what: str) -> datetime.datetime | None:
        if "until" not in item:
            return None
        value = item["until"]
        try:
            return end_of(parse_timestamp(value))  # a date, quoted or not, lasts through that day
        except ValueError:
            self.check.error(
                item.value_positions["until"], "bad-date", f"{what}.until must be a date like 2026-12-31, got {value!r}"
            )
            return None

    # --- a rule's `when` ---------------------------------------------------------------------------

    def read_when(self, rule: LocatedDict, what: str) -> Scope | None:
        if "when" not in rule:
            return None
        when = self.check.mapping(rule["when"], rule.value_positions["when"], f"{what}.when")
        if when is None:
            return None
        self.check.keys(when, f"{what}.when", SCOPE_KEYS)
        scope = self._scope_fields(when, f"{what}.when")
        times = tuple(self._times(when, f"{what}.when")) if "time" in when else ()
        if scope is None:
            return None
        return Scope(scope.users, scope.groups, scope.networks, times)

    def _scope_fields(self, mapping: LocatedDict, what: str) -> Scope | None:
        users = frozenset(u.casefold() for u, _ in self.check.strings(mapping, "users", what))
        groups: set[str] = set()
        for name, position in self.check.strings(mapping, "groups", what):
            if name.casefold() not in self.groups:
                self.check.warning(
                    position,
                    "unknown-group",
                    f"{what}: group {name!r} is not defined under 'groups' (it can still come from the identity "
                    f"header; defined: {', '.join(sorted(self.groups)) or 'none'})",
                )
            groups.add(name.casefold())
        networks = tuple(self._network_list(mapping, "networks", f"{what}.networks", named=True))
        return Scope(users, frozenset(groups), networks)

    def _network_list(self, mapping: LocatedDict, key: str, what: str, named: bool) -> list[Network]:
        result: list[Network] = []
        for text, position in self.check.strings(mapping, key, what):
            if named and text in self.networks:
                result.extend(self.networks[text])
                continue
            try:
                result.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                known = f" or a named network ({', '.join(self.networks) or 'none defined'})" if named else ""
                self.check.error(position, "bad-network", f"{what}: {text!r} is not an address or CIDR{known}")
        return result

    def _times(self, when: LocatedDict, what: str) -> list[TimeWindow]:
        value, position = when["time"], when.value_positions["time"]
        items: list[tuple[Any, Position]]
        if isinstance(value, LocatedList):
            items = list(zip(value, value.item_positions, strict=True))
        else:
            items = [(value, position)]
        windows = []
        for body, item_position in items:
            window = self._time_window(body, item_position, f"{what}.time")
            if window is not None:
                windows.append(window)
        return windows

    def _time_window(self, body: Any, position: Position, what: str) -> TimeWindow | None:
        window = self.check.mapping(body, position, what)
        if window is None:
            return None
        self.check.keys(window, what, TIME_KEYS)
        ok = True
        days = frozenset(range(7))
        start, end = 0, 24 * 60
        zone: ZoneInfo | None = ZoneInfo("UTC")
        try:
            if "days" in window:
                days = parse_days(window["days"])
        except ValueError as error:
            self.check.error(window.value_positions["days"], "bad-value", f"{what}.days: {error}")
            ok = False
        try:
            if "hours" in window:
                start, end = parse_hours(window["hours"])
        except ValueError as error:
            self.check.error(window.value_positions["hours"], "bad-value", f"{what}.hours: {error}")
            ok = False
        name = self.check.string(window, "timezone", what)
        if name:
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                self.check.error(
                    window.value_positions["timezone"],
                    "bad-value",
                    f"{what}.timezone {name!r} is not a known time zone (use IANA names like Europe/Berlin or UTC)",
                )
                zone = None
        if not ok or zone is None:
            return None
        return TimeWindow(days, start, end, zone)
