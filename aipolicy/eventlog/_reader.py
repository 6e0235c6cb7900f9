"""Reading event logs: many files, globs, rotated gzip files, hostile lines.

Reading streams (constant memory, whatever the size of the logs) and never
crashes on bad input: a line that cannot be used is skipped and counted by
reason in a ``SkipReport``, with where the first few were. Only ``decision``
events are yielded unless ``kinds`` asks for more; other kinds (``policy_loaded`` …)
are passed over silently.

    reader = read_events(["/var/log/aipolicy/events.jsonl*"], since="2026-11-01T00:00:00.000Z")
    for event in reader:
        ...
    if reader.skipped:
        print(reader.skipped)   # 3 lines skipped: 2 not JSON (events.jsonl:17, …), …

A missing or unreadable file raises ``EventLogError`` naming it.
"""

from __future__ import annotations

import datetime
import glob
import gzip
import json
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

import orjson

from aipolicy._errors import EventLogError

from ._writer import FORMAT_VERSION

MAX_LINE_BYTES = 1 << 20  # a real event is a few kilobytes (fields are clipped when written)
_GZIP_MAGIC = b"\x1f\x8b"
_PROGRESS_EVERY = 16384  # lines between progress reports
_EXAMPLES = 3  # locations kept per skip reason
_decode_json = json.JSONDecoder().raw_decode
_fast_loads = orjson.loads

# Why a line was skipped, in the order the report lists them.
SKIP_REASONS = {
    "not-json": "not JSON",
    "not-utf8": "not UTF-8",
    "not-object": "not a JSON object",
    "truncated": "truncated last line",
    "newer-format": "newer format",
    "invalid": "invalid event",
    "too-long": "line too long",
    "bad-gzip": "corrupt or truncated gzip",
}

# The writer's timestamp: RFC 3339 UTC, milliseconds, "Z". Such strings sort as the times they name.
_CANONICAL_TS = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z"
)
# The writer's line layout, so the timestamp can be read without parsing the JSON (see _Parser).
_WRITER_HEAD = re.compile(rb'\{"v":1,"id":"[0-9a-f]{32}","ts":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"')


class LogEvent(NamedTuple):
    """One decision event: its canonical timestamp, the event as read, and where it was."""

    ts: str
    data: dict[str, Any]
    file: str
    line: int


@dataclass
class SkipReport:
    """Lines that were not used, counted by reason, with the first few locations of each."""

    counts: dict[str, int] = field(default_factory=dict)
    locations: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, file: str, line: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        kept = self.locations.setdefault(reason, [])
        if len(kept) < _EXAMPLES:
            kept.append(f"{file}:{line}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return bool(self.counts)

    def __str__(self) -> str:
        parts = []
        for reason in sorted(self.counts, key=list(SKIP_REASONS).index):
            where = ", ".join(self.locations[reason]) + (", …" if self.counts[reason] > _EXAMPLES else "")
            parts.append(f"{self.counts[reason]} {SKIP_REASONS[reason]} ({where})")
        total = self.total
        return f"{total} line{'' if total == 1 else 's'} skipped: " + ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "reasons": {
                reason: {"label": SKIP_REASONS[reason], "count": count, "first": list(self.locations[reason])}
                for reason, count in sorted(self.counts.items(), key=lambda item: list(SKIP_REASONS).index(item[0]))
            },
        }


def canonical_ts(value: object) -> str | None:
    """The event's timestamp as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC), or None if it is not one.

    The writer's own format is recognised by its shape; anything else is parsed.
    """
    if type(value) is not str:
        return None
    if len(value) == 24 and _CANONICAL_TS.fullmatch(value):
        if value[8:10] <= "28":
            return value
        try:  # the 29th to the 31st: does the month have that day?
            datetime.date.fromisoformat(value[:10])
        except ValueError:
            return None
        return value
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return format_ts(moment.astimezone(datetime.UTC))


def format_ts(moment: datetime.datetime) -> str:
    """A timezone-aware time in the canonical form (milliseconds, truncated)."""
    m = moment.astimezone(datetime.UTC)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond // 1000:03d}Z"


