"""The event log's hash chain and rotated files: what the writer needs to continue a chain.

Every line the writer appends ends with two fields: ``seq``, the line's number in
the chain (0 for the first line ever written), and ``prev``, the hex SHA-256 of
the previous line's bytes (without its newline); the first line carries
``GENESIS``. The chain runs on across rotation, restarts and crashes, so the
first line of a new file links to the last line of the file rotated before it.

Rotated files sit beside the log as ``NAME-YYYYMMDDHHMMSSmmm`` (UTC, so names
sort as times) and become ``NAME-YYYYMMDDHHMMSSmmm.gz`` once compressed.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass

from aipolicy._units import parse_duration, parse_size

GENESIS = "0" * 64
TAIL_LIMIT = 1 << 21  # bytes read back from the end of a file to find its last line
_STAMP_DIGITS = 17
logger = logging.getLogger("aipolicy")


def line_hash(line: bytes) -> str:
    """The link a line's successor records: SHA-256 of the line's bytes without the newline."""
    return hashlib.sha256(line).hexdigest()


@dataclass(frozen=True)
class Head:
    """Where a chain stands: the hash the next line records as ``prev``, and its ``seq``."""

    prev: str = GENESIS
    seq: int = 0


@dataclass(frozen=True)
class Tail:
    """The end of a log file: its last complete line (None if none) and any unterminated bytes after it."""

    last: bytes | None
    torn: bytes


def head_after(line: bytes) -> Head:
    """The head that continues a chain whose last line is ``line``."""
    seq = -1
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if isinstance(data, dict) and type(data.get("seq")) is int and isinstance(data.get("prev"), str):
        seq = data["seq"]
    return Head(line_hash(line), seq + 1)


def read_tail(fd: int, size: int) -> Tail:
    """The last complete line and the torn bytes after it, read backwards from ``size``."""
    start = max(size - TAIL_LIMIT, 0)
    data = os.pread(fd, size - start, start) if size else b""
    end = data.rfind(b"\n")
    if end < 0:
        if start > 0:
            raise OSError(f"no line end in the last {TAIL_LIMIT} bytes")
        return Tail(None, data)
    torn = data[end + 1 :]
    begin = data.rfind(b"\n", 0, end) + 1
    if begin == 0 and start > 0:
        raise OSError(f"a line longer than {TAIL_LIMIT} bytes")
    return Tail(data[begin:end], torn)


def rotated_name(path: str, moment: datetime.datetime) -> str:
    """A free name for the rotated file: the log's name, a dash and the UTC time to the millisecond."""
    stamp = int(moment.astimezone(datetime.UTC).strftime("%Y%m%d%H%M%S%f")[:_STAMP_DIGITS])
    while True:
        candidate = f"{path}-{stamp}"
        if not os.path.lexists(candidate) and not os.path.lexists(candidate + ".gz"):
            return candidate
        stamp += 1


def rotated_files(path: str) -> list[str]:
    """The log's rotated files, oldest first; a file both plain and compressed is listed once (the .gz)."""
    directory, name = os.path.split(os.path.abspath(path))
    pattern = re.compile(re.escape(name) + rf"-(\d{{{_STAMP_DIGITS}}})(\.gz)?")
    found: dict[str, str] = {}
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    for entry in entries:
        match = pattern.fullmatch(entry)
        if match and (match[2] or match[1] not in found):
            found[match[1]] = os.path.join(directory, entry)
    return [found[stamp] for stamp in sorted(found)]


def chain_base(path: str) -> str:
    """The current log a rotated file belongs to (the path itself for a current log)."""
    match = re.fullmatch(rf"(.+)-\d{{{_STAMP_DIGITS}}}(?:\.gz)?", path)
    return match[1] if match else path


def last_line_of(path: str) -> bytes | None:
    """The last complete line of a file, plain or gzip (read whole: only on the rare restart after rotation)."""
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
    if not compressed:
        fd = os.open(path, os.O_RDONLY)
        try:
            return read_tail(fd, os.fstat(fd).st_size).last
        finally:
            os.close(fd)
    last = None
    with gzip.open(path, "rb") as stream:
        for line in stream:
            if line.endswith(b"\n"):
                last = line[:-1]
    return last


def compress(path: str) -> None:
    """Gzip a rotated file beside itself, then remove the plain one; never leaves a half-written .gz visible."""
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.gz.{os.getpid()}.tmp")  # hidden: globs do not match it
    try:
        mode = os.stat(path).st_mode & 0o777  # the log's own permissions: it names users
        with (
            open(path, "rb") as source,
            open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as target,
        ):
            with gzip.GzipFile(filename=name, mode="wb", fileobj=target, mtime=0) as zipped:
                shutil.copyfileobj(source, zipped, 1 << 20)
            target.flush()
            os.fsync(target.fileno())
        os.replace(temporary, path + ".gz")
        try:
            os.unlink(path)
        except FileNotFoundError:  # another writer compressed it too
            pass
        _sync_directory(directory)
    except FileNotFoundError:
        _remove_quietly(temporary)  # already compressed by another writer
    except OSError as error:
        _remove_quietly(temporary)
        logger.error(f"aipolicy: cannot compress rotated event log {path!r} (left uncompressed): {error}")


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _sync_directory(directory: str) -> None:
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def parse_log_size(text: str) -> int:
    """Bytes from ``0`` (no limit), ``1048576``, ``100M``, ``1GiB``: the size grammar of ``aipolicy._units``."""
    return parse_size(text, zero="no limit")


def parse_log_age(text: str) -> float:
    """Seconds from ``0`` (no limit), ``3600``, ``30m``, ``24h``, ``7d``: the duration grammar of ``aipolicy._units``."""
    return parse_duration(text, zero="no limit")
