"""The stateful controls: ``warn`` (acknowledge, then proceed), ``read-only`` (browse, never
submit) and ``quota`` (request and byte budgets per user, with a volume alert).

The decision function stays pure: it says *which* rule applies. What depends on time and on
earlier requests (has this user acknowledged the warning? how much of the budget is left?)
lives here, in small objects the proxy owns, with the clock passed in so tests control it.
"""

from __future__ import annotations

import hashlib
import hmac
import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

JUSTIFICATION_MODES = ("none", "optional", "required")
QUOTA_SUBJECTS = ("user", "client")
MAX_JUSTIFICATION = 500
# Requests that submit something: a body, or a WebSocket (chat apps stream prompts over them).
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


@dataclass(frozen=True)
class WarnSettings:
    justification: str = "optional"  # none | optional | required
    remember: float = 8 * 3600  # seconds an acknowledgement lasts
    message: str = ""


@dataclass(frozen=True)
class QuotaSettings:
    per: float  # window length, seconds
    requests: int | None = None
    bytes: int | None = None  # request and response bodies together
    by: str = "user"  # the user if known, else the client address; "client": always the address
    alert_factor: float | None = None  # a window this many times the subject's baseline raises a volume alert
    alert_min_requests: int = 100  # ...and at least this many requests in it


def is_write(method: str, headers: Mapping[str, str]) -> bool:
    """Does the request submit something (a prompt, a file)? Reading pages and their assets does not."""
    if headers.get("upgrade", "").lower() == "websocket":
        return True
    if "transfer-encoding" in headers:
        return True
    length = headers.get("content-length")
    if length is None:  # HTTP/2 may send a body without a length: a submitting method counts as a write
        return method.upper() not in _READ_METHODS
    length = length.strip()
    return not length.isdigit() or int(length) > 0  # unparsable: treat as a submission (fail closed)


def clean_justification(text: str) -> str:
    """What a user typed, made safe to store: no control characters, bounded length."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return cleaned[:MAX_JUSTIFICATION]


# --- warn: acknowledgements ------------------------------------------------------------------


@dataclass
class Acknowledgements:
    """Who acknowledged which app's warning, until when. Bounded: the oldest go first."""

    secret: bytes
    limit: int = 100_000
    until: dict[tuple[str, str], float] = field(default_factory=dict)

    def acknowledged(self, subject: str, app: str, now: float) -> bool:
        expiry = self.until.get((subject, app))
        if expiry is None:
            return False
        if expiry <= now:
            del self.until[(subject, app)]
            return False
        return True

    def remember(self, subject: str, app: str, now: float, seconds: float) -> None:
        if len(self.until) >= self.limit:
            for key in [k for k, expiry in self.until.items() if expiry <= now] or list(self.until)[: self.limit // 10]:
                del self.until[key]
        self.until[(subject, app)] = now + seconds

    def token(self, subject: str, app: str, now: float) -> str:
        """A form token only the warning page carries, so another site cannot acknowledge for the user."""
        issued = str(int(now))
        mac = hmac.new(self.secret, f"{subject}\0{app}\0{issued}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"{issued}.{mac}"

    def valid_token(self, token: str, subject: str, app: str, now: float, max_age: float = 3600) -> bool:
        issued, _, mac = token.partition(".")
        if not issued.isdigit() or not (0 <= now - int(issued) <= max_age):
            return False
        expected = hmac.new(self.secret, f"{subject}\0{app}\0{issued}".encode(), hashlib.sha256).hexdigest()[:32]
        return hmac.compare_digest(mac, expected)


# --- quota: budgets per window ------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaVerdict:
    allowed: bool
    retry_after: int  # seconds until the window ends (when not allowed)
    requests: int  # used in this window, this request included when allowed
    bytes: int
    alert: bool = False  # this request pushed the window far above the subject's baseline
    baseline: float = 0.0


@dataclass
class _Usage:
    window: int
    requests: int = 0
    bytes: int = 0
    alerted: bool = False
    history: deque[int] = field(default_factory=lambda: deque(maxlen=24))  # requests in earlier windows


class QuotaTracker:
    """Fixed windows of ``per`` seconds, counted per (rule, subject). Bounded in subjects."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self.usage: dict[tuple[str, str], _Usage] = {}

    def _usage(self, rule: str, subject: str, settings: QuotaSettings, now: float) -> _Usage:
        window = int(now // settings.per)
        usage = self.usage.get((rule, subject))
        if usage is None:
            if len(self.usage) >= self.limit:
                self.usage.clear()  # a flood of subjects: start counting afresh rather than grow
            usage = self.usage[(rule, subject)] = _Usage(window)
        elif usage.window != window:
            usage.history.append(usage.requests)
            usage.history.extend([0] * min(usage.history.maxlen or 0, max(0, window - usage.window - 1)))
            usage.window, usage.requests, usage.bytes, usage.alerted = window, 0, 0, False
        return usage

    def charge(self, rule: str, subject: str, settings: QuotaSettings, size: int, now: float) -> QuotaVerdict:
        """Count one request of ``size`` body bytes, unless it is over budget."""
        usage = self._usage(rule, subject, settings, now)
        retry_after = max(1, int((usage.window + 1) * settings.per - now + 0.999))
        over_requests = settings.requests is not None and usage.requests + 1 > settings.requests
        over_bytes = settings.bytes is not None and usage.bytes + size > settings.bytes and usage.bytes > 0
        if over_requests or over_bytes:
            return QuotaVerdict(False, retry_after, usage.requests, usage.bytes)
        usage.requests += 1
        usage.bytes += size
        alert, baseline = self._volume_alert(usage, settings)
        return QuotaVerdict(True, 0, usage.requests, usage.bytes, alert, baseline)

    def add_bytes(self, rule: str, subject: str, settings: QuotaSettings, size: int, now: float) -> None:
        """Count response bytes against the window the request was counted in."""
        self._usage(rule, subject, settings, now).bytes += size

    @staticmethod
    def _volume_alert(usage: _Usage, settings: QuotaSettings) -> tuple[bool, float]:
        if settings.alert_factor is None or usage.alerted or len(usage.history) < 3:
            return False, 0.0
        baseline = max(1.0, statistics.median(usage.history))
        if usage.requests >= max(settings.alert_min_requests, settings.alert_factor * baseline):
            usage.alerted = True
            return True, baseline
        return False, baseline