class _Parser:
    """Turns one line into a LogEvent, or counts why it cannot be one."""

    def __init__(
        self, skipped: SkipReport, since: str | None, until: str | None, kinds: frozenset[str] = frozenset({"decision"})
    ) -> None:
        self.skipped = skipped
        self.since = since
        self.until = until
        self.kinds = kinds

    def out_of_range(self, ts: str) -> bool:
        return (self.since is not None and ts < self.since) or (self.until is not None and ts >= self.until)

    def parse(self, raw: bytes, file: str, line: int, last: bool = False) -> LogEvent | None:
        """``last``: the line had no newline at the end of the file (a write may have been cut short)."""
        if self.since is not None or self.until is not None:
            # A line laid out by the writer starts with its timestamp: skip it unparsed when out of range.
            head = _WRITER_HEAD.match(raw)
            if head is not None and self.out_of_range(head[1].decode("ascii")):
                return None
        try:
            data = _fast_loads(raw)  # orjson: the common, well-formed line, several times faster
        except ValueError:  # anything it refuses takes the careful path below, which says why
            data = None
        if type(data) is dict:
            return self._event(data, file, line)
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            self.skipped.add("truncated" if last else "not-utf8", file, line)
            return None
        if not text:
            return None
        try:
            data, end = _decode_json(text)  # json.loads without its checks: this is the hot path
        except ValueError:  # JSONDecodeError, and numbers too large to convert
            end = -1
        if end != len(text):
            self.skipped.add("truncated" if last else "not-json", file, line)
            return None
        if type(data) is not dict:
            self.skipped.add("not-object", file, line)
            return None
        return self._event(data, file, line)

    def _event(self, data: dict[str, Any], file: str, line: int) -> LogEvent | None:
        version = data.get("v", FORMAT_VERSION)
        if type(version) is not int or version < 1:
            self.skipped.add("invalid", file, line)
            return None
        if version > FORMAT_VERSION:
            self.skipped.add("newer-format", file, line)
            return None
        kind = data.get("event")
        if kind != "decision":
            if type(kind) is not str:
                self.skipped.add("invalid", file, line)
                return None
            if kind not in self.kinds:
                return None
        ts = canonical_ts(data.get("ts"))
        if ts is None:
            self.skipped.add("invalid", file, line)
            return None
        if self.out_of_range(ts):
            return None
        return LogEvent(ts, data, file, line)


