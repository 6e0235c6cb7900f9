"""The ``warn`` and ``quota`` controls' state shared by several proxy processes.

``aipolicy proxy --workers N`` runs N processes on one port and the kernel gives each new
connection to any of them. Kept in each process's memory, the controls would go wrong: the
warning page's form token would be refused by a worker that did not issue it, an acknowledgement
made in one worker would be unknown to the others, and a budget of R requests would allow N×R.
Here the same objects keep their state in one directory instead:

``secret``
    the key of the warning page's form tokens: 32 random bytes as hex, created once and
    atomically (written to a temporary file, then linked into place), readable by its owner only.
``state.db``
    an SQLite database in WAL mode (mode 0600): acknowledgements, and quota usage per
    (rule, subject) with its window, bytes and the volume alert's history. Every quota charge is one
    short ``BEGIN IMMEDIATE`` transaction, so the processes count one budget exactly.
``state.lock``
    writers take turns on an ``flock`` of it first (mode 0600): the kernel wakes a waiting process
    as soon as it is free, where SQLite's busy handler sleeps 1 to 100 ms between tries.

Expired rows are deleted every minute (and after every ``limit // 10`` new rows), and each table
is cut back to ``limit`` rows, the rows nearest their expiry first. A database that cannot be read
raises ``SharedStateError`` when opened. At run time, a failed check or charge raises it too: the
proxy blocks that request and logs the error (it fails closed). Response bytes that cannot be
counted are logged and dropped, since the response is already on its way.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from aipolicy._errors import AipolicyError

from ._controls import Acknowledgements, QuotaSettings, QuotaTracker, QuotaVerdict, _Usage

logger = logging.getLogger("aipolicy")
T = TypeVar("T")

SECRET_FILE = "secret"
DATABASE_FILE = "state.db"
LOCK_FILE = "state.lock"
MIN_SECRET = 32  # characters of the secret file (64 hex digits are written)
BUSY_TIMEOUT = 1.0  # seconds a process waits for another's write; short transactions make this rare
PRUNE_INTERVAL = 60.0
HISTORY = 24  # earlier windows kept for the volume alert, as QuotaTracker keeps
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS acknowledgements (
    subject TEXT NOT NULL, app TEXT NOT NULL, until REAL NOT NULL, PRIMARY KEY (subject, app));
CREATE INDEX IF NOT EXISTS acknowledgements_until ON acknowledgements (until);
CREATE TABLE IF NOT EXISTS quota_usage (
    rule TEXT NOT NULL, subject TEXT NOT NULL, window INTEGER NOT NULL, requests INTEGER NOT NULL,
    bytes INTEGER NOT NULL, alerted INTEGER NOT NULL, history TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (rule, subject));
CREATE INDEX IF NOT EXISTS quota_usage_expires ON quota_usage (expires);
"""


class SharedStateError(AipolicyError):
    """The shared state directory, secret or database cannot be used."""


def read_secret(path: str | Path) -> bytes:
    """The key in a secret file, which must be a regular file readable by its owner only."""
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise SharedStateError(f"secret file {path}: not a regular file")
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise SharedStateError(
                f"secret file {path}: mode {stat.S_IMODE(info.st_mode):04o} lets others read or change it; "
                f"it must be readable by its owner only: chmod 600 {path}"
            )
        key = path.read_bytes().strip()
    except OSError as error:
        raise SharedStateError(f"secret file {path}: {error.strerror or error}") from None
    if len(key) < MIN_SECRET:
        raise SharedStateError(
            f"secret file {path}: {len(key)} characters, at least {MIN_SECRET} are needed "
            f"(make one with: openssl rand -hex 32 > {path}; chmod 600 {path})"
        )
    return key


def ensure_secret(path: str | Path) -> bytes:
    """Read the secret file, creating it first if it does not exist (atomically: processes that
    start together all end up with the one key that was linked into place first)."""
    path = Path(path)
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_hex(32) + "\n")
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another process was first: use its key
        except OSError as error:
            raise SharedStateError(f"secret file {path}: cannot create it: {error.strerror or error}") from None
        finally:
            temporary.unlink(missing_ok=True)
    return read_secret(path)


