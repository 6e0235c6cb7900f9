"""Checking an event log's hash chain (see ``_chain``): is every line there, unchanged, in order?

    reports = verify_logs(["/var/log/aipolicy/events.jsonl*"])
    for report in reports:
        print(report.status, report.problem)   # "tampered", events.jsonl-20261130….gz:17: line edited: …

The files of each log (the current one and its rotated files, plain or gzip) are
put in order and read as one chain. Reading stops at the first problem:

- ``edited``: a line's bytes no longer hash to what the next line recorded
  (or a line lost its ``seq``/``prev``);
- ``deleted``: lines are missing (a gap in ``seq``, or a chain that does not start at
  its genesis line);
- ``reordered``: a line is out of place, or repeated;
- ``truncated``: a line or a compressed file was cut short.

A line cut short by a crash, which the writer recorded (``log_resumed``) when it
started again, is reported but is not a problem. The chain cannot show lines
removed from the end of the newest file, nor a chain rewritten with new hashes:
keep the head (``head_ref``, ``SEQ:HASH``) elsewhere and give it to a later verify.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aipolicy._errors import EventLogError

from ._chain import GENESIS, Head, chain_base, line_hash
from ._reader import MAX_LINE_BYTES, _open_log, expand, rotation_key

STATUSES = ("intact", "torn", "tampered")  # in order of severity


@dataclass(frozen=True)
class ChainBreak:
    """The first place where the chain does not hold."""

    kind: str  # edited | deleted | reordered | truncated
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class TornLine:
    """A line cut short; ``acknowledged`` when the writer recorded it on restarting."""

    file: str
    line: int
    size: int
    acknowledged: bool


@dataclass
class ChainReport:
    """What verifying one log (its current file and its rotated files) found."""

    log: str
    files: list[str]
    lines: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str = GENESIS
    unchained: int = 0  # lines before the chain began (written by a version without it)
    partial_start: bool = False  # the start of the chain is missing and that was allowed
    torn: list[TornLine] = field(default_factory=list)
    problem: ChainBreak | None = None

    @property
    def head_ref(self) -> str:
        """``SEQ:HASH`` of the newest line: keep it elsewhere and give it to a later verify (``--head``)."""
        return f"{self.last_seq}:{self.head}" if self.last_seq is not None else ""

    @property
    def status(self) -> str:
        if self.problem is not None:
            return "tampered"
        if any(not torn.acknowledged for torn in self.torn):
            return "torn"
        return "intact"

    def as_dict(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "status": self.status,
            "files": list(self.files),
            "lines": self.lines,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head": self.head_ref or None,
            "unchained": self.unchained,
            "partial_start": self.partial_start,
            "torn": [vars(torn) for torn in self.torn],
            "problem": vars(self.problem) if self.problem else None,
        }


class _Line(NamedTuple):
    file: str
    number: int
    raw: bytes
    terminated: bool
    last_file: bool


class _CorruptGzip(Exception):
    def __init__(self, file: str, line: int) -> None:
        self.file, self.line = file, line


def chains(patterns: Iterable[str]) -> list[tuple[str, list[str]]]:
    """(log, its files oldest first) for every log among the files and globs in ``patterns``."""
    groups: dict[str, list[str]] = {}
    for path, _ in expand(patterns):
        base = chain_base(path)
        if base == path:
            directory, name, *_ = rotation_key(path)
            base = os.path.join(directory, name)
        groups.setdefault(base, []).append(path)
    return [(base, sorted(files, key=_order)) for base, files in groups.items()]


def _order(path: str) -> tuple[int, str, tuple[int, int, str]]:
    base = chain_base(path)
    if base != path:
        return 0, path[len(base) :].removesuffix(".gz"), (0, 0, "")
    return 1 if rotation_key(path)[2][0] == 1 else 0, "", rotation_key(path)[2]


def verify_logs(
    patterns: Iterable[str], *, allow_partial_start: bool = False, head: str | None = None
) -> list[ChainReport]:
    """Verify every log among ``patterns`` (files and globs). Raises EventLogError for a file that cannot be read.

    ``head``: a ``SEQ:HASH`` that an earlier verify printed (``ChainReport.head_ref``) and that
    was kept elsewhere: that line must still be in the (single) log, unchanged. ValueError if
    it is malformed or more than one log is given.
    """
    anchor = parse_head(head) if head is not None else None
    found = chains(patterns)
    if anchor is not None and len(found) != 1:
        raise ValueError(f"a head belongs to one log, and {len(found)} logs were given")
    return [verify_chain(log, files, allow_partial_start=allow_partial_start, anchor=anchor) for log, files in found]


def parse_head(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as (seq, hash)."""
    seq, _, digest = text.strip().partition(":")
    if not seq.isdigit() or len(digest) != 64 or digest.strip("0123456789abcdef"):
        raise ValueError(
            f"{text!r} is not a head: expected SEQ:HASH as printed by verify (e.g. 1203:3fa2…, 64 hex digits)"
        )
    return int(seq), digest


