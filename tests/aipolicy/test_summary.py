"""Reading event logs and summarising them, checked against numbers counted by hand.

The fixture (tests/fixtures/logs/) holds two proxies' logs, each a current file and
a rotated gzip file (gw-2's without a .gz name). Its 13 decision events, by hand:

    #   ts (UTC)                  file                 action   rule                   app/vendor        user (groups)
    E1  2026-10-28 09:00:00.000   gw-1 .1.gz           block    deepseek-any-capacity  deepseek/deepseek alice (eng, admins)
    E2  2026-10-30 15:30:00.000   gw-1 .1.gz           monitor  ai-monitor             chatgpt/openai    bob (eng)
    E3  2026-11-01 08:15:00.000   gw-1 .1.gz           block    deepseek-any-capacity  deepseek/deepseek alice (eng, admins)
    E4  2026-11-01 10:00:00.000   gw-1 events.jsonl:2  block    deepseek-any-capacity  deepseek/deepseek bob (eng)
    E5  2026-11-02 12:00:00.000   gw-1 events.jsonl:4  monitor  ai-monitor             chatgpt/openai    carol (finance)
    E6  2026-11-03 09:45:00.000   gw-1 events.jsonl:6  block    prc-genai              qwen/alibaba      alice (eng, admins)
    E7  2026-10-29 11:00:00.000   gw-2 .1 (gzip)       block    prc-genai              qwen/alibaba      - 10.0.0.9 (none)
    E8  2026-11-01 23:59:59.999   gw-2 .1 (gzip)       block    deepseek-any-capacity  deepseek/deepseek carol (finance)
    E9  2026-11-02 00:00:00.000   gw-2 events.jsonl:1  block    deepseek-any-capacity  deepseek/deepseek - 10.0.0.9 (none)
    E10 2026-11-02 07:00:00.000   gw-2 events.jsonl:2  monitor  ai-monitor             chatgpt/openai    alice (eng, admins)
    E11 2026-11-03 16:20:00.000   gw-2 events.jsonl:3  block    deepseek-any-capacity  deepseek/deepseek bob (eng)
    E12 2026-11-04 13:00:00.000   gw-2 events.jsonl:4  block    prc-genai              qwen/alibaba      carol (finance)
    E13 2026-11-05 18:00:00.000   gw-2 events.jsonl:6  monitor  ai-monitor             chatgpt/openai    bob (eng)

Not counted: gw-1 events.jsonl:1 (policy_loaded) and gw-2 events.jsonl:7 (policy_rejected),
silently; and five bad lines, reported: gw-1 events.jsonl:3 not JSON, :5 newer format (v 2),
:7 not a JSON object ([1, 2, 3]), :8 truncated last line; gw-2 events.jsonl:5 not UTF-8.
Hosts: chat.deepseek.com E1 E4 E8 E11; api.deepseek.com E3 E9; chatgpt.com E2 E5 E10 E13;
chat.qwen.ai E6 E7 E12. Directives: USN-2025-01-24-DEEPSEEK on deepseek-any-capacity,
ORG-2025-07-PRC on prc-genai, none on ai-monitor.
"""

from __future__ import annotations

import datetime
import gzip
import json
import os
from pathlib import Path

import pytest

from aipolicy import EventLogError, parse_time
from aipolicy.analytics._summary import (
    EventFilter,
    Summary,
    filter_events,
    format_change,
    sparkline,
    summarise,
)
from aipolicy.eventlog._reader import (
    EventReader,
    Follower,
    SkipReport,
    canonical_ts,
    format_ts,
    read_events,
    rotation_key,
)

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
ALL = [str(LOGS / "*" / "events.jsonl*")]

TOTAL = 13
USERS = 4  # alice, bob, carol and the unauthenticated 10.0.0.9
FIRST, LAST = "2026-10-28T09:00:00.000Z", "2026-11-05T18:00:00.000Z"  # E1, E13

