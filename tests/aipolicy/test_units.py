"""The one grammar for sizes, durations, times and dates (docs/grammar.md), hostile input included."""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path

import pytest

import aipolicy
from aipolicy import parse_date, parse_duration, parse_log_age, parse_log_size, parse_size, parse_time
from aipolicy._units import parse_timestamp

NOW = datetime.datetime(2026, 11, 8, 12, 30, tzinfo=datetime.UTC)
UTC = datetime.UTC

# --- sizes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("1048576", 1_048_576),
        ("100B", 100),
        ("500KB", 500_000),
        ("500K", 500_000),
        ("500kb", 500_000),
        ("10MB", 10_000_000),
        ("10M", 10_000_000),
        ("1G", 10**9),
        ("2TB", 2 * 10**12),
        ("1KiB", 1024),
        ("10MiB", 10 * 1024**2),
        ("1gib", 1024**3),
        ("1TiB", 1024**4),
        ("1.5GB", 1_500_000_000),
        ("4.35MB", 4_350_000),  # exact: as floats, 4.35 * 10**6 is 4349999.999…
        ("0.5KiB", 512),
        ("1.9", 1),  # a fraction of a byte is dropped
        ("100 MB", 100_000_000),
        ("\t 7 kib \n", 7168),
        ("1000TB", 10**15),
        (1024, 1024),
        (1.5e6, 1_500_000),
    ],
)
def test_sizes(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ten", r"'ten' is not a size \(examples: 1048576, 100M, 1G\): a number of bytes, optionally with a unit"),
        ("", "is not a size"),
        ("MB", "is not a size"),
        ("100 XB", "is not a size"),
        ("1.", "is not a size"),
        (".5MB", "is not a size"),
        ("1,000", "is not a size"),
        ("1_000", "is not a size"),
        ("1e3", "is not a size"),
        ("0x10", "is not a size"),
        ("+5MB", "is not a size"),
        ("-5MB", r"a size cannot be negative, got '-5MB'"),
        ("nan", "'nan' is not a size"),
        ("inf", "'inf' is not a size"),
        ("Infinity", "is not a size"),
        ("١٢", "'١٢' is not a size"),  # Arabic-Indic digits: int() and float() would read 12
        ("１２MB", "is not a size"),  # fullwidth digits
        ("12\u00a0MB", "is not a size"),  # a no-break space inside
        ("1 0MB", "is not a size"),
        ("9" * 5000, r"'99999999999999999999'… \(5000 characters\) is not a size"),
        ("1001TB", "a size must be at most 1000TB, got '1001TB'"),
        ("99999999999999999999999GiB", "must be at most 1000TB"),
        ("0", "a size must be more than 0 bytes, got '0'"),
        ("0.4", "a size must be more than 0 bytes"),
        (0, "a size must be more than 0 bytes"),
        (-1, "a size cannot be negative, got -1"),
        (float("nan"), "nan is not a size: it must be a finite number"),
        (float("inf"), "inf is not a size: it must be a finite number"),
        (1e300, "must be at most 1000TB"),
        (True, "True is not a size"),
        (None, "None is not a size"),
        ([1], r"\[1\] is not a size"),
    ],
)
def test_bad_sizes(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_size(value)


def test_zero_is_a_size_only_where_the_caller_says_what_it_means() -> None:
    assert parse_size("0", zero="no limit") == 0 and parse_size("0KB", zero="no limit") == 0
    with pytest.raises(ValueError, match=r"\(examples: 0 for no limit, 1048576, 100M, 1G\)"):
        parse_size("lots", zero="no limit")


# --- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("8h", 28_800.0),
        ("7d", 604_800.0),
        ("2W", 1_209_600.0),
        ("1.5h", 5400.0),
        ("0.25s", 0.25),
        ("1h30m", 5400.0),
        ("1H30M", 5400.0),
        ("1h 30m", 5400.0),
        ("1d12h", 129_600.0),
        ("1w2d3h4m5s", 788_645.0),
        (" 7d\n", 604_800.0),
        ("7 d", 604_800.0),
        ("36500d", 36_500 * 86_400.0),
        (90, 90.0),
        (1.5, 1.5),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", r"'soon' is not a duration \(examples: 3600, 30m, 24h, 7d\): a number with a unit, s, m, h, d or w"),
        ("", "is not a duration"),
        ("h", "is not a duration"),
        ("1y", "'1y' is not a duration"),
        ("1h30", "'1h30' is not a duration"),  # a unit on every number but a lone one
        ("8 hours", "is not a duration"),
        ("1ms", "is not a duration"),
        ("PT1H", "is not a duration"),
        ("1e3s", "is not a duration"),
        ("-1h", "a duration cannot be negative, got '-1h'"),
        ("nan", "'nan' is not a duration"),
        ("infs", "is not a duration"),
        ("٣d", "'٣d' is not a duration"),
        ("1h\u200b30m", "is not a duration"),  # a zero-width space inside
        ("36501d", "a duration must be at most 36500d, got '36501d'"),
        ("9" * 300 + "w", r"^'99999999999999999999'… \(301 characters\) is not a duration"),
        ("0", "a duration must be more than 0 seconds, got '0'"),
        ("0h0m", "a duration must be more than 0 seconds"),
        (0, "a duration must be more than 0 seconds"),
        (-5, "a duration cannot be negative"),
        (float("nan"), "nan is not a duration: it must be a finite number"),
        (float("-inf"), "-inf is not a duration: it must be a finite number"),
        (True, "True is not a duration"),
    ],
)
def test_bad_durations(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


def test_the_log_options_are_the_same_grammar_with_zero_for_no_limit() -> None:
    for text in ("4096", "100K", "100MB", "1.5G", "64MiB"):
        assert parse_log_size(text) == parse_size(text)
    for text in ("3600", "30m", "1.5h", "1h30m", "7d"):
        assert parse_log_age(text) == parse_duration(text)
    assert parse_log_size("0") == 0 and parse_log_age("0") == 0
    with pytest.raises(ValueError, match=r"'1y' is not a duration \(examples: 0 for no limit, 3600"):
        parse_log_age("1y")


def test_bundle_validity_is_the_duration_grammar() -> None:
    assert aipolicy.parse_validity("1d12h") == datetime.timedelta(hours=36)
    assert aipolicy.parse_validity("1.5h") == datetime.timedelta(minutes=90)
    with pytest.raises(aipolicy.BundleError, match="a duration must be more than 0 seconds"):
        aipolicy.parse_validity("0d")


# --- times --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        (" NOW ", NOW),
        ("7d", NOW - datetime.timedelta(days=7)),
        ("1.5h", NOW - datetime.timedelta(minutes=90)),
        ("1h30m", NOW - datetime.timedelta(minutes=90)),
        ("0s", NOW),
        ("2026-11-01", datetime.datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-1-5", datetime.datetime(2026, 1, 5, tzinfo=UTC)),
        ("2026-11-01T10:00", datetime.datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("2026-11-01 10:00:00", datetime.datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("2026-11-01t10:00:00z", datetime.datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("2026-11-01T10:00:00+01:00", datetime.datetime(2026, 11, 1, 9, tzinfo=UTC)),
        ("2026-11-01T10:00:00-0530", datetime.datetime(2026, 11, 1, 15, 30, tzinfo=UTC)),
        ("2026-11-01T10:00+02", datetime.datetime(2026, 11, 1, 8, tzinfo=UTC)),
        ("2026-11-01T10:00:00.123456789Z", datetime.datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("9999-12-31T23:59:59Z", datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_times(text: str, expected: datetime.datetime) -> None:
    moment = parse_time(text, NOW)
    assert moment == expected and moment.tzinfo is not None and moment.utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7", "is not a time: use a date or time"),  # a number alone: a year? seconds? refused
        ("d7", "is not a time"),
        ("last week", "is not a time"),
        ("yesterday", "is not a time"),
        ("1h30", "'1h30' is not a time"),
        ("-7d", "is not a time"),
        ("2026-13-01", r"'2026-13-01' is not a time: .*; here, month must be in 1\.\.12"),
        ("2026-02-30", "day is out of range for month"),
        ("2026-11-01T24:00", "hour must be in 0..23"),
        ("2026-11-01T10:00:60Z", "second must be in 0..59"),  # a leap second: not representable
        ("2026-11-01T10:00+24:00", "the offset must be from -23:59 to \\+23:59"),
        ("20261101", "is not a time"),
        ("2026-W44-1", "is not a time"),
        ("2026-11-01T10", "is not a time"),
        ("٢٠٢٦-١١-٠١", "is not a time"),
        ("2026-11-01\u200b", "is not a time"),
        ("9999-12-31T23:59:59-01:00", "out of range once moved to UTC"),
        ("0001-01-01T00:00+01:00", "out of range once moved to UTC"),
        ("36501d", "reaches too far back: a duration must be at most 36500d"),
        ("9" * 400 + "d", r"^'99999999999999999999'… \(401 characters\) is not a time"),
        ("", "is not a time"),
    ],
)
def test_bad_times(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_time(text, NOW)


def test_every_bad_time_says_what_is_valid() -> None:
    for text in ("7", "2026-13-01", "last week", "1h30"):
        with pytest.raises(ValueError, match=r"is not a time: use a date or time .* now, or a duration before now"):
            parse_time(text, NOW)


def test_time_without_now_is_measured_from_the_clock() -> None:
    before = datetime.datetime.now(UTC)
    moment = parse_time("1h")
    assert before - datetime.timedelta(hours=1, seconds=5) <= moment <= datetime.datetime.now(UTC)


def test_times_already_read_are_taken_as_they_are() -> None:
    naive = datetime.datetime(2026, 11, 1, 10)
    assert parse_time(naive, NOW) == naive.replace(tzinfo=UTC)
    assert parse_time(datetime.date(2026, 11, 1), NOW) == datetime.datetime(2026, 11, 1, tzinfo=UTC)


# --- dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-30", datetime.date(2026, 6, 30)),
        ("2026-6-3", datetime.date(2026, 6, 3)),
        (" 2026-06-30 ", datetime.date(2026, 6, 30)),
        (datetime.date(2026, 6, 30), datetime.date(2026, 6, 30)),
        (
            datetime.datetime(2026, 6, 30, 23, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
            datetime.date(2026, 7, 1),
        ),
        ("2026-06-30T23:00-05:00", datetime.date(2026, 7, 1)),  # a time gives its date in UTC
    ],
)
def test_dates(value: object, expected: datetime.date) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tomorrow", r"'tomorrow' is not a date: use YYYY-MM-DD, e.g\. 2026-06-30"),
        ("30/06/2026", "is not a date"),
        ("2026-06-31", "'2026-06-31' is not a date: use YYYY-MM-DD, e.g. 2026-06-30; here, day is out of range"),
        ("26-06-30", "is not a date"),
        ("٢٠٢٦-٠٦-٣٠", "is not a date"),
        ("", "is not a date"),
        (20260630, "20260630 is not a date"),
        (None, "None is not a date"),
    ],
)
def test_bad_dates(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_date(value)


def test_a_timestamp_keeps_a_date_a_date() -> None:
    """The caller decides whether a date means the start (--since) or the end (an exception's until) of that day."""
    assert parse_timestamp("2026-12-31") == datetime.date(2026, 12, 31)
    assert parse_timestamp("2026-12-31T12:00Z") == datetime.datetime(2026, 12, 31, 12, tzinfo=UTC)


# --- in a policy file ---------------------------------------------------------------------------

FIXTURE_CATALOG = Path(__file__).resolve().parents[1] / "fixtures" / "catalog.yaml"


def load(directory: Path, rules: str) -> aipolicy.Policy:
    path = directory / "policy.yaml"
    path.write_text(f"version: 1\ncatalog: {FIXTURE_CATALOG}\n" + textwrap.dedent(rules), encoding="utf-8")
    return aipolicy.load_policy(path)


def test_a_policy_reads_sizes_and_durations_with_the_same_grammar(tmp_path: Path) -> None:
    policy = load(
        tmp_path,
        """
        rules:
          - {id: q, action: quota, match: {hosts: [q.example]}, quota: {per: 1h30m, bytes: 1.5MB}}
          - {id: w, action: warn, match: {hosts: [w.example]}, warn: {remember: 1.5h}}
        """,
    )
    quota, warn = policy.rules[0].quota, policy.rules[1].warn
    assert quota is not None and (quota.per, quota.bytes) == (5400, 1_500_000)
    assert warn is not None and warn.remember == 5400
    assert quota.bytes == parse_log_size("1.5MB")  # the same size as --log-max-size 1.5MB


def test_a_quoted_until_date_lasts_through_that_day(tmp_path: Path) -> None:
    """It used to end at the start of that day: fromisoformat read "2030-01-01" as midnight."""
    policy = load(
        tmp_path,
        """
        rules:
          - {id: r, action: block, match: {hosts: [x.example]}}
        exceptions:
          - {rule: r, users: [a], until: 2030-01-01, ticket: T-1}
          - {rule: r, users: [b], until: "2030-01-01", ticket: T-2}
          - {rule: r, users: [c], until: "2030-01-01T12:00:00+01:00", ticket: T-3}
        """,
    )
    ends = [item.until for item in policy.exceptions]
    assert ends[0] == ends[1] == datetime.datetime(2030, 1, 2, tzinfo=UTC)
    assert ends[2] == datetime.datetime(2030, 1, 1, 11, tzinfo=UTC)


def test_a_quoted_rule_date_is_a_date(tmp_path: Path) -> None:
    """Rule review and expiry dates: quoted or not, the same date (a quoted one used to be refused)."""
    policy = load(
        tmp_path,
        """
        rules:
          - {id: a, action: block, match: {hosts: [a.example]}, expires: 2099-06-30, review: "2099-1-5"}
        """,
    )
    assert (policy.rules[0].expires, policy.rules[0].review) == ("2099-06-30", "2099-01-05")
    with pytest.raises(aipolicy.PolicyError, match=r"rule 'b'.expires must be a date like 2026-06-30, got '١٢'"):
        load(tmp_path, "rules:\n  - {id: b, action: block, match: {hosts: [b.example]}, expires: '١٢'}\n")