def _is_gzip(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(2) == _GZIP_MAGIC
    except OSError:
        return False


def _open_log(path: str) -> tuple[IO[bytes], IO[bytes]]:
    """(lines, raw): a reader of the decompressed lines and the file underneath (for progress)."""
    try:
        raw = open(path, "rb")  # closed by the caller
    except IsADirectoryError:
        raise EventLogError(f"cannot read event log {path!r}: it is a directory") from None
    except OSError as error:
        raise EventLogError(f"cannot read event log {path!r}: {error.strerror or error}") from None
    try:
        magic = raw.read(2)
        raw.seek(0)
    except OSError as error:
        raw.close()
        raise EventLogError(f"cannot read event log {path!r}: {error.strerror or error}") from None
    if magic == _GZIP_MAGIC:  # by content, not by name: a rotated file may be compressed under any name
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw  # type: ignore[return-value]
    return raw, raw


def _lines(stream: IO[bytes], skipped: SkipReport, file: str) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, bytes without the newline, whether it was the unterminated last line)."""
    number = 0
    while True:
        try:
            raw = stream.readline(MAX_LINE_BYTES)
        except (EOFError, gzip.BadGzipFile, zlib.error):
            skipped.add("bad-gzip", file, number + 1)
            return
        if not raw:
            return
        number += 1
        if raw[-1:] == b"\n":
            yield number, raw[:-1], False
        elif len(raw) < MAX_LINE_BYTES:
            yield number, raw, True
        else:
            skipped.add("too-long", file, number)
            if not _skip_rest_of_line(stream):
                return


def _skip_rest_of_line(stream: IO[bytes]) -> bool:
    """Read up to the next newline; False at the end of the file."""
    while True:
        try:
            rest = stream.readline(MAX_LINE_BYTES)
        except (EOFError, gzip.BadGzipFile, zlib.error):
            return False
        if not rest:
            return False
        if rest[-1:] == b"\n":
            return True


_ROTATED = re.compile(r"(?P<base>.+?\..+?)[.-](?P<suffix>\d+)")


def rotation_key(path: str) -> tuple[str, str, tuple[int, int, str], str]:
    """Sort key putting a log's rotated files oldest first and the current file last.

    ``events.jsonl.3.gz, events.jsonl.2.gz, events.jsonl.1, events.jsonl`` (logrotate's
    numbering: higher is older) and ``events.jsonl-20261101.gz, events.jsonl-20261102.gz,
    events.jsonl`` (dated: later is newer).
    """
    directory, name = os.path.split(path)
    stem = name.removesuffix(".gz")
    match = _ROTATED.fullmatch(stem)
    if match is None:
        return directory, stem, (0 if stem != name else 1, 0, ""), path
    suffix = match["suffix"]
    rank = (0, 0, suffix) if len(suffix) >= 8 else (0, -int(suffix), "")
    return directory, match["base"], rank, path


def is_current(path: str) -> bool:
    """Whether the file is a log being written, rather than a rotated one."""
    return rotation_key(path)[2][0] == 1


def expand(patterns: Iterable[str]) -> list[tuple[str, bool]]:
    """(file, named literally) for each pattern: globs expanded and sorted in rotation order."""
    files: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for pattern in patterns:
        if glob.has_magic(pattern):
            matched = [p for p in glob.glob(os.path.expanduser(pattern)) if not os.path.isdir(p)]
            if not matched:
                raise EventLogError(f"no event log matches {pattern!r}")
            compressed = set(matched)  # a rotated file caught between its compression and removal: read the .gz
            found = [(p, False) for p in sorted(matched, key=rotation_key) if p + ".gz" not in compressed]
        else:
            path = os.path.expanduser(pattern)
            if not os.path.exists(path):
                raise EventLogError(f"cannot read event log {pattern!r}: No such file or directory")
            if os.path.isdir(path):
                raise EventLogError(f"cannot read event log {pattern!r}: it is a directory")
            found = [(path, True)]
        for path, literal in found:
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                files.append((path, literal))
    return files


class EventReader:
    """Decision events from many log files, in file order, skipping (and counting) bad lines.

    Iterate it (once or more); ``skipped`` holds what was passed over so far.
    ``since`` and ``until`` are canonical timestamps (see ``format_ts``): since
    inclusive, until exclusive. ``progress`` is called with bytes read, now and then.
    """

    def __init__(
        self,
        patterns: Iterable[str],
        *,
        since: str | None = None,
        until: str | None = None,
        progress: Callable[[int], None] | None = None,
        kinds: Iterable[str] = ("decision",),
    ) -> None:
        expanded = expand(patterns)
        self.files = [path for path, _ in expanded]
        self.literal = {path for path, literal in expanded if literal}
        self.skipped = SkipReport()
        self.since = since
        self.until = until
        self.progress = progress
        self._parser = _Parser(self.skipped, since, until, frozenset(kinds))

    @property
    def total_bytes(self) -> int:
        return sum(os.path.getsize(path) for path in self.files)

    @property
    def current_files(self) -> list[str]:
        """The files to follow: each named literally, and the current (unrotated) file of each glob's logs."""
        wanted = [path for path in self.files if path in self.literal or is_current(path)]
        return [path for path in wanted if not _is_gzip(path)]

    def __iter__(self) -> Iterator[LogEvent]:
        for path in self.files:
            yield from self.read_file(path)

    def read_file(self, path: str) -> Iterator[LogEvent]:
        if path not in self.literal and not os.path.exists(path) and os.path.exists(path + ".gz"):
            path += ".gz"  # compressed since the glob was expanded
        stream, raw = _open_log(path)
        parse, progress = self._parser.parse, self.progress
        reported = 0
        try:
            for number, line, last in _lines(stream, self.skipped, path):
                event = parse(line, path, number, last)
                if event is not None:
                    yield event
                if progress is not None and number % _PROGRESS_EVERY == 0:
                    position = raw.tell()
                    progress(position - reported)
                    reported = position
            if progress is not None:
                progress(os.fstat(raw.fileno()).st_size - reported)
        except OSError as error:
            raise EventLogError(f"cannot read event log {path!r}: {error.strerror or error}") from None
        finally:
            stream.close()
            raw.close()


