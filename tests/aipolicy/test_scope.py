"""Identity and scoping: groups, named networks, time windows, rules for some users only, and
exceptions that lift a rule until a date."""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path

import pytest

from aipolicy import PolicyError, RequestFacts, decide, load_policy

FIXTURE_CATALOG = Path(__file__).resolve().parents[1] / "fixtures" / "catalog.yaml"
NEXT_YEAR = datetime.date.today().year + 1


def write_policy(directory: Path, body: str) -> Path:
    path = directory / "policy.yaml"
    path.write_text(f"version: 1\ncatalog: {FIXTURE_CATALOG}\n" + textwrap.dedent(body))
    return path


POLICY = f"""
groups:
  research: [Alice, bob]
  contractors: {{file: contractors.txt}}
networks:
  lab: [10.20.0.0/16, "2001:db8:20::/48"]
rules:
  - id: contractors-no-genai
    action: block
    match: {{categories: [genai]}}
    when: {{groups: [contractors]}}
  - id: deepseek
    action: block
    match: {{vendors: [deepseek]}}
  - id: lab-only-hf
    action: block
    match: {{domains: [huggingface.co]}}
    when: {{networks: [lab]}}
  - id: office-hours
    action: monitor
    match: {{apps: [chatgpt]}}
    when:
      time: {{days: mon-fri, hours: "09:00-17:00", timezone: Europe/Berlin}}
exceptions:
  - rule: deepseek
    groups: [research]
    until: {NEXT_YEAR}-06-30
    ticket: SEC-1
    reason: Analysis of the DeepSeek app
  - rule: deepseek
    users: [carol]
    until: 2020-01-01
    ticket: SEC-OLD
default: allow
"""


@pytest.fixture
def policy(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "contractors.txt").write_text("# from HR\ndave\nERIN  # agency\n")
    return load_policy(write_policy(tmp_path, POLICY))


def ask(policy, host: str, *, user: str = "", groups: tuple[str, ...] = (), ip: str = "192.0.2.1", when=None):  # type: ignore[no-untyped-def]
    return decide(policy, RequestFacts(hosts=(host,), path="/", user=user, groups=groups, client_ip=ip, time=when))


def test_groups_from_the_policy_and_from_a_file(policy) -> None:  # type: ignore[no-untyped-def]
    assert policy.groups_of("ALICE") == frozenset({"research"})
    assert policy.groups_of("erin") == frozenset({"contractors"})
    assert ask(policy, "chatgpt.com", user="dave").rule == "contractors-no-genai"
    assert ask(policy, "chatgpt.com", user="eve").action in ("allow", "monitor")
    assert (
        ask(policy, "chatgpt.com", user="eve", groups=("Contractors",)).rule == "contractors-no-genai"
    )  # from a header


def test_exception_lifts_a_rule_for_its_group_and_is_recorded(policy) -> None:  # type: ignore[no-untyped-def]
    excused = ask(policy, "chat.deepseek.com", user="bob")
    assert (excused.action, excused.rule) == ("allow", "default")
    assert excused.exception == {
        "id": "SEC-1",
        "rule": "deepseek",
        "ticket": "SEC-1",
        "ends": f"{NEXT_YEAR}-07-01T00:00:00+00:00",
    }
    assert ask(policy, "chat.deepseek.com", user="mallory").rule == "deepseek"  # not cached under the host
    assert ask(policy, "chat.deepseek.com", user="bob").exception is not None


def test_expired_exception_does_not_apply(policy) -> None:  # type: ignore[no-untyped-def]
    assert ask(policy, "chat.deepseek.com", user="carol").rule == "deepseek"
    assert [w.code for w in policy.warnings] == ["expired"]


def test_exception_ends_at_the_end_of_its_day(policy) -> None:  # type: ignore[no-untyped-def]
    last = datetime.datetime(NEXT_YEAR, 6, 30, 23, 59, tzinfo=datetime.UTC)
    assert ask(policy, "chat.deepseek.com", user="bob", when=last).exception is not None
    after = datetime.datetime(NEXT_YEAR, 7, 1, 0, 0, tzinfo=datetime.UTC)
    assert ask(policy, "chat.deepseek.com", user="bob", when=after).rule == "deepseek"