# (key, count, distinct users, first, last), largest count first, ties by key.
BY_RULE = [
    ("deepseek-any-capacity", 6, 4, "2026-10-28T09:00:00.000Z", "2026-11-03T16:20:00.000Z"),  # E1 E3 E4 E8 E9 E11
    ("ai-monitor", 4, 3, "2026-10-30T15:30:00.000Z", "2026-11-05T18:00:00.000Z"),  # E2 E5 E10 E13
    ("prc-genai", 3, 3, "2026-10-29T11:00:00.000Z", "2026-11-04T13:00:00.000Z"),  # E6 E7 E12
]
BY_ACTION = {"block": 9, "monitor": 4}  # block: E1 E3 E4 E6 E7 E8 E9 E11 E12
BY_USER = {"alice": 4, "bob": 4, "carol": 3, "10.0.0.9": 2}  # alice E1 E3 E6 E10; bob E2 E4 E11 E13; carol E5 E8 E12
BY_GROUP = {"eng": 8, "admins": 4, "finance": 3, None: 2}  # eng = alice's 4 + bob's 4; sums to 17 > 13
BY_APP = {"deepseek": 6, "chatgpt": 4, "qwen": 3}
BY_VENDOR = {"deepseek": 6, "openai": 4, "alibaba": 3}
BY_HOST = {"chat.deepseek.com": 4, "chatgpt.com": 4, "chat.qwen.ai": 3, "api.deepseek.com": 2}
BY_DIRECTIVE = {"USN-2025-01-24-DEEPSEEK": 6, None: 4, "ORG-2025-07-PRC": 3}
BY_DAY = {
    "2026-11-01": 3,  # E3 E4 E8 (E8 at 23:59:59.999)
    "2026-11-02": 3,  # E5 E9 E10 (E9 at midnight)
    "2026-11-03": 2,  # E6 E11
    "2026-10-28": 1,
    "2026-10-29": 1,
    "2026-10-30": 1,
    "2026-11-04": 1,
    "2026-11-05": 1,
}
BY_USER_AND_APP = [
    ("alice", "deepseek", 2),  # E1 E3
    ("bob", "chatgpt", 2),  # E2 E13
    ("bob", "deepseek", 2),  # E4 E11
    ("10.0.0.9", "deepseek", 1),  # E9
    ("10.0.0.9", "qwen", 1),  # E7
    ("alice", "chatgpt", 1),  # E10
    ("alice", "qwen", 1),  # E6
    ("carol", "chatgpt", 1),  # E5
    ("carol", "deepseek", 1),  # E8
    ("carol", "qwen", 1),  # E12
]
SKIPPED = (
    "5 lines skipped: 1 not JSON (gw-1/events.jsonl:3), 1 not UTF-8 (gw-2/events.jsonl:5), "
    "1 not a JSON object (gw-1/events.jsonl:7), 1 truncated last line (gw-1/events.jsonl:8), "
    "1 newer format (gw-1/events.jsonl:5)"
)


def counts(summary_groups: list, key: str) -> dict:
    return {group.key[key]: group.count for group in summary_groups}


def summary_of(
    by: tuple[str, ...] = ("rule",), event_filter: EventFilter | None = None, **period: str
) -> tuple[Summary, EventReader]:
    reader = read_events(ALL, since=period.get("previous_since") or period.get("since"), until=period.get("until"))
    return summarise(filter_events(reader, event_filter or EventFilter()), by, **period), reader


# --- reading --------------------------------------------------------------------------------


def test_reads_every_file_in_rotation_order() -> None:
    reader = read_events(ALL)
    ids = [int(event.data["id"], 16) for event in reader]
    assert ids == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]  # gw-1 .1.gz, gw-1, gw-2 .1, gw-2
    assert [Path(path).relative_to(LOGS).as_posix() for path in reader.files] == [
        "gw-1/events.jsonl.1.gz",
        "gw-1/events.jsonl",
        "gw-2/events.jsonl.1",
        "gw-2/events.jsonl",
    ]


def test_events_know_where_they_came_from() -> None:
    events = {int(event.data["id"], 16): event for event in read_events(ALL)}
    assert (Path(events[6].file).name, events[6].line) == ("events.jsonl", 6)
    assert (Path(events[8].file).name, events[8].line) == ("events.jsonl.1", 2)  # gzip found by its magic bytes
    assert events[8].ts == "2026-11-01T23:59:59.999Z"


