"""The warn, read-only and quota controls: settings, the write test, acknowledgements and budgets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from aipolicy import (
    Acknowledgements,
    PolicyError,
    QuotaSettings,
    QuotaTracker,
    RequestFacts,
    clean_justification,
    decide,
    is_write,
    load_policy,
    parse_duration,
    parse_size,
)

FIXTURE_CATALOG = Path(__file__).resolve().parents[1] / "fixtures" / "catalog.yaml"


def write_policy(directory: Path, rules: str) -> Path:
    path = directory / "policy.yaml"
    path.write_text(f"version: 1\ncatalog: {FIXTURE_CATALOG}\nrules:\n" + textwrap.indent(textwrap.dedent(rules), "  "))
    return path


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), ("30s", 30.0), ("15m", 900.0), ("8h", 28800.0), ("7d", 604800.0), ("2W", 1209600.0), ("1.5h", 5400.0)],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "8 hours", "-1h", 0, True, "h"])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@pytest.mark.parametrize(("value", "size"), [(1024, 1024), ("500KB", 500_000), ("10MiB", 10 * 1024**2), ("1gb", 10**9)])
def test_parse_size(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["ten", "-5MB", 0, False])
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(value)


@pytest.mark.parametrize(
    ("method", "headers", "write"),
    [
        ("GET", {}, False),
        ("HEAD", {}, False),
        ("GET", {"content-length": "0"}, False),
        ("POST", {"content-length": "0"}, False),
        ("POST", {"content-length": "12"}, True),
        ("POST", {}, True),  # HTTP/2 without a length: a body may follow
        ("PUT", {"transfer-encoding": "chunked"}, True),
        ("GET", {"upgrade": "websocket"}, True),
        ("GET", {"content-length": "x"}, True),
    ],
)
def test_is_write(method: str, headers: dict[str, str], write: bool) -> None:
    assert is_write(method, headers) is write


def test_clean_justification_strips_control_characters_and_bounds_length() -> None:
    assert clean_justification(" ticket\n42\x1b[31m ") == "ticket 42 [31m"
    assert len(clean_justification("x" * 10_000)) == 500


# --- acknowledgements --------------------------------------------------------------------------


def test_acknowledgement_lasts_its_time_then_expires() -> None:
    acks = Acknowledgements(secret=b"k" * 32)
    assert not acks.acknowledged("alice", "chatgpt", 1000.0)
    acks.remember("alice", "chatgpt", 1000.0, 60)
    assert acks.acknowledged("alice", "chatgpt", 1059.0)
    assert not acks.acknowledged("bob", "chatgpt", 1059.0)
    assert not acks.acknowledged("alice", "claude", 1059.0)
    assert not acks.acknowledged("alice", "chatgpt", 1060.0)


def test_acknowledgements_are_bounded() -> None:
    acks = Acknowledgements(secret=b"k" * 32, limit=10)
    for number in range(50):
        acks.remember(f"user{number}", "app", 1000.0, 60)
        assert len(acks.until) <= 10
    assert acks.acknowledged("user49", "app", 1001.0)


def test_token_is_bound_to_user_app_and_time() -> None:
    acks = Acknowledgements(secret=b"k" * 32)
    token = acks.token("alice", "chatgpt", 1000.0)
    assert acks.valid_token(token, "alice", "chatgpt", 1100.0)
    assert not acks.valid_token(token, "bob", "chatgpt", 1100.0)
    assert not acks.valid_token(token, "alice", "claude", 1100.0)
    assert not acks.valid_token(token, "alice", "chatgpt", 1000.0 + 3601)
    assert not acks.valid_token("1000.0000", "alice", "chatgpt", 1100.0)
    assert not acks.valid_token("", "alice", "chatgpt", 1100.0)
    other = Acknowledgements(secret=b"o" * 32)
    assert not other.valid_token(token, "alice", "chatgpt", 1100.0)


# --- quota ------------------------------------------------------------------------------------


def test_request_budget_per_window_with_retry_after() -> None:
    tracker, settings = QuotaTracker(), QuotaSettings(per=3600, requests=3)
    verdicts = [tracker.charge("q", "alice", settings, 0, 7200.0 + n) for n in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[3].retry_after == 3600 - 3
    assert tracker.charge("q", "bob", settings, 0, 7204.0).allowed  # budgets are per subject
    assert tracker.charge("q", "alice", settings, 0, 10800.0).allowed  # a new window


def test_byte_budget_counts_requests_and_responses() -> None:
    tracker, settings = QuotaTracker(), QuotaSettings(per=60, bytes=1000)
    assert tracker.charge("q", "alice", settings, 400, 0.0).allowed
    tracker.add_bytes("q", "alice", settings, 500, 1.0)
    assert tracker.charge("q", "alice", settings, 50, 2.0).allowed
    refused = tracker.charge("q", "alice", settings, 100, 3.0)
    assert (refused.allowed, refused.bytes, refused.retry_after) == (False, 950, 57)


def test_a_single_request_larger_than_the_byte_budget_is_let_through_once() -> None:
    """Otherwise an upload larger than the budget could never be sent in any window."""
    tracker, settings = QuotaTracker(), QuotaSettings(per=60, bytes=100)
    assert tracker.charge("q", "alice", settings, 5000, 0.0).allowed
    assert not tracker.charge("q", "alice", settings, 1, 1.0).allowed


def test_volume_alert_fires_once_far_above_the_baseline() -> None:
    tracker = QuotaTracker()
    settings = QuotaSettings(per=60, requests=10_000, alert_factor=5, alert_min_requests=20)
    for window in range(4):  # a baseline of 10 requests per window
        for n in range(10):
            assert not tracker.charge("q", "alice", settings, 0, window * 60 + n).alert
    alerts = [tracker.charge("q", "alice", settings, 0, 240 + n * 0.1).alert for n in range(100)]
    assert alerts.count(True) == 1
    assert alerts.index(True) == 49  # the 50th request: 5 x the median of 10


def test_no_volume_alert_without_a_baseline() -> None:
    tracker = QuotaTracker()
    settings = QuotaSettings(per=60, requests=10_000, alert_factor=2, alert_min_requests=5)
    assert not any(tracker.charge("q", "new", settings, 0, n * 0.01).alert for n in range(500))


# --- the policy format and the decision ---------------------------------------------------------


def test_controls_load_with_their_settings(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            - id: w
              action: warn
              match: {hosts: [warn.example]}
              warn: {justification: required, remember: 2h, message: Think first}
            - id: r
              action: read-only
              match: {hosts: [read.example]}
            - id: q
              action: quota
              match: {hosts: [quota.example]}
              quota: {requests: 100, bytes: 5MB, per: 1h, by: client, alert: {factor: 10, min_requests: 50}}
            """,
        )
    )
    warn, quota = policy.rules[0].warn, policy.rules[2].quota
    assert warn is not None and (warn.justification, warn.remember, warn.message) == ("required", 7200, "Think first")
    assert quota == QuotaSettings(
        per=3600, requests=100, bytes=5_000_000, by="client", alert_factor=10, alert_min_requests=50
    )


