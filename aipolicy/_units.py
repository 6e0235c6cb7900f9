"""One grammar for the sizes, durations, times and dates people write: in a policy file, on
the command line and in the proxy's options. docs/grammar.md is the reference.

    size      NUMBER [UNIT]          1048576  500KB  1.5 MB  10MiB  1G
              B; K KB, M MB, G GB, T TB: powers of 1000; KiB MiB GiB TiB: powers of 1024
              (case does not matter; no unit: bytes; a fraction of a byte is dropped)
    duration  NUMBER UNIT ...        90  30s  15m  1.5h  1h30m  7d  2w
              s m h d w (case does not matter); a number alone is seconds
    time      now | DURATION | DATE | DATE TIME
              now; a duration: that long before now; a date: its midnight, UTC;
              2026-11-01T10:00[:00[.5]][Z|+01:00] ('T' or a space; no offset: UTC)
    date      YYYY-MM-DD (the month and day may have one digit)
    NUMBER    ASCII digits, optionally with a decimal point: no sign, exponent, NaN or infinity

Zero is refused unless the caller says what it means (``zero="no limit"``). Every error is a
ValueError whose message quotes the value and says what is valid, with examples.
"""

from __future__ import annotations

import datetime
import math
import re
from decimal import Decimal

MAX_SIZE = 10**15  # 1000TB: larger is a typo, and stays well inside a 64-bit counter
MAX_DURATION = 36500 * 86400  # 36500d, about a century
_MAX_TEXT = 100  # characters: longer is no size, duration or time
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_SIZE = re.compile(rf"({_NUMBER})[ \t]*([a-z]*)", re.IGNORECASE | re.ASCII)
_TERM = re.compile(rf"({_NUMBER})[ \t]*([smhdw])[ \t]*", re.IGNORECASE | re.ASCII)
_MOMENT = re.compile(  # a date, then optionally a time of day and an offset (RFC 3339, leniently)
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?(?:([Zz])|([+-])([0-9]{2})(?::?([0-9]{2}))?)?)?",
    re.ASCII,
)
SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3, "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}  # fmt: skip
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE_HELP = (
    "a number of bytes, optionally with a unit: K or KB, M or MB, G or GB, T or TB (powers of 1000), "
    "KiB, MiB, GiB or TiB (powers of 1024)"
)
_DURATION_HELP = (
    "a number with a unit, s, m, h, d or w (seconds, minutes, hours, days, weeks), "
    "or several, as in 1h30m; a number alone is seconds"
)
_DATE_HELP = "use YYYY-MM-DD, e.g. 2026-06-30"
_TIME_HELP = (
    "use a date or time (2026-11-01, 2026-11-01T10:00:00Z; UTC unless an offset is given), now, "
    "or a duration before now (30m, 24h, 7d, 1h30m)"
)


def parse_size(value: object, *, zero: str = "") -> int:
    """Bytes from ``1048576``, ``"500KB"`` (500,000), ``"10MiB"`` or ``"1.5G"``.

    ``zero`` says what 0 means to the caller (``"no limit"``); without it, 0 is refused.
    """
    amount = _number(value, "size", zero) if not isinstance(value, str) else _size_text(value, zero)
    size = int(_in_range(value, "size", amount, MAX_SIZE, "1000TB", zero))  # a fraction of a byte is dropped
    if size == 0 and not zero:
        raise ValueError(f"a size must be more than 0 bytes, got {value!r}")
    return size


def parse_duration(value: object, *, zero: str = "") -> float:
    """Seconds from ``90``, ``"30s"``, ``"1.5h"``, ``"1h30m"``, ``"7d"`` or ``"2w"``.

    ``zero`` says what 0 means to the caller (``"no limit"``); without it, 0 is refused.
    """
    seconds = _number(value, "duration", zero) if not isinstance(value, str) else _duration_text(value, zero)
    _in_range(value, "duration", seconds, MAX_DURATION, "36500d", zero)
    if seconds == 0 and not zero:
        raise ValueError(f"a duration must be more than 0 seconds, got {value!r}")
    return float(seconds)


def parse_time(value: object, now: datetime.datetime | None = None) -> datetime.datetime:
    """A moment (timezone-aware, UTC): ``now``, a duration before ``now`` (``7d``, ``1h30m``), a date
    (its midnight, UTC) or an RFC 3339 time (no offset means UTC).

    >>> now = datetime.datetime(2026, 11, 8, 12, tzinfo=datetime.UTC)
    >>> parse_time("7d", now).isoformat()
    '2026-11-01T12:00:00+00:00'
    >>> parse_time("2026-11-01", now).isoformat()
    '2026-11-01T00:00:00+00:00'
    """
    if now is None:
        now = datetime.datetime.now(datetime.UTC)
    text = value.strip() if isinstance(value, str) else ""
    if text.lower() == "now":
        return now
    if _TERM.match(text):
        try:
            seconds = _duration_text(text, "now")
        except ValueError:
            raise ValueError(f"{_shown(value)} is not a time: {_TIME_HELP}") from None
        return _before(now, value, seconds)
    moment = parse_timestamp(value, what="time", valid=_TIME_HELP)
    if isinstance(moment, datetime.datetime):
        return moment
    return datetime.datetime.combine(moment, datetime.time(), datetime.UTC)