def test_skip_report(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(LOGS)
    reader = read_events(["*/events.jsonl*"])
    assert sum(1 for _ in reader) == TOTAL
    assert str(reader.skipped) == SKIPPED
    assert reader.skipped.total == 5
    assert reader.skipped.as_dict()["reasons"]["not-json"] == {
        "label": "not JSON",
        "count": 1,
        "first": ["gw-1/events.jsonl:3"],
    }


def test_skip_report_keeps_the_first_three_places(tmp_path: Path) -> None:
    log = tmp_path / "e.jsonl"
    log.write_text("x\n" * 5 + "[]\n", encoding="utf-8")
    reader = read_events([str(log)])
    assert list(reader) == []
    assert (
        str(reader.skipped)
        == f"6 lines skipped: 5 not JSON ({log}:1, {log}:2, {log}:3, …), 1 not a JSON object ({log}:6)"
    )


def test_one_line_skipped_is_singular(tmp_path: Path) -> None:
    log = tmp_path / "e.jsonl"
    log.write_text("{}\n", encoding="utf-8")  # an object that is not an event
    reader = read_events([str(log)])
    assert list(reader) == []
    assert str(reader.skipped) == f"1 line skipped: 1 invalid event ({log}:1)"


def decision(n: int, ts: str, **fields: object) -> dict[str, object]:
    event: dict[str, object] = {"v": 1, "id": f"{n:032x}", "ts": ts, "event": "decision", "action": "block"}
    event.update(fields)
    return event


def write_events(path: Path, events: list[dict[str, object]], *, compress: bool = False) -> Path:
    data = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events).encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_unknown_fields_and_missing_version_are_fine(tmp_path: Path) -> None:
    log = tmp_path / "e.jsonl"
    events = [decision(1, "2026-11-01T00:00:00.000Z", colour="red", nested={"ts": "x"})]
    events.append({"id": "2", "ts": "2026-11-01T00:00:01.000Z", "event": "decision"})  # no "v": the first format
    write_events(log, events)
    reader = read_events([str(log)])
    assert [event.data["id"] for event in reader] == ["00000000000000000000000000000001", "2"]
    assert not reader.skipped


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"v":"1","ts":"2026-11-01T00:00:00.000Z","event":"decision"}', "invalid"),
        (b'{"v":true,"ts":"2026-11-01T00:00:00.000Z","event":"decision"}', "invalid"),
        (b'{"v":1,"ts":"yesterday","event":"decision"}', "invalid"),
        (b'{"v":1,"event":"decision"}', "invalid"),
        (b'{"v":1,"ts":"2026-11-01T00:00:00.000Z"}', "invalid"),
        (b'{"v":3,"ts":"2026-11-01T00:00:00.000Z","event":"decision"}', "newer-format"),
        (b'"just a string"', "not-object"),
        (b"null", "not-object"),
        (b"\xc3\x28", "not-utf8"),
        (b'{"v":1,"ts":"2026', "not-json"),
        (b'{"v":1,"ts":"2026-11-01T00:00:00.000Z","event":"decision"} and more', "not-json"),
        (b'{"v":1,"ts":"2026-02-30T00:00:00.000Z","event":"decision"}', "invalid"),
        (b"1" * 5000, "not-json"),  # a number too large to convert
    ],
)
def test_bad_lines_are_skipped_by_reason(tmp_path: Path, line: bytes, reason: str) -> None:
    log = tmp_path / "e.jsonl"
    log.write_bytes(line + b"\n" + json.dumps(decision(1, "2026-11-01T00:00:00.000Z")).encode() + b"\n")
    reader = read_events([str(log)])
    assert len(list(reader)) == 1
    assert reader.skipped.counts == {reason: 1}
    assert reader.skipped.locations == {reason: [f"{log}:1"]}


def test_other_event_kinds_are_passed_over_silently(tmp_path: Path) -> None:
    log = tmp_path / "e.jsonl"
    write_events(log, [{"v": 1, "ts": "2026-11-01T00:00:00.000Z", "event": kind} for kind in ("policy_loaded", "x")])
    reader = read_events([str(log)])
    assert list(reader) == []
    assert not reader.skipped


def test_a_complete_last_line_without_newline_counts(tmp_path: Path) -> None:
    log = tmp_path / "e.jsonl"
    log.write_text(json.dumps(decision(1, "2026-11-01T00:00:00.000Z")), encoding="utf-8")
    assert len(list(read_events([str(log)]))) == 1


def test_crlf_and_blank_lines_are_fine(tmp_path: Path) -> None:
    log = tmp_path / "e.jsonl"
    event = json.dumps(decision(1, "2026-11-01T00:00:00.000Z"))
    log.write_bytes(f"{event}\r\n\r\n  \n{event}\r\n".encode())
    reader = read_events([str(log)])
    assert [event.line for event in reader] == [1, 4]
    assert not reader.skipped