def test_control_setting_errors_are_all_reported(tmp_path: Path) -> None:
    path = write_policy(
        tmp_path,
        """
        - id: w
          action: warn
          match: {hosts: [warn.example]}
          warn: {justification: sometimes, remember: soon}
        - id: q
          action: quota
          match: {hosts: [quota.example]}
        - id: q2
          action: quota
          match: {hosts: [quota.example]}
          quota: {per: 0, requests: -1}
        - id: b
          action: block
          match: {hosts: [b.example]}
          quota: {per: 1h, requests: 1}
        """,
    )
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert [str(p) for p in raised.value.problems] == [
        f"{path}:8:27: error: rule 'w'.warn.justification is 'sometimes' (valid: none, optional, required) [bad-value]",
        f"{path}:8:48: error: rule 'w'.warn.remember: 'soon' is not a duration (examples: 3600, 30m, 24h, 7d): "
        "a number with a unit, s, m, h, d or w (seconds, minutes, hours, days, weeks), or several, as in 1h30m; "
        "a number alone is seconds [bad-value]",
        f"{path}:9:5: error: rule 'q' has action quota but no quota: (e.g. quota: {{requests: 500, per: 1h}}) [missing-key]",
        f"{path}:15:18: error: rule 'q2'.quota.per: a duration must be more than 0 seconds, got 0 [bad-value]",
        f"{path}:15:31: error: rule 'q2'.quota.requests: expected a whole number above 0, got -1 [bad-value]",
        f"{path}:19:12: error: rule 'b'.quota only applies to rules with action quota [misplaced-key]",
    ]


def test_read_only_blocks_submissions_and_passes_reading(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, "- {id: r, action: read-only, match: {hosts: [read.example]}}\n"))

    def ask(method: str, path: str | None = "/c", **headers: str) -> tuple[str, bool, str]:
        decision = decide(policy, RequestFacts(hosts=("read.example",), path=path, method=method, headers=headers))
        return decision.action, decision.final, decision.control

    assert ask("CONNECT", path=None) == ("read-only", False, "")  # decrypt, then look at each request
    assert ask("GET") == ("read-only", True, "")
    assert ask("POST", **{"content-length": "20"}) == ("block", True, "read-only")
    assert ask("GET", upgrade="websocket") == ("block", True, "read-only")
    assert ask("GET") == ("read-only", True, "")  # a refused write is not remembered for the host
    blocked = decide(policy, RequestFacts(hosts=("read.example",), path="/", method="PUT", headers={}))
    assert blocked.reason == "read.example is read-only under rule r: prompts and uploads are not sent"
    assert blocked.as_dict()["control"] == "read-only"