def _read(files: list[str]) -> Iterator[_Line]:
    for index, path in enumerate(files):
        stream, raw = _open_log(path)
        number = 0
        try:
            while True:
                try:
                    line = stream.readline(MAX_LINE_BYTES + 1)
                except (EOFError, gzip.BadGzipFile, zlib.error):
                    raise _CorruptGzip(path, number + 1) from None
                if not line:
                    break
                number += 1
                terminated = line.endswith(b"\n")
                yield _Line(path, number, line[:-1] if terminated else line, terminated, index == len(files) - 1)
        except OSError as error:
            raise EventLogError(f"cannot read event log {path!r}: {error.strerror or error}") from None
        finally:
            stream.close()
            raw.close()


# The links as the writer lays them out, at the end of the line: read without parsing the JSON (the
# hash chain, not the JSON, is what shows an edit). Other lines are parsed.
_LINKS = re.compile(rb',"seq":(0|[1-9][0-9]{0,18}),"prev":"([0-9a-f]{64})"\}\Z')


def _links(raw: bytes) -> dict[str, Any] | None:
    match = _LINKS.search(raw, max(len(raw) - 110, 0))
    if match is None or not raw.startswith(b"{"):
        return _parse(raw)
    return {"seq": int(match[1]), "prev": match[2].decode("ascii")}


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _linked(data: dict[str, Any]) -> bool:
    prev = data.get("prev")
    return type(data.get("seq")) is int and isinstance(prev, str) and len(prev) == 64