def test_a_line_too_long_is_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    log = tmp_path / "e.jsonl"
    good = json.dumps(decision(1, "2026-11-01T00:00:00.000Z")).encode()
    log.write_bytes(b"x" * (3 << 20) + b"\n" + good + b"\n")
    reader = read_events([str(log)])
    assert [event.line for event in reader] == [2]
    assert reader.skipped.counts == {"too-long": 1}


def test_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    events = [decision(n, f"2026-11-0{n}T00:00:00.000Z") for n in (1, 2)]
    plain_named_gz = write_events(tmp_path / "a.jsonl.gz", events)  # not compressed, despite its name
    gzip_named_plain = write_events(tmp_path / "b.jsonl", events, compress=True)
    for path in (plain_named_gz, gzip_named_plain):
        reader = read_events([str(path)])
        assert [event.ts for event in reader] == ["2026-11-01T00:00:00.000Z", "2026-11-02T00:00:00.000Z"]
        assert not reader.skipped


def test_truncated_gzip_keeps_what_it_could_read(tmp_path: Path) -> None:
    # Two gzip members: the first whole (3 events), the second cut short.
    whole = "".join(json.dumps(decision(n, "2026-11-01T00:00:00.000Z")) + "\n" for n in (1, 2, 3)).encode()
    second = gzip.compress(json.dumps(decision(4, "2026-11-01T00:00:00.000Z")).encode() * 50 + b"\n")
    log = tmp_path / "e.jsonl.1.gz"
    log.write_bytes(gzip.compress(whole) + second[: len(second) // 2])
    reader = read_events([str(log)])
    assert [event.line for event in reader] == [1, 2, 3]
    assert reader.skipped.counts == {"bad-gzip": 1}
    assert reader.skipped.locations == {"bad-gzip": [f"{log}:4"]}


def test_corrupt_gzip_is_reported_not_raised(tmp_path: Path) -> None:
    log = tmp_path / "e.jsonl.2.gz"
    data = gzip.compress(b"x\n" * 1000)
    log.write_bytes(data[:12] + bytes(b ^ 0x55 for b in data[12:]))
    reader = read_events([str(log)])
    assert list(reader) == []
    assert reader.skipped.counts == {"bad-gzip": 1}


def test_missing_file_names_it() -> None:
    with pytest.raises(EventLogError, match=r"cannot read event log '/nonexistent/e.jsonl': No such file or directory"):
        read_events(["/nonexistent/e.jsonl"])


def test_glob_matching_nothing_names_it(tmp_path: Path) -> None:
    with pytest.raises(EventLogError, match=r"no event log matches '.*/nothing-\*\.jsonl'"):
        read_events([str(tmp_path / "nothing-*.jsonl")])


def test_a_directory_is_not_a_log(tmp_path: Path) -> None:
    with pytest.raises(EventLogError, match=r"cannot read event log '.*': it is a directory"):
        read_events([str(tmp_path)])


def test_a_file_named_twice_is_read_once() -> None:
    reader = read_events([str(LOGS / "gw-2" / "events.jsonl"), *ALL])
    assert sum(1 for _ in reader) == TOTAL


def test_current_files_are_the_unrotated_plain_ones() -> None:
    assert [Path(p).relative_to(LOGS).as_posix() for p in read_events(ALL).current_files] == [
        "gw-1/events.jsonl",
        "gw-2/events.jsonl",
    ]
    # Named literally, a file is followed, unless it is compressed.
    assert read_events([str(LOGS / "gw-1" / "events.jsonl.1.gz")]).current_files == []
    assert read_events([str(LOGS / "gw-2" / "events.jsonl.1")]).current_files == []


def test_rotated_files_sort_oldest_first() -> None:
    names = [
        "events.jsonl",
        "events.jsonl.1",
        "events.jsonl.10.gz",
        "events.jsonl.2.gz",
        "other.jsonl-20261102.gz",
        "other.jsonl-20261101.gz",
        "other.jsonl",
        "gw-1.jsonl",
    ]
    assert sorted(names, key=rotation_key) == [
        "events.jsonl.10.gz",
        "events.jsonl.2.gz",
        "events.jsonl.1",
        "events.jsonl",
        "gw-1.jsonl",
        "other.jsonl-20261101.gz",
        "other.jsonl-20261102.gz",
        "other.jsonl",
    ]


# --- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-01T10:00:00.123Z", "2026-11-01T10:00:00.123Z"),
        ("2026-11-01T10:00:00Z", "2026-11-01T10:00:00.000Z"),
        ("2026-11-01T12:00:00.123456+02:00", "2026-11-01T10:00:00.123Z"),
        ("2026-11-01 10:00:00", "2026-11-01T10:00:00.000Z"),  # naive: UTC
        ("2026-11-01", "2026-11-01T00:00:00.000Z"),
        ("2026-02-29T00:00:00.000Z", None),  # not a leap year
        ("2028-02-29T00:00:00.000Z", "2028-02-29T00:00:00.000Z"),
        ("2026-13-01T00:00:00.000Z", None),
        ("2026-11-01T23:59:60.000Z", None),
        ("\uff12\uff10\uff12\uff16-11-01T00:00:00.000Z", None),  # full-width digits
        ("not a time", None),
        (1762000000, None),
        (None, None),
    ],
)
def test_canonical_ts(value: object, expected: str | None) -> None:
    assert canonical_ts(value) == expected