def parse_date(value: object) -> datetime.date:
    """A calendar date: ``2026-06-30`` (the month and day may have one digit); a time, written or
    already read by YAML, gives its date in UTC."""
    moment = parse_timestamp(value, what="date", valid=_DATE_HELP)
    return moment.date() if isinstance(moment, datetime.datetime) else moment


def parse_timestamp(
    value: object, *, what: str = "date or time", valid: str = "use 2026-11-01 or 2026-11-01T10:00:00Z"
) -> datetime.date | datetime.datetime:
    """An absolute date or time as written: a date stays a date (the caller decides whether it means
    the start or the end of that day); a time is timezone-aware, UTC when it gives no offset."""
    if isinstance(value, datetime.datetime):
        return _utc(value, value)
    if isinstance(value, datetime.date):
        return value
    text = value.strip() if isinstance(value, str) else ""
    match = _MOMENT.fullmatch(text) if len(text) <= _MAX_TEXT else None
    if match is None:
        raise ValueError(f"{_shown(value)} is not a {what}: {valid}")
    year, month, day, hour, minute, second, fraction, utc, sign, zone_hours, zone_minutes = match.groups()
    try:
        if hour is None:
            return datetime.date(int(year), int(month), int(day))
        if int(zone_hours or 0) > 23 or int(zone_minutes or 0) > 59:
            raise ValueError("the offset must be from -23:59 to +23:59")
        offset = datetime.timedelta(hours=int(zone_hours or 0), minutes=int(zone_minutes or 0))
        zone = datetime.timezone(-offset if sign == "-" else offset) if sign and not utc else datetime.UTC
        microsecond = int((fraction or "0").ljust(6, "0")[:6])
        moment = datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), microsecond, zone
        )
    except ValueError as error:
        raise ValueError(f"{value!r} is not a {what}: {valid}; here, {error}") from None
    return _utc(value, moment)


# --- the parts ------------------------------------------------------------------------------------


def _shown(value: object) -> str:
    """The value as given, quoted; a very long one cut short."""
    if isinstance(value, str) and len(value) > _MAX_TEXT:
        return f"{value[:20]!r}… ({len(value)} characters)"
    return repr(value)


def _examples(what: str, zero: str) -> str:
    listed = {"size": "1048576, 100M, 1G", "duration": "3600, 30m, 24h, 7d"}[what]
    return f"0 for {zero}, {listed}" if zero else listed


def _invalid(value: object, what: str, zero: str) -> ValueError:
    valid = _SIZE_HELP if what == "size" else _DURATION_HELP
    return ValueError(f"{_shown(value)} is not a {what} (examples: {_examples(what, zero)}): {valid}")


def _number(value: object, what: str, zero: str) -> Decimal:
    """A number already read (YAML ``bytes: 1048576``, ``per: 3600``): finite, not a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(value, what, zero)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a {what}: it must be a finite number (examples: {_examples(what, zero)})")
    return Decimal(value)


def _size_text(value: str, zero: str) -> Decimal:
    text = value.strip()
    _refuse_a_sign(value, text, "size", zero)
    match = _SIZE.fullmatch(text) if len(text) <= _MAX_TEXT else None
    if match is None or match[2].lower() not in SIZE_UNITS:
        raise _invalid(value, "size", zero)
    return Decimal(match[1]) * SIZE_UNITS[match[2].lower()]


def _duration_text(value: str, zero: str) -> Decimal:
    text = value.strip()
    if len(text) > _MAX_TEXT:
        raise _invalid(value, "duration", zero)
    _refuse_a_sign(value, text, "duration", zero)
    if re.fullmatch(_NUMBER, text, re.ASCII):
        return Decimal(text)
    seconds, position = Decimal(0), 0
    while position < len(text):
        term = _TERM.match(text, position)
        if term is None:
            raise _invalid(value, "duration", zero)
        seconds += Decimal(term[1]) * DURATION_UNITS[term[2].lower()]
        position = term.end()
    if position == 0:
        raise _invalid(value, "duration", zero)
    return seconds


def _refuse_a_sign(value: str, text: str, what: str, zero: str) -> None:
    if text.startswith("-") and text[1:2].isdigit():
        raise _negative(value, what, zero)


def _negative(value: object, what: str, zero: str) -> ValueError:
    return ValueError(f"a {what} cannot be negative, got {value!r}")


def _in_range(value: object, what: str, amount: Decimal, largest: int, shown: str, zero: str) -> Decimal:
    if amount < 0:
        raise _negative(value, what, zero)
    if amount > largest:
        raise ValueError(f"a {what} must be at most {shown}, got {value!r}")
    return amount


def _before(now: datetime.datetime, value: object, seconds: Decimal) -> datetime.datetime:
    if seconds > MAX_DURATION:
        raise ValueError(f"{value!r} reaches too far back: a duration must be at most 36500d")
    try:
        return now - datetime.timedelta(seconds=float(seconds))
    except OverflowError:
        raise ValueError(f"{value!r} reaches too far back") from None


def _utc(value: object, moment: datetime.datetime) -> datetime.datetime:
    """``moment`` in UTC; a time without an offset is UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    try:
        return moment.astimezone(datetime.UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range once moved to UTC (years 1 to 9999)") from None