def read_events(
    patterns: Iterable[str],
    *,
    since: str | None = None,
    until: str | None = None,
    progress: Callable[[int], None] | None = None,
    kinds: Iterable[str] = ("decision",),
) -> EventReader:
    """Decision events from the files and globs in ``patterns`` (see ``EventReader``).

    ``kinds``: the ``event`` values to yield (``decision`` by default; add ``evasion``,
    ``policy_loaded`` … to see those too). Decision events are always yielded.

    Raises EventLogError at once for a file that does not exist or a glob that matches nothing.
    """
    return EventReader(patterns, since=since, until=until, progress=progress, kinds=kinds)


class _FollowedFile:
    """One log followed by name, like ``tail -F``: survives rotation (rename and recreate) and truncation."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.file: IO[bytes] | None = None
        self.identity: tuple[int, int] | None = None
        self.partial = b""
        self.discarding = False  # inside a line longer than MAX_LINE_BYTES
        self.line = 0

    def _open(self) -> None:
        try:
            self.file = open(self.path, "rb")
        except FileNotFoundError:  # between a rename and the new file's creation
            return
        except OSError as error:
            raise EventLogError(f"cannot read event log {self.path!r}: {error.strerror or error}") from None
        status = os.fstat(self.file.fileno())
        self.identity = (status.st_dev, status.st_ino)
        self.partial, self.discarding, self.line = b"", False, 0

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def read(self, skipped: SkipReport) -> Iterator[tuple[int, bytes]]:
        """Complete lines appended since the last call (the start of a line still being written waits)."""
        if self.file is None:
            self._open()
            if self.file is None:
                return
        try:
            status: os.stat_result | None = os.stat(self.path)
        except FileNotFoundError:
            status = None  # renamed away; the old file may still get its last lines
        if status is not None and (status.st_dev, status.st_ino) != self.identity:
            yield from self._drain(skipped)
            if self.partial:
                skipped.add("truncated", self.path, self.line + 1)
            self.close()
            self._open()
        elif status is not None and status.st_size < self.file.tell():
            self.file.seek(0)  # truncated in place (logrotate's copytruncate): start again
            self.partial, self.discarding, self.line = b"", False, 0
        if self.file is not None:
            yield from self._drain(skipped)

    def _drain(self, skipped: SkipReport) -> Iterator[tuple[int, bytes]]:
        assert self.file is not None
        while chunk := self.file.read(1 << 16):
            pieces = (self.partial + chunk).split(b"\n")
            self.partial = pieces.pop()
            for piece in pieces:
                self.line += 1
                if self.discarding:
                    self.discarding = False
                else:
                    yield self.line, piece
            if len(self.partial) > MAX_LINE_BYTES:
                if not self.discarding:
                    skipped.add("too-long", self.path, self.line + 1)
                self.partial, self.discarding = b"", True


class Follower:
    """New decision events appended to log files, as they come (``tail -F``).

    ``open()`` before reading what the files already hold, through ``poll()``, so
    nothing written meanwhile is lost or read twice.
    """

    def __init__(
        self, paths: Iterable[str], skipped: SkipReport, *, since: str | None = None, until: str | None = None
    ) -> None:
        self.files = [_FollowedFile(path) for path in paths]
        self.skipped = skipped
        self._parser = _Parser(skipped, since, until)

    @property
    def paths(self) -> list[str]:
        return [followed.path for followed in self.files]

    def open(self) -> None:
        for followed in self.files:
            followed._open()

    def poll(self) -> Iterator[LogEvent]:
        for followed in self.files:
            for number, line in followed.read(self.skipped):
                event = self._parser.parse(line, followed.path, number)
                if event is not None:
                    yield event

    def close(self) -> None:
        for followed in self.files:
            followed.close()

    def __enter__(self) -> Follower:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