def test_format_ts_keeps_four_digit_years() -> None:
    assert format_ts(datetime.datetime(5, 1, 2, 3, 4, 5, 678999, tzinfo=datetime.UTC)) == "0005-01-02T03:04:05.678Z"


NOW = datetime.datetime(2026, 11, 8, 12, 30, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", "2026-11-01T12:30:00.000Z"),
        ("24h", "2026-11-07T12:30:00.000Z"),
        ("30m", "2026-11-08T12:00:00.000Z"),
        ("2w", "2026-10-25T12:30:00.000Z"),
        ("90s", "2026-11-08T12:28:30.000Z"),
        ("now", "2026-11-08T12:30:00.000Z"),
        ("2026-11-01", "2026-11-01T00:00:00.000Z"),
        ("2026-11-01T10:00:00Z", "2026-11-01T10:00:00.000Z"),
        ("2026-11-01T10:00:00+01:00", "2026-11-01T09:00:00.000Z"),
        ("2026-11-01T10:00", "2026-11-01T10:00:00.000Z"),
    ],
)
def test_parse_time(text: str, expected: str) -> None:
    assert format_ts(parse_time(text, NOW)) == expected


@pytest.mark.parametrize("text", ["7", "d7", "last week", "2026-13-01", ""])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a time: use a date or time .* or a duration before now"):
        parse_time(text, NOW)


# --- summaries ------------------------------------------------------------------------------


def test_summary_by_rule() -> None:
    summary, reader = summary_of()
    assert summary.total == TOTAL
    assert (summary.overall.users, summary.overall.first, summary.overall.last) == (USERS, FIRST, LAST)
    assert [(g.key["rule"], g.count, g.users, g.first, g.last) for g in summary.groups] == BY_RULE
    assert reader.skipped.total == 5


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("action", BY_ACTION),
        ("user", BY_USER),
        ("group", BY_GROUP),
        ("app", BY_APP),
        ("vendor", BY_VENDOR),
        ("host", BY_HOST),
        ("directive", BY_DIRECTIVE),
        ("day", BY_DAY),
    ],
)
def test_summary_by_each_key(key: str, expected: dict) -> None:
    summary, _ = summary_of((key,))
    assert summary.total == TOTAL
    assert [(g.key[key], g.count) for g in summary.groups] == list(expected.items())  # order: count, then key


def test_summary_by_hour() -> None:
    summary, _ = summary_of(("hour",), since="2026-11-01T00:00:00.000Z", until="2026-11-02T00:00:00.000Z")
    assert counts(summary.groups, "hour") == {"2026-11-01T08:00Z": 1, "2026-11-01T10:00Z": 1, "2026-11-01T23:00Z": 1}


def test_summary_by_user_and_app() -> None:
    summary, _ = summary_of(("user", "app"))
    assert [(g.key["user"], g.key["app"], g.count) for g in summary.groups] == BY_USER_AND_APP
    assert sum(g.count for g in summary.groups) == TOTAL


def test_summary_by_group_counts_users() -> None:
    summary, _ = summary_of(("group",))
    assert {g.key["group"]: g.users for g in summary.groups} == {"eng": 2, "admins": 1, "finance": 1, None: 1}