class _Verifier:
    def __init__(self, report: ChainReport, allow_partial_start: bool, anchor: tuple[int, str] | None) -> None:
        self.report = report
        self.anchor = anchor
        self.anchor_seen = False
        self.allow_partial_start = allow_partial_start
        self.head: Head | None = None
        self.where: tuple[str, int] | None = None  # the last line of the chain so far
        self.chained = False
        self.pending: _Line | None = None  # a line that is not JSON, waiting for the writer's note about it

    def run(self, lines: Iterator[_Line]) -> None:
        for line in lines:
            problem = self.step(line, lines)
            if problem is not None:
                self.report.problem = problem
                return
        if self.pending is not None:
            self.report.problem = _unreadable(self.pending)
        elif self.anchor is not None and not self.anchor_seen:
            self.report.problem = self._anchor_missing()

    def _anchor_missing(self) -> ChainBreak:
        assert self.anchor is not None
        seq, digest = self.anchor
        file, number = self.where or (self.report.files[-1], 0)
        last = self.report.last_seq
        if last is not None and seq > last:
            removed = f"{seq - last} line{'s' if seq - last > 1 else ''} or more removed from the end"
            message = f"the log ends at chain number {last}, but head {seq}:{digest[:12]}… was recorded: {removed}"
            return ChainBreak("deleted", file, number + 1, message)
        return ChainBreak("deleted", file, number, f"head {seq}:{digest[:12]}… is not in the log (before its start)")

    def step(self, line: _Line, rest: Iterator[_Line]) -> ChainBreak | None:
        if not line.terminated:
            if line.last_file:  # only a file's last line can lack its end: this is the newest line of all
                self.report.torn.append(TornLine(line.file, line.number, len(line.raw), False))
                return None
            return ChainBreak("truncated", line.file, line.number, "the line was cut short (it has no line end)")
        if len(line.raw) > MAX_LINE_BYTES:
            return ChainBreak("edited", line.file, line.number, f"the line is longer than {MAX_LINE_BYTES} bytes")
        data = _links(line.raw) if self.pending is None else _parse(line.raw)
        if self.pending is not None:
            if data is None or not self._acknowledges(data, self.pending):
                return _unreadable(self.pending)
            self.report.torn.append(TornLine(self.pending.file, self.pending.number, len(self.pending.raw), True))
            self.pending = None
        if data is None:
            self.pending = line
            return None
        if not _linked(data):
            if self.chained:
                return ChainBreak("edited", line.file, line.number, "the line has lost its chain link (seq, prev)")
            self.report.unchained += 1
            self.head, self.where = Head(line_hash(line.raw), 0), (line.file, line.number)
            return None
        problem = self._check_link(line, data, rest)
        if problem is None:
            self._advance(line, data)
            if self.anchor is not None and data["seq"] == self.anchor[0]:
                self.anchor_seen = True
                if self.report.head != self.anchor[1]:
                    return ChainBreak(
                        "edited",
                        line.file,
                        line.number,
                        f"this is not the line recorded as head {self.anchor[0]}:{self.anchor[1][:12]}…: "
                        "the log was rewritten from this line or before it",
                    )
        return problem

    def _acknowledges(self, data: dict[str, Any], torn: _Line) -> bool:
        return (
            data.get("event") == "log_resumed"
            and data.get("torn_sha256") == line_hash(torn.raw)
            and data.get("torn_bytes") == len(torn.raw)
        )

    def _advance(self, line: _Line, data: dict[str, Any]) -> None:
        report = self.report
        if report.first_seq is None:
            report.first_seq = data["seq"]
        report.last_seq = data["seq"]
        report.lines += 1
        report.head = line_hash(line.raw)
        self.head, self.where, self.chained = Head(report.head, data["seq"] + 1), (line.file, line.number), True

    def _check_link(self, line: _Line, data: dict[str, Any], rest: Iterator[_Line]) -> ChainBreak | None:
        seq, prev = data["seq"], data["prev"]
        if self.head is None:  # the first line read
            if prev == GENESIS and seq == 0:
                return None
            if self.allow_partial_start:
                self.report.partial_start = True
                return None
            return ChainBreak(
                "deleted",
                line.file,
                line.number,
                f"the chain does not start here: this line is number {seq} of its chain; the lines before it "
                "(or older rotated files) are missing (--allow-partial-start accepts that)",
            )
        expected = self.head
        if seq == expected.seq and prev == expected.prev:
            return None
        assert self.where is not None
        file, number = self.where
        if seq == expected.seq:
            return ChainBreak(
                "edited", file, number, f"the line was changed after it was written ({line.file}:{line.number} "
                "recorded a different hash for it)"
            )  # fmt: skip
        if seq > expected.seq:
            for later in rest:
                other = _parse(later.raw) if later.terminated else None
                if other is not None and other.get("seq") == expected.seq and other.get("prev") == expected.prev:
                    return ChainBreak(
                        "reordered",
                        line.file,
                        line.number,
                        f"the line is out of order: the line that follows {file}:{number} is at "
                        f"{later.file}:{later.number}",
                    )
            missing = seq - expected.seq
            where = f"after {file}:{number}" + (
                f" (the end of {file}, the start of {line.file}, or a whole rotated file)" if file != line.file else ""
            )
            return ChainBreak(
                "deleted",
                line.file,
                line.number,
                f"{missing} lines are missing {where}: chain numbers {expected.seq}–{seq - 1}"
                if missing > 1
                else f"1 line is missing {where}: chain number {expected.seq}",
            )
        return ChainBreak(
            "reordered",
            line.file,
            line.number,
            f"the line is out of order or repeated: it is number {seq} of the chain, after number {expected.seq - 1}",
        )


def _unreadable(line: _Line) -> ChainBreak:
    kind = "edited" if line.raw.rstrip().endswith(b"}") else "truncated"
    what = "changed" if kind == "edited" else "cut short"
    return ChainBreak(kind, line.file, line.number, f"the line is not a JSON event: it was {what}")


def verify_chain(
    log: str, files: list[str], *, allow_partial_start: bool = False, anchor: tuple[int, str] | None = None
) -> ChainReport:
    """Verify one log's files, given oldest first; ``anchor`` is a (seq, hash) the log must still hold."""
    report = ChainReport(log, list(files))
    try:
        _Verifier(report, allow_partial_start, anchor).run(_read(files))
    except _CorruptGzip as corrupt:
        report.problem = ChainBreak(
            "truncated", corrupt.file, corrupt.line, "the compressed file is cut short or corrupt from this line on"
        )
    return report