class SharedState:
    """One process's connection to a shared state directory (the secret and the database)."""

    def __init__(self, directory: str | Path, secret_file: str | Path | None = None, limit: int = 100_000) -> None:
        self.directory = Path(directory).expanduser()
        self.limit = limit
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise SharedStateError(f"state directory {self.directory}: {error.strerror or error}") from None
        self.secret = ensure_secret(secret_file or self.directory / SECRET_FILE)
        self.path = self.directory / DATABASE_FILE
        self.lock = threading.Lock()  # one connection per process; hooks may run in worker threads
        self.pruned_at = 0.0
        self.added = 0  # rows added since the last pruning
        self.db = self._open()
        try:
            self.lock_fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            self.db.close()
            raise SharedStateError(f"lock file {self.directory / LOCK_FILE}: {error.strerror or error}") from None

    def _open(self) -> sqlite3.Connection:
        try:
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))  # SQLite gives -wal and -shm the same mode
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise SharedStateError(f"shared state database {self.path}: cannot open it: {error}") from None
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SharedStateError(
                    f"shared state database {self.path} was made by a newer aipolicy (schema {version}); "
                    "use a separate state directory for each version"
                )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit is not synced to disk, a checkpoint is
            check = db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
            db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
        except sqlite3.Error as error:
            db.close()
            raise SharedStateError(
                f"shared state database {self.path} cannot be used: {error}. It holds only acknowledgements "
                "and quota counters: stop the proxies that use it, delete it (with its -wal and -shm files) "
                "and start them again"
            ) from None
        except SharedStateError:
            db.close()
            raise
        return db

    def close(self) -> None:
        with self.lock:
            self.db.close()
            os.close(self.lock_fd)

    @contextlib.contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """The connection, for one short write. Writers take turns on an ``flock`` first: the kernel
        wakes a waiting process as soon as the lock is free, where SQLite's own busy handler polls
        in sleeps of 1 to 100 ms and can starve a process while others write back to back."""
        with self.lock:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
            try:
                yield self.db
            finally:
                fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    def prune(self, now: float) -> None:
        """Delete expired rows, then cut each table back to ``limit`` rows (the nearest expiry first)."""
        self.pruned_at, self.added = now, 0
        try:
            with self.writing():
                self.db.execute("DELETE FROM acknowledgements WHERE until <= ?", (now,))
                self.db.execute("DELETE FROM quota_usage WHERE expires <= ?", (now,))
                for table, column in (("acknowledgements", "until"), ("quota_usage", "expires")):
                    (count,) = self.db.execute(f"SELECT count(*) FROM {table}").fetchone()
                    if count > self.limit:
                        self.db.execute(
                            f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} ORDER BY {column} LIMIT ?)",
                            (count - self.limit + self.limit // 10,),
                        )
        except sqlite3.Error as error:
            raise self._failed("deleting expired rows", error) from None

    def _maybe_prune(self, now: float) -> None:
        if now - self.pruned_at >= PRUNE_INTERVAL or self.added >= max(1, self.limit // 10):
            try:
                self.prune(now)
            except SharedStateError as error:
                logger.warning(f"aipolicy: {error}")  # housekeeping only: the request's own query decides

    def _failed(self, what: str, error: sqlite3.Error) -> SharedStateError:
        return SharedStateError(f"shared state database {self.path}: {what} failed: {error}")


class SharedAcknowledgements(Acknowledgements):
    """``Acknowledgements`` whose tokens and acknowledgements every process on the directory shares.

    ``until`` caches acknowledgements found in the database: they are never withdrawn before
    they expire, so a user who acknowledged costs one lookup per process, not one per request."""

    def __init__(self, state: SharedState) -> None:
        super().__init__(secret=state.secret, limit=state.limit)
        self.state = state

    def acknowledged(self, subject: str, app: str, now: float) -> bool:
        if super().acknowledged(subject, app, now):
            return True
        state = self.state
        try:
            with state.lock:
                row = state.db.execute(
                    "SELECT until FROM acknowledgements WHERE subject = ? AND app = ? AND until > ?",
                    (subject, app, now),
                ).fetchone()
        except sqlite3.Error as error:
            raise state._failed("reading an acknowledgement", error) from None
        if row is None:
            return False
        if len(self.until) >= self.limit:
            self.until.clear()
        self.until[(subject, app)] = row[0]
        return True

    def remember(self, subject: str, app: str, now: float, seconds: float) -> None:
        state = self.state
        state._maybe_prune(now)
        try:
            with state.writing():
                state.db.execute(
                    "INSERT INTO acknowledgements (subject, app, until) VALUES (?, ?, ?) "
                    "ON CONFLICT (subject, app) DO UPDATE SET until = excluded.until",
                    (subject, app, now + seconds),
                )
        except sqlite3.Error as error:
            raise state._failed("storing an acknowledgement", error) from None
        state.added += 1
        super().remember(subject, app, now, seconds)


class SharedQuotaTracker(QuotaTracker):
    """``QuotaTracker`` counting in the shared database: one budget for every process.

    Each charge loads the (rule, subject) row into the in-memory tracker's own logic (windows,
    history, volume alert) and writes it back, inside one ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, state: SharedState) -> None:
        super().__init__(limit=state.limit)
        self.state = state

    def charge(self, rule: str, subject: str, settings: QuotaSettings, size: int, now: float) -> QuotaVerdict:
        self.state._maybe_prune(now)
        try:
            return self._in_transaction(
                rule, subject, settings, lambda: QuotaTracker.charge(self, rule, subject, settings, size, now)
            )
        except sqlite3.Error as error:
            raise self.state._failed("charging a quota", error) from None

    def add_bytes(self, rule: str, subject: str, settings: QuotaSettings, size: int, now: float) -> None:
        state = self.state
        try:
            with state.writing():
                changed = state.db.execute(
                    "UPDATE quota_usage SET bytes = bytes + ? WHERE rule = ? AND subject = ? AND window = ?",
                    (size, rule, subject, int(now // settings.per)),
                ).rowcount
            if not changed:  # a new window began since the request was counted, or the row expired
                self._in_transaction(
                    rule, subject, settings, lambda: QuotaTracker.add_bytes(self, rule, subject, settings, size, now)
                )
        except sqlite3.Error as error:
            # the response is already on its way: log, and leave these bytes uncounted
            logger.warning(f"aipolicy: {state._failed('counting response bytes', error)}; {size:,} bytes not counted")

    def _in_transaction(self, rule: str, subject: str, settings: QuotaSettings, change: Callable[[], T]) -> T:
        """Load the (rule, subject) row into the in-memory tracker, apply ``change``, write it back: one transaction."""
        state = self.state
        with state.writing():
            state.db.execute("BEGIN IMMEDIATE")
            try:
                self.usage = {}
                if not self._load(rule, subject):
                    state.added += 1
                result = change()
                self._store(rule, subject, settings)
                state.db.execute("COMMIT")
            except BaseException:
                if state.db.in_transaction:
                    state.db.execute("ROLLBACK")
                raise
            finally:
                self.usage = {}
        return result

    def _load(self, rule: str, subject: str) -> bool:
        row = self.state.db.execute(
            "SELECT window, requests, bytes, alerted, history FROM quota_usage WHERE rule = ? AND subject = ?",
            (rule, subject),
        ).fetchone()
        if row is None:
            return False
        window, requests, size, alerted, history = row
        usage = _Usage(window, requests, size, bool(alerted))
        usage.history.extend(int(part) for part in history.split(",") if part)
        self.usage[(rule, subject)] = usage
        return True

    def _store(self, rule: str, subject: str, settings: QuotaSettings) -> None:
        usage = self.usage[(rule, subject)]
        kept = HISTORY if settings.alert_factor is not None else 0
        expires = (usage.window + 1 + kept) * settings.per
        self.state.db.execute(
            "INSERT OR REPLACE INTO quota_usage (rule, subject, window, requests, bytes, alerted, history, expires) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rule,
                subject,
                usage.window,
                usage.requests,
                usage.bytes,
                int(usage.alerted),
                ",".join(map(str, usage.history)),
                expires,
            ),
        )