@pytest.mark.parametrize(
    ("event_filter", "total"),
    [
        (EventFilter(actions=frozenset({"block"})), 9),
        (EventFilter(users=frozenset({"alice"})), 4),
        (EventFilter(users=frozenset({"10.0.0.9"})), 2),  # by client address
        (EventFilter(users=frozenset({"10.0.0.1"})), 4),  # alice's address
        (EventFilter(groups=frozenset({"eng"})), 8),
        (EventFilter(groups=frozenset({"finance", "admins"})), 7),  # carol's 3 + alice's 4
        (EventFilter(apps=frozenset({"qwen"})), 3),
        (EventFilter(vendors=frozenset({"openai"})), 4),
        (EventFilter(rules=frozenset({"prc-genai", "ai-monitor"})), 7),
        (EventFilter(directives=frozenset({"USN-2025-01-24-DEEPSEEK"})), 6),
        (EventFilter(users=frozenset({"bob"}), actions=frozenset({"monitor"})), 2),  # E2 E13
        (EventFilter(users=frozenset({"nobody"})), 0),
    ],
)
def test_filters(event_filter: EventFilter, total: int) -> None:
    summary, _ = summary_of(event_filter=event_filter)
    assert summary.total == total


def test_time_window_and_previous_period() -> None:
    # 2026-11-01 to 2026-11-03: E3 E4 E8 E5 E9 E10. The 2 days before (10-30, 10-31): E2 only.
    summary, _ = summary_of(
        since="2026-11-01T00:00:00.000Z", until="2026-11-03T00:00:00.000Z", previous_since="2026-10-30T00:00:00.000Z"
    )
    assert (summary.total, summary.overall.previous, summary.overall.change) == (6, 1, 5)
    assert summary.overall.change_percent == 500.0
    assert [(g.key["rule"], g.count, g.previous, g.change, g.change_percent) for g in summary.groups] == [
        ("deepseek-any-capacity", 4, 0, 4, None),  # E3 E4 E8 E9; none before
        ("ai-monitor", 2, 1, 1, 100.0),  # E5 E10; E2 before
    ]
    assert summary.days == {"2026-11-01": 3, "2026-11-02": 3}


def test_until_is_exclusive_and_since_inclusive() -> None:
    # E9 is at exactly 2026-11-02T00:00:00.000Z, E8 one millisecond earlier.
    summary, _ = summary_of(since="2026-11-01T23:59:59.999Z", until="2026-11-02T00:00:00.000Z")
    assert [(g.key["rule"], g.count, g.first) for g in summary.groups] == [
        ("deepseek-any-capacity", 1, "2026-11-01T23:59:59.999Z")  # E8 only
    ]


def test_a_group_seen_only_before_the_period_is_not_a_row() -> None:
    # 2026-11-05 alone: E13 (ai-monitor). The day before: E12 (prc-genai).
    summary, _ = summary_of(
        since="2026-11-05T00:00:00.000Z", until="2026-11-06T00:00:00.000Z", previous_since="2026-11-04T00:00:00.000Z"
    )
    assert [(g.key["rule"], g.count, g.previous) for g in summary.groups] == [("ai-monitor", 1, 0)]
    assert (summary.total, summary.overall.previous) == (1, 1)


def test_summary_as_dict() -> None:
    summary, _ = summary_of(("user", "app"))
    data = summary.as_dict()
    assert list(data)[:5] == ["total", "since", "until", "by", "groups"]
    assert data["groups"][0] == {
        "user": "alice",
        "app": "deepseek",
        "count": 2,
        "users": 1,
        "first": "2026-10-28T09:00:00.000Z",
        "last": "2026-11-01T08:15:00.000Z",
        "previous": None,
        "change": None,
        "change_percent": None,
    }


def test_unknown_by_key() -> None:
    with pytest.raises(ValueError, match=r"cannot group by colour \(valid: user, group, host"):
        summarise([], ("colour",))


def test_hostile_field_types_do_not_crash(tmp_path: Path) -> None:
    log = write_events(
        tmp_path / "e.jsonl",
        [
            decision(1, "2026-11-01T00:00:00.000Z", user=["a", "b"], groups="solo", app={"x": 1}, rule=7),
            decision(2, "2026-11-01T00:00:00.000Z", user=None, client_ip=None, groups=[None, "g", "g"], rule=None),
        ],
    )
    summary = summarise(read_events([str(log)]), ("user", "group", "app", "rule"))
    assert [(g.key, g.count) for g in summary.groups] == [
        ({"user": '["a","b"]', "group": "solo", "app": '{"x":1}', "rule": "7"}, 1),
        ({"user": None, "group": "g", "app": None, "rule": None}, 1),
    ]