@pytest.mark.parametrize(
    ("ip", "rule"),
    [("10.20.3.4", "lab-only-hf"), ("10.21.0.1", "default"), ("2001:db8:20::9", "lab-only-hf"), ("", "default")],
)
def test_named_network_scope(policy, ip: str, rule: str) -> None:  # type: ignore[no-untyped-def]
    assert ask(policy, "huggingface.co", ip=ip).rule == rule


@pytest.mark.parametrize(
    ("moment", "rule"),
    [
        (datetime.datetime(2026, 11, 30, 8, 30, tzinfo=datetime.UTC), "office-hours"),  # Monday 09:30 in Berlin
        (datetime.datetime(2026, 11, 30, 7, 59, tzinfo=datetime.UTC), "default"),  # 08:59 in Berlin
        (datetime.datetime(2026, 11, 30, 16, 0, tzinfo=datetime.UTC), "default"),  # 17:00 in Berlin: the end
        (datetime.datetime(2026, 11, 29, 10, 0, tzinfo=datetime.UTC), "default"),  # Sunday
    ],
)
def test_time_window_in_its_time_zone(policy, moment: datetime.datetime, rule: str) -> None:  # type: ignore[no-untyped-def]
    assert ask(policy, "chatgpt.com", when=moment).rule == rule


def test_window_across_midnight(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            rules:
              - id: night
                action: block
                match: {apps: [chatgpt]}
                when: {time: {days: [fri], hours: "22:00-06:00"}}
            """,
        )
    )
    friday_night = datetime.datetime(2026, 11, 27, 23, 0, tzinfo=datetime.UTC)
    saturday_morning = datetime.datetime(2026, 11, 28, 5, 59, tzinfo=datetime.UTC)
    saturday_night = datetime.datetime(2026, 11, 28, 23, 0, tzinfo=datetime.UTC)
    assert [ask(policy, "chatgpt.com", when=m).rule for m in (friday_night, saturday_morning, saturday_night)] == [
        "night",
        "night",
        "default",
    ]


def test_scope_problems_are_all_reported(tmp_path: Path) -> None:
    path = write_policy(
        tmp_path,
        """
        identity: {user_header: X-User}
        networks:
          lab: [not-a-network]
        rules:
          - id: r
            action: block
            match: {domains: [x.example]}
            when: {time: {days: [funday], hours: "9-25", timezone: Mars/Olympus}, networks: [nowhere]}
        exceptions:
          - {rule: missing, users: [a], until: 2030-01-01, ticket: T-1}
          - {rule: r, until: 2030-01-01, ticket: T-2}
          - {rule: r, users: [a], until: someday, ticket: T-3}
        """,
    )
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    messages = [f"{p.line}:{p.column} {p.message}" for p in raised.value.problems if p.severity == "error"]
    assert messages == [
        "4:11 identity: a user or groups header needs trusted_proxies (the addresses of the authenticating "
        "proxies allowed to set it); otherwise any client could claim to be anyone",
        "6:9 network 'lab': 'not-a-network' is not an address or CIDR",
        "11:25 rule 'r'.when.time.days: expected day names (mon, tue, wed, thu, fri, sat, sun) or a range like "
        "mon-fri, got 'funday'",
        "11:42 rule 'r'.when.time.hours: expected hours like 09:00-17:00, got '9-25'",
        "11:60 rule 'r'.when.time.timezone 'Mars/Olympus' is not a known time zone (use IANA names like "
        "Europe/Berlin or UTC)",
        "11:86 rule 'r'.when.networks: 'nowhere' is not an address or CIDR or a named network (lab)",
        "13:12 exception 'T-1' refers to rule 'missing', which the policy does not define (rules: r)",
        "14:5 exception 'T-2' names no users, groups or networks (to switch a rule off for everyone, use "
        "enabled: false)",
        "15:34 exception 'T-3'.until must be a date like 2026-12-31, got 'someday'",
    ]
