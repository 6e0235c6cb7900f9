"""The event log: JSON Lines, one object per decision worth recording.

Field names are a contract (see DESIGN.md): add fields, never rename. Request
bodies, query strings (unless configured) and secrets are never written.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
import uuid
from typing import IO, Any

from ._decision import Decision, RequestFacts
from ._errors import EventLogError
from ._hosts import normalise_host

FORMAT_VERSION = 1
_LIMITS = {"path": 2048, "user_agent": 512, "host": 255, "sni": 255, "user": 256, "reason": 1024}


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clip(field: str, value: str) -> str:
    limit = _LIMITS.get(field, 1024)
    return value if len(value) <= limit else value[:limit] + "…"


def decision_event(
    decision: Decision,
    facts: RequestFacts,
    *,
    stage: str,
    sni: str = "",
    user_agent: str = "",
    proxy_id: str = "",
    log_query: bool = False,
    note: str = "",
) -> dict[str, Any]:
    path = facts.path or ""
    if not log_query:
        path = path.split("?", 1)[0]
    event: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "id": uuid.uuid4().hex,
        "ts": now_rfc3339(),
        "event": "decision",
        "action": decision.action,
        "rule": decision.rule,
        "app": decision.app or None,
        "vendor": decision.vendor or None,
        "category": decision.categories[0] if decision.categories else None,
        "categories": list(decision.categories),
        "host": _clip("host", decision.host or (normalise_host(facts.hosts[0]) if facts.hosts else "")),
        "hosts": [_clip("host", h) for h in decision.hosts],
        "sni": _clip("sni", sni) or None,
        "method": facts.method[:16],
        "scheme": facts.scheme,
        "port": facts.port or None,
        "path": _clip("path", path),
        "client_ip": facts.client_ip,
        "user": _clip("user", facts.user) or None,
        "groups": list(facts.groups),
        "user_agent": _clip("user_agent", user_agent) or None,
        "reason": _clip("reason", decision.reason),
        "model": decision.model or None,
        "directive": (decision.directive or {}).get("id"),
        "policy": decision.policy,
        "stage": stage,
        "proxy": proxy_id,
    }
    if decision.control:
        event["control"] = decision.control
    if decision.exception:
        event["exception"] = dict(decision.exception)
    if note:
        event["note"] = note
    return event


def system_event(kind: str, message: str, *, policy: str = "", proxy_id: str = "", **extra: Any) -> dict[str, Any]:
    """Events about the proxy itself: policy loaded, policy rejected, internal error."""
    event: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "id": uuid.uuid4().hex,
        "ts": now_rfc3339(),
        "event": kind,
        "action": None,
        "reason": message[:4096],
        "policy": policy,
        "proxy": proxy_id,
    }
    event.update(extra)
    return event


def default_proxy_id() -> str:
    return socket.gethostname()


class EventLog:
    """Appends events to a file, one ``write`` per line, so each line lands whole.

    The file is opened with O_APPEND: several proxy processes may share it
    without tearing lines. Each event is written straight to the kernel (no
    user-space buffer), so an event is on its way to disk when ``write`` returns.
    """

    def __init__(self, path: str | None, stream: IO[str] | None = None) -> None:
        self.path = path
        self._fd: int | None = None
        self._stream = stream
        if path:
            try:
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            except OSError as error:
                raise EventLogError(f"cannot open event log {path!r}: {error.strerror or error}") from None

    def write(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=True, separators=(",", ":"), default=str) + "\n"
        if self._fd is None:
            (self._stream or sys.stdout).write(line)
            return
        data = line.encode("ascii")
        try:
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
        except OSError as error:
            raise EventLogError(f"cannot write event log {self.path!r}: {error.strerror or error}") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