def test_sparkline_and_change_text() -> None:
    assert sparkline({"2026-11-01": 1, "2026-11-03": 8, "2026-11-04": 4}) == ("2026-11-01", "2026-11-04", "▁·█▄")
    assert sparkline({}) == ("", "", "")
    assert sparkline({"2026-11-31": 5, "2026-11-02": 2}) == ("2026-11-02", "2026-11-02", "█")  # from a forged line
    assert sparkline({"2026-01-01": 1, "2026-12-31": 1}, width=3) == ("2026-12-29", "2026-12-31", "··█")
    assert [format_change(*pair) for pair in [(6, 4), (2, 5), (3, 0), (0, 0), (4, 4), (4, None)]] == [
        "+2 (+50%)",
        "-3 (-60%)",
        "+3 (new)",
        "0",
        "0 (0%)",
        "",
    ]


# --- time filters on the reader ---------------------------------------------------------------


def test_reader_time_bounds_skip_out_of_range_lines_unparsed(tmp_path: Path) -> None:
    # Lines laid out by the writer are judged by their timestamp before their JSON is parsed:
    # a broken line outside the period is not examined (and not reported).
    good = json.dumps(decision(1, "2026-11-02T00:00:00.000Z"), separators=(",", ":"))
    early_broken = json.dumps(decision(2, "2026-10-01T00:00:00.000Z"), separators=(",", ":"))[:-5]
    log = tmp_path / "e.jsonl"
    log.write_text(f"{early_broken}\n{good}\n", encoding="utf-8")
    bounded = read_events([str(log)], since="2026-11-01T00:00:00.000Z")
    assert [event.line for event in bounded] == [2]
    assert not bounded.skipped
    unbounded = read_events([str(log)])
    assert [event.line for event in unbounded] == [2]
    assert unbounded.skipped.counts == {"not-json": 1}


# --- following --------------------------------------------------------------------------------


def append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write("".join(lines))


def line_of(n: int) -> str:
    return json.dumps(decision(n, f"2026-11-01T00:00:{n:02d}.000Z"), separators=(",", ":")) + "\n"


def ids(events: object) -> list[int]:
    return [int(event.data["id"], 16) for event in events]  # type: ignore[attr-defined]


def test_follower_reads_appended_lines_across_rotation_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    append(log, line_of(1), line_of(2))
    skipped = SkipReport()
    with Follower([str(log)], skipped) as follower:
        assert ids(follower.poll()) == [1, 2]  # what the file held
        assert ids(follower.poll()) == []
        append(log, line_of(3))
        assert ids(follower.poll()) == [3]
        half = line_of(4)
        append(log, half[:30])  # a line being written waits for its end
        assert ids(follower.poll()) == []
        append(log, half[30:], line_of(5))
        assert ids(follower.poll()) == [4, 5]
        # Rotation: the writer's last line lands in the old file after the rename; a new file starts.
        os.rename(log, tmp_path / "events.jsonl.1")
        assert ids(follower.poll()) == []  # no new file yet
        append(tmp_path / "events.jsonl.1", line_of(6))
        append(log, line_of(7), line_of(8))
        assert ids(follower.poll()) == [6, 7, 8]
        # Truncation in place (copytruncate).
        log.write_text(line_of(9), encoding="utf-8")
        assert ids(follower.poll()) == [9]
    assert not skipped


def test_follower_waits_for_a_file_that_is_not_there_yet(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    with Follower([str(log)], SkipReport()) as follower:
        assert ids(follower.poll()) == []
        append(log, line_of(1))
        assert ids(follower.poll()) == [1]


def test_follower_counts_a_line_cut_by_rotation(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    append(log, line_of(1), line_of(2)[:20])
    skipped = SkipReport()
    with Follower([str(log)], skipped) as follower:
        assert ids(follower.poll()) == [1]
        os.rename(log, tmp_path / "old.jsonl")
        append(log, line_of(3))
        assert ids(follower.poll()) == [3]
    assert skipped.counts == {"truncated": 1}
    assert skipped.locations == {"truncated": [f"{log}:2"]}
