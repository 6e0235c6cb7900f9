"""The compliance report, checked against numbers counted by hand.

tests/fixtures/report-events.jsonl, line by line (policy hashes P1 = 1111…, P2 = 2222…):

    line  ts (UTC)          event          action   user / client          app/vendor          directive  policy
    1     11-01 00:00       policy_loaded  -        -                      -                   -          P1
    2     11-01 09:00  D1   decision       block    alice                  deepseek/deepseek   USN-1      P1
    3     11-01 10:00  D2   decision       block    alice                  deepseek/deepseek   USN-1      P1
    4     11-01 11:00  D3   decision       monitor  bob                    chatgpt/openai      -          P1
    5     11-01 12:00  D4   decision       block    <script>alert(1)</script> deepseek/deepseek USN-1   P1
    6     not JSON (skipped, reported)
    7     11-03 08:00  D5   decision       warn     bob                    claude/anthropic    -          P1
    8     11-03 08:00  D6   decision       proceed  bob                    claude/anthropic    -          P1
    9     11-03 09:00  D7   decision       warn     carol                  claude/anthropic    -          P1
    10    11-03 10:00       telemetry      (a kind the report does not read: ignored entirely)
    11    11-03 11:00  V1   evasion        block    alice  sni-host-mismatch  qwen/alibaba     ORG-PRC    P1
    12    11-03 11:00  D8   decision       block    alice                  qwen/alibaba        ORG-PRC    P1
    13    11-04 00:00       policy_loaded  -        -                      -                   -          P2
    14    11-04 07:00  D9   decision       block    - (10.9.9.9)           deepseek/deepseek   USN-1      P2
    15    11-04 08:00  V2   evasion        allow    dave   ip-target-with-ai-sni  deepseek     USN-1      P2
    16    11-04 09:00  V3   evasion        allow    dave   dns-over-https     chatgpt/openai   -          P2
    17    11-04 10:00  D10  decision       block    mallory (host <img …>)  deepseek/deepseek  USN-1      P2

By hand: 10 attempts (D1-D10); actions block 6 (D1 D2 D4 D8 D9 D10), warn 2, monitor 1,
proceed 1; 6 distinct users (alice, bob, <script>…, carol, 10.9.9.9, mallory); per day
11-01: 4, 11-02: 0, 11-03: 4, 11-04: 2. Apps deepseek 5, claude 3, chatgpt 1, qwen 1;
vendors deepseek 5, anthropic 3, alibaba 1, openai 1; directives USN-1 5 (4 users), ORG-PRC 1.
Evasion 3: one of each kind; dave 2, alice 1. Policy versions: P1 on lines 1-12 but not 6
and 10 (10 events, 11-01 00:00 to 11-03 11:00), P2 on lines 13-17 (5 events, 11-04 00:00 to
11-04 10:00).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from aipolicy.analytics._report import (
    MAX_CHART_DAYS,
    MAX_LISTED,
    NOT_CHECKED,
    REPORT_KINDS,
    Report,
    Row,
    Verification,
    bar_chart,
    collect_report,
    day_chart,
    render_report,
)
from aipolicy.analytics._summary import EventFilter
from aipolicy.eventlog._reader import read_events
from tests.aipolicy.test_summary import ALL, TOTAL, USERS

FIXTURE = str(Path(__file__).resolve().parents[1] / "fixtures" / "report-events.jsonl")
P1, P2 = "1111111111111111", "2222222222222222"
XSS_USER = "<script>alert(1)</script>"


def report_of(paths: list[str], event_filter: EventFilter | None = None, **options: object) -> Report:
    reader = read_events(paths, kinds=REPORT_KINDS)
    report = collect_report(reader, event_filter, **options)  # type: ignore[arg-type]
    report.skipped = reader.skipped.total
    return report


def names(rows: list[Row]) -> list[tuple[str | None, int]]:
    return [(row.name, row.count) for row in rows]


def test_totals_counted_by_hand() -> None:
    report = report_of([FIXTURE])
    assert (report.total, report.users, report.skipped) == (10, 6, 1)
    assert (report.first, report.last) == ("2026-11-01T09:00:00.000Z", "2026-11-04T10:00:00.000Z")
    assert report.actions == {"block": 6, "warn": 2, "monitor": 1, "proceed": 1}
    assert report.days == {"2026-11-01": 4, "2026-11-03": 4, "2026-11-04": 2}
    assert (report.warned, report.proceeded) == (2, 1)


def test_tops_counted_by_hand() -> None:
    report = report_of([FIXTURE])
    assert names(report.top_users) == [
        ("alice", 3), ("bob", 3), ("10.9.9.9", 1), (XSS_USER, 1), ("carol", 1), ("mallory", 1)
    ]  # fmt: skip
    assert names(report.top_apps) == [("deepseek", 5), ("claude", 3), ("chatgpt", 1), ("qwen", 1)]
    assert names(report.top_vendors) == [("deepseek", 5), ("anthropic", 3), ("alibaba", 1), ("openai", 1)]
    assert [(row.name, row.count, row.users) for row in report.directives] == [("USN-1", 5, 4), ("ORG-PRC", 1, 1)]


def test_top_n_cuts_the_tables() -> None:
    report = report_of([FIXTURE], top=2)
    assert names(report.top_users) == [("alice", 3), ("bob", 3)]
    assert len(report.directives) == 2  # every directive, whatever --top


def test_forged_directives_are_listed_up_to_a_bound(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    line = '{{"v":1,"ts":"2026-11-01T00:00:00.000Z","event":"decision","action":"block","directive":"d{}"}}\n'
    log.write_text("".join(line.format(number) for number in range(MAX_LISTED + 5)))
    report = report_of([str(log)])
    assert (len(report.directives), report.directive_count) == (MAX_LISTED, MAX_LISTED + 5)
    assert "5 more directive(s) with fewer attempts are not listed." in render_report(report)


def test_evasion_counted_apart_from_attempts() -> None:
    report = report_of([FIXTURE])
    assert report.evasion_total == 3
    assert names(report.evasion_kinds) == [
        ("dns-over-https", 1),
        ("ip-target-with-ai-sni", 1),
        ("sni-host-mismatch", 1),
    ]
    assert names(report.evasion_users) == [("dave", 2), ("alice", 1)]


def test_policy_versions_with_first_and_last_seen() -> None:
    report = report_of([FIXTURE])
    assert [(p.hash, p.events, p.first, p.last) for p in report.policies] == [
        (P1, 10, "2026-11-01T00:00:00.000Z", "2026-11-03T11:00:00.000Z"),
        (P2, 5, "2026-11-04T00:00:00.000Z", "2026-11-04T10:00:00.000Z"),
    ]


def test_filter_keeps_attempts_but_not_policy_versions() -> None:
    report = report_of([FIXTURE], EventFilter(users=frozenset({"dave", "alice"})))
    assert (report.total, report.evasion_total) == (3, 3)  # alice's D1 D2 D8; V1 (alice), V2 V3 (dave)
    assert [p.events for p in report.policies] == [10, 5]  # the versions in force, whatever the filter


def test_period_bounds_every_count() -> None:
    reader = read_events([FIXTURE], since="2026-11-03T00:00:00.000Z", kinds=REPORT_KINDS)
    report = collect_report(reader)
    assert (report.total, report.evasion_total, report.days) == (6, 3, {"2026-11-03": 4, "2026-11-04": 2})
    assert [(p.hash, p.events) for p in report.policies] == [(P1, 5), (P2, 5)]


def test_matches_the_summary_fixture() -> None:
    report = report_of(ALL)
    assert (report.total, report.users, report.skipped, report.evasion_total) == (TOTAL, USERS, 5, 0)
    # 13 decisions, the policy_loaded and the policy_rejected event: one version throughout.
    assert [(p.hash, p.events, p.first, p.last) for p in report.policies] == [
        ("bf02112e26ea43ef", 15, "2026-10-28T09:00:00.000Z", "2026-11-05T19:00:00.000Z")
    ]


def test_reader_yields_only_decisions_unless_asked() -> None:
    kinds = {event.data["event"] for event in read_events([FIXTURE])}
    assert kinds == {"decision"}
    kinds = {event.data["event"] for event in read_events([FIXTURE], kinds=REPORT_KINDS)}
    assert kinds == {"decision", "evasion", "policy_loaded"}


# --- the page -----------------------------------------------------------------------------------


def page_text(page: str) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_page_shows_the_hand_counted_figures() -> None:
    page = render_report(report_of([FIXTURE]))
    for anchor, value in (
        ("total-attempts", "10"),
        ("total-blocked", "6"),
        ("total-users", "6"),
        ("total-evasion", "3"),
        ("total-warned", "2"),
        ("total-skipped", "1"),
        ("warned", "2"),
        ("proceeded", "1"),
    ):
        assert f'id="{anchor}">{value}<' in page, anchor
    text = page_text(page)
    assert "deepseek 5 50.0% 4" in text  # top apps: name, attempts, share, users
    assert "USN-1 5 4 2026-11-01 09:00:00 2026-11-04 10:00:00" in text
    assert f"{P1} 10 2026-11-01 00:00:00 2026-11-03 11:00:00" in text
    assert f"{P2} 5 2026-11-04 00:00:00 2026-11-04 10:00:00" in text
    assert "proceeded after a warning: 1 (50.0% of warnings)" in text
    assert "Not checked" in text


def test_page_is_self_contained() -> None:
    page = render_report(report_of([FIXTURE]))
    assert "<script" not in page.lower()
    assert not re.search(r"""(?:src|href)\s*=|url\(|@import""", page, re.IGNORECASE)
    assert "default-src 'none'" in page
    assert "@media print" in page


def test_hostile_values_are_escaped() -> None:
    report = report_of([FIXTURE])
    report.top_apps.append(Row('"><svg onload=alert(3)>', 1, 1, "2026-11-01T00:00:00.000Z", "x"))
    report.directive_titles = {"USN-1": "</title><script>alert(4)</script>"}
    report.sources = ("<b>log</b>",)
    report.filters = ("user = <i>x</i>",)
    page = render_report(report, Verification("failed", "<script>bad()</script>", ("a.jsonl:3: <b>gap</b>",)))
    assert "<script" not in page and "<svg onload" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the user, as text
    assert "&quot;&gt;&lt;svg onload=alert(3)&gt;" in page


def test_control_and_bidi_characters_are_removed() -> None:
    report = Report(top_users=[Row("ev\u202eil\x1b[31m", 1, 1, "", "")], total=1)
    page = render_report(report)
    assert "\u202e" not in page and "\x1b" not in page and "evil[31m" in page


def test_verification_section() -> None:
    assert 'class="status status-not-checked">Not checked<' in render_report(Report(), NOT_CHECKED)
    failed = render_report(Report(), Verification("failed", "chain broken", ("events.jsonl:120: hash mismatch",)))
    assert 'class="status status-failed">FAILED<' in failed and "events.jsonl:120: hash mismatch" in failed
    odd = render_report(Report(), Verification("bogus", "?"))
    assert "status-not-checked" in odd  # an unknown status is never shown as verified


def test_empty_report() -> None:
    text = page_text(render_report(Report()))
    assert "No attempts in this period." in text and "No evasion attempts recorded." in text
    assert "No policy hash recorded." in text


def test_day_chart_draws_days_without_attempts() -> None:
    svg = day_chart({"2026-11-01": 4, "2026-11-03": 2})
    assert svg.count('<rect class="bar"') == 3
    assert "<title>2026-11-02: 0</title>" in svg and "<title>2026-11-01: 4</title>" in svg


def test_day_chart_is_bounded_for_forged_dates() -> None:
    svg = day_chart({"0001-01-01": 1, "2026-11-01": 2, "2026-02-31": 9})
    assert svg.count('<rect class="bar"') == MAX_CHART_DAYS
    assert "1 earlier day(s) with attempts are not drawn" in svg


def test_bar_chart_writes_names_and_counts() -> None:
    svg = bar_chart([Row("alice", 3, 1, "", ""), Row(None, 1, 1, "", "")], "Top users")
    assert ">alice</text>" in svg and ">3</text>" in svg and ">(none)</text>" in svg


def test_as_dict_is_json() -> None:
    data = json.loads(json.dumps(report_of([FIXTURE]).as_dict()))
    assert data["total"] == 10 and data["policies"][1]["hash"] == P2


@pytest.mark.parametrize("count", [0, 1, 40])
def test_day_chart_sizes(count: int) -> None:
    days = {f"2026-10-{day:02d}": day for day in range(1, 1 + min(count, 31))}
    svg = day_chart(days)
    assert svg.count('<rect class="bar"') == min(count, 31)
