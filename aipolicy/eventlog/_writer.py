"""The event log: JSON Lines, one object per decision worth recording.

Field names are a contract (see DESIGN.md): add fields, never rename. Request
bodies, query strings (unless configured) and secrets are never written.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import IO, Any

from aipolicy._errors import EventLogError
from aipolicy.decision import Decision, RequestFacts
from aipolicy.matching import normalise_host

from ._chain import Head, compress, head_after, last_line_of, line_hash, read_tail, rotated_files, rotated_name

FORMAT_VERSION = 1
_logger = logging.getLogger("aipolicy")
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
    if decision.dlp:
        event["dlp"] = dict(decision.dlp)
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


# Each attempt follows one rename by another writer (rotation, logrotate): with several writers
# rotating a small log, a writer may have to follow a few in a row before it holds the current file.
REPREPARE_ATTEMPTS = 32


class EventLog:
    """Appends events to a file, one ``write`` per line, each line linked to the one before it.

    Every line ends with ``seq`` and ``prev`` (see ``_chain``): a hash chain that
    ``aipolicy log verify`` checks. The file is opened with O_APPEND and each
    event goes straight to the kernel in one ``write``, so lines land whole. The
    writer holds an exclusive ``flock`` on the file while it links and writes a
    line, and rereads the file's last line whenever the file changed under it, so
    several processes may share one file: the chain runs through all their lines.

    ``max_bytes`` and ``max_age`` (seconds; 0 for no limit) rotate the file: it is
    renamed to ``NAME-YYYYMMDDHHMMSSmmm`` and gzip-compressed by a worker thread,
    and the chain continues in the new file.
    """

    def __init__(
        self,
        path: str | None,
        stream: IO[str] | None = None,
        *,
        max_bytes: int = 0,
        max_age: float = 0.0,
        clock: Callable[[], float] = time.time,
        proxy_id: str = "",
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._clock = clock
        self._fd: int | None = None
        self._stream = stream
        self._lock = threading.Lock()
        self._head: Head | None = None  # unknown until read from the files
        self._size = -1  # the file's size after our last write; -1 when it must be read again
        self._started: float | None = None  # when the current file got its first line
        self._retry_rotation_at = 0.0
        self._rotated = False  # this writer rotated the file, so its head is where the rotated file ends
        self._compressor: concurrent.futures.ThreadPoolExecutor | None = None
        self._proxy_id = proxy_id
        if path:
            self._fd = self._open(path)
            self._start()
            for leftover in rotated_files(path):  # rotated by a writer that stopped before compressing
                if not leftover.endswith(".gz"):
                    self._compress(leftover)

    def _start(self) -> None:
        """Find the head of the chain now rather than on the first event (it may mean reading a rotated file)."""
        assert self._fd is not None
        try:
            self._lock_file()
            try:
                data = self._resync(os.fstat(self._fd).st_size)
                self._write_all(data)  # a torn last line is recorded at once
                self._size += len(data)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError as error:
            os.close(self._fd)
            self._fd = None
            raise EventLogError(f"cannot continue event log {self.path!r}: {error.strerror or error}") from None

    def write(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, ensure_ascii=True, separators=(",", ":"), default=str)
        if self._fd is None:
            (self._stream or sys.stdout).write(body + "\n")
            return
        with self._lock:
            before = self._head
            try:
                self._lock_file()
                try:
                    data = self._prepare(len(body) + 160)
                    data += self._link(body)
                    self._write_all(data)
                    self._size += len(data)
                finally:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
            except OSError as error:
                self._head, self._size = before, -1  # read the file again before the next line
                raise EventLogError(f"cannot write event log {self.path!r}: {error.strerror or error}") from None

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._compressor is not None:
                self._compressor.shutdown(wait=True)
                self._compressor = None

    # --- the chain ----------------------------------------------------------------------

    def _link(self, body: str) -> bytes:
        """The line for ``body`` with its place in the chain; moves the head on."""
        head = self._head or Head()
        if body.startswith('{"'):
            body = body[:-1] + ","
        else:  # an empty object
            body = "{"
        line = f'{body}"seq":{head.seq},"prev":"{head.prev}"}}'.encode("ascii")
        self._head = Head(line_hash(line), head.seq + 1)
        return line + b"\n"

    def _prepare(self, length: int) -> bytes:
        """Bring the head up to date with the file and rotate if due; returns bytes to write first."""
        assert self._fd is not None and self.path is not None
        for _ in range(REPREPARE_ATTEMPTS):
            status = os.fstat(self._fd)
            try:
                current: os.stat_result | None = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is None or (current.st_dev, current.st_ino) != (status.st_dev, status.st_ino):
                if status.st_size != self._size:  # renamed away by another writer or logrotate
                    self._resync(status.st_size)
                self._reopen()
                continue
            prefix = self._resync(status.st_size) if status.st_size != self._size else b""
            if not prefix and self._rotation_due(status.st_size, length):
                self._rotate()
                continue
            return prefix
        raise OSError("the log file keeps changing under the writer")

    def _last_rotated_line(self) -> bytes | None:
        """The newest rotated file's last line. A plain rotated file can turn into its .gz (the
        compressor thread) between listing and reading: then list again."""
        assert self.path is not None
        for _ in range(5):
            rotated = rotated_files(self.path)
            try:
                return last_line_of(rotated[-1]) if rotated else None
            except FileNotFoundError:
                continue
        return None

    def _resync(self, size: int) -> bytes:
        """Read the head from the end of the file; a torn last line is closed and recorded."""
        assert self._fd is not None and self.path is not None
        tail = read_tail(self._fd, size)
        if tail.last is not None:
            self._head = head_after(tail.last)
        elif not self._rotated:
            # A new file this writer did not start. The chain ends in the newest rotated file, unless this
            # writer's own head is further on (the file it wrote to was deleted: the gap must show).
            last = self._last_rotated_line()
            newest = head_after(last) if last is not None else None
            if newest is not None and (self._head is None or newest.seq >= self._head.seq):
                self._head = newest
        self._size, self._rotated = size, False
        if not tail.torn:
            return b""
        resumed = system_event(
            "log_resumed",
            "the previous line was cut short (its writer stopped in the middle of it); the chain continues here",
            torn_bytes=len(tail.torn),
            torn_sha256=line_hash(tail.torn),
            proxy_id=self._proxy_id,
        )
        return b"\n" + self._link(json.dumps(resumed, ensure_ascii=True, separators=(",", ":")))

    # --- files and rotation ---------------------------------------------------------------

    def _open(self, path: str) -> int:
        try:
            return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as error:
            raise EventLogError(f"cannot open event log {path!r}: {error.strerror or error}") from None

    def _lock_file(self) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        while data:
            written = os.write(self._fd, data)
            data = data[written:]

    def _reopen(self) -> None:
        assert self._fd is not None and self.path is not None
        new = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        fcntl.flock(new, fcntl.LOCK_EX)
        old, self._fd = self._fd, new
        fcntl.flock(old, fcntl.LOCK_UN)
        os.close(old)
        self._size, self._started = -1, None

    def _rotation_due(self, size: int, length: int) -> bool:
        if size == 0 or self._retry_rotation_at > self._clock():
            return False
        if self.max_bytes and size + length > self.max_bytes:
            return True
        return bool(self.max_age) and self._clock() - self._file_started() >= self.max_age

    def _file_started(self) -> float:
        """When the current file's first line was written (its ``ts``), read once per file."""
        if self._started is None:
            assert self._fd is not None
            first = os.pread(self._fd, 4096, 0).split(b"\n", 1)[0]
            try:
                ts = json.loads(first)["ts"]
                self._started = datetime.datetime.fromisoformat(ts).timestamp()
            except (ValueError, KeyError, TypeError):
                self._started = self._clock()
        return self._started

    def _rotate(self) -> None:
        assert self.path is not None
        target = rotated_name(self.path, datetime.datetime.now(datetime.UTC))
        try:
            os.rename(self.path, target)
        except OSError as error:
            self._retry_rotation_at = self._clock() + 60
            _logger.error(f"aipolicy: cannot rotate event log {self.path!r} (retrying in a minute): {error}")
            return
        self._reopen()
        self._started, self._rotated = self._clock(), True
        self._compress(target)

    def _compress(self, path: str) -> None:
        if self._compressor is None:
            self._compressor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="aipolicy-log-gzip")
        self._compressor.submit(compress, path)
