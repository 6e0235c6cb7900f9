"""The warn and quota state shared by several proxy processes through one directory."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from aipolicy import (
    QuotaSettings,
    QuotaTracker,
    SharedAcknowledgements,
    SharedQuotaTracker,
    SharedState,
    SharedStateError,
    ensure_secret,
)
from aipolicy.controls._sqlite_store import read_secret

NOW = 1_800_000_000.0
HOUR = QuotaSettings(per=3600, requests=3)


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[SharedState, SharedState]]:
    """Two processes' connections to one directory."""
    first, second = SharedState(tmp_path / "state"), SharedState(tmp_path / "state")
    yield first, second
    first.close()
    second.close()


def test_the_secret_is_created_once_private_and_shared(tmp_path: Path, two: tuple[SharedState, SharedState]) -> None:
    first, second = two
    secret = tmp_path / "state" / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert first.secret == second.secret == secret.read_bytes().strip()
    assert len(first.secret) == 64
    assert stat.S_IMODE((tmp_path / "state" / "state.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state" / "state.lock").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert [p.name for p in (tmp_path / "state").iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_a_token_from_one_process_is_valid_in_the_other(two: tuple[SharedState, SharedState]) -> None:
    first, second = (SharedAcknowledgements(state) for state in two)
    token = first.token("alice", "chatgpt", NOW)
    assert second.valid_token(token, "alice", "chatgpt", NOW + 10)
    assert not second.valid_token(token, "bob", "chatgpt", NOW + 10)


def test_an_acknowledgement_in_one_process_is_seen_by_the_other_until_it_expires(
    two: tuple[SharedState, SharedState],
) -> None:
    first, second = (SharedAcknowledgements(state) for state in two)
    assert not second.acknowledged("alice", "chatgpt", NOW)
    first.remember("alice", "chatgpt", NOW, 60)
    assert second.acknowledged("alice", "chatgpt", NOW + 1)
    assert not second.acknowledged("alice", "claude", NOW + 1)
    assert not second.acknowledged("bob", "chatgpt", NOW + 1)
    assert not second.acknowledged("alice", "chatgpt", NOW + 61)  # also once cached in the second process
    assert not first.acknowledged("alice", "chatgpt", NOW + 61)


def test_a_request_budget_is_one_budget_across_processes(two: tuple[SharedState, SharedState]) -> None:
    first, second = (SharedQuotaTracker(state) for state in two)
    verdicts = [tracker.charge("api", "alice", HOUR, 10, NOW + n) for n, tracker in enumerate([first, second] * 3)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False, False]
    assert [v.requests for v in verdicts[:3]] == [1, 2, 3]
    assert verdicts[3].retry_after == 3600 - int(NOW % 3600) - 3
    assert first.charge("api", "bob", HOUR, 0, NOW).allowed  # per subject
    assert second.charge("api", "alice", HOUR, 0, NOW + 3600).allowed  # a new window


def test_response_bytes_counted_by_one_process_exhaust_the_budget_in_the_other(
    two: tuple[SharedState, SharedState],
) -> None:
    first, second = (SharedQuotaTracker(state) for state in two)
    settings = QuotaSettings(per=3600, bytes=1000)
    assert first.charge("dl", "alice", settings, 100, NOW).allowed
    first.add_bytes("dl", "alice", settings, 950, NOW + 1)
    refused = second.charge("dl", "alice", settings, 1, NOW + 2)
    assert (refused.allowed, refused.bytes) == (False, 1050)
    second.add_bytes("dl", "alice", settings, 5, NOW + 3600)  # counted against the window now running
    assert second.charge("dl", "alice", settings, 0, NOW + 3601).bytes == 5


def test_the_volume_alert_sees_every_process_requests(two: tuple[SharedState, SharedState]) -> None:
    """The shared tracker gives the same verdicts as the in-memory one for the same requests."""
    settings = QuotaSettings(per=60, alert_factor=3, alert_min_requests=10)
    trackers = [SharedQuotaTracker(state) for state in two]
    memory = QuotaTracker()
    shared_alerts, memory_alerts = [], []
    for window, count in enumerate([5, 5, 5, 5, 30]):
        for number in range(count):
            now = NOW - NOW % 60 + window * 60 + number * 0.1
            shared_alerts.append(trackers[number % 2].charge("api", "alice", settings, 0, now).alert)
            memory_alerts.append(memory.charge("api", "alice", settings, 0, now).alert)
    assert shared_alerts == memory_alerts
    assert sum(shared_alerts) == 1


def test_expired_rows_are_deleted_and_tables_stay_bounded(tmp_path: Path) -> None:
    state = SharedState(tmp_path / "state", limit=50)
    acknowledgements, quotas = SharedAcknowledgements(state), SharedQuotaTracker(state)
    for number in range(200):
        acknowledgements.remember(f"user{number}", "chatgpt", NOW, 3600 + number)
        quotas.charge("api", f"user{number}", HOUR, 0, NOW)
    state.prune(NOW)
    count = {
        table: state.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("acknowledgements", "quota_usage")
    }
    assert count["acknowledgements"] <= 50 and count["quota_usage"] <= 50
    assert acknowledgements.state.db.execute(
        "SELECT count(*) FROM acknowledgements WHERE subject = 'user199'"
    ).fetchone() == (1,)  # the latest expiry is kept
    state.prune(NOW + 3600 + 180)  # the windows are over, and the acknowledgements of user0 to user180
    assert state.db.execute("SELECT count(*) FROM quota_usage").fetchone() == (0,)
    assert state.db.execute("SELECT count(*), min(until) FROM acknowledgements").fetchone() == (19, NOW + 3600 + 181)
    state.close()


def test_pruning_runs_by_itself_as_rows_are_added(tmp_path: Path) -> None:
    state = SharedState(tmp_path / "state", limit=100)
    quotas = SharedQuotaTracker(state)
    for number in range(1000):
        quotas.charge("api", f"user{number}", HOUR, 0, NOW)
    assert state.db.execute("SELECT count(*) FROM quota_usage").fetchone()[0] <= 100 + 100 // 10
    state.close()


def test_a_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    (directory / "state.db").write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(SharedStateError, match=r"state\.db cannot be used: file is not a database.*delete it"):
        SharedState(directory)


def test_a_database_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    with sqlite3.connect(directory / "state.db") as db:
        db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(SharedStateError, match="newer aipolicy"):
        SharedState(directory)


def test_a_secret_others_can_read_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("k" * 64)
    secret.chmod(0o644)
    with pytest.raises(SharedStateError, match=r"mode 0644 lets others read or change it.*chmod 600"):
        SharedState(tmp_path / "state", secret)


def test_a_short_secret_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("short\n")
    secret.chmod(0o600)
    with pytest.raises(SharedStateError, match=r"5 characters, at least 32 are needed.*openssl rand -hex 32"):
        read_secret(secret)


def test_a_missing_secret_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SharedStateError, match="cannot create it: No such file or directory"):
        ensure_secret(tmp_path / "missing" / "secret")


def test_an_admin_secret_file_is_used_as_given(tmp_path: Path) -> None:
    secret = tmp_path / "shared-secret"
    secret.write_text("a" * 40 + "\n")
    secret.chmod(0o400)
    state = SharedState(tmp_path / "state", secret)
    assert state.secret == b"a" * 40
    assert not (tmp_path / "state" / "secret").exists()
    state.close()


def _charge_many(directory: str, count: int, queue: multiprocessing.Queue[int]) -> None:
    state = SharedState(directory)
    tracker = SharedQuotaTracker(state)
    settings = QuotaSettings(per=3600, requests=1500)
    queue.put(sum(tracker.charge("api", "alice", settings, 0, NOW).allowed for _ in range(count)))
    state.close()


def test_processes_charging_at_once_never_exceed_the_budget(tmp_path: Path) -> None:
    """Four real processes charge one budget of 1,500 back to back, 1,000 times each: exactly 1,500
    are allowed, and no charge fails for a lock held by another process."""
    directory = str(tmp_path / "state")
    SharedState(directory).close()
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[int] = context.Queue()
    processes = [context.Process(target=_charge_many, args=(directory, 1000, queue)) for _ in range(4)]
    for process in processes:
        process.start()
    try:
        allowed = [queue.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join(5)
    assert sum(allowed) == 1500
    assert all(process.exitcode == 0 for process in processes)


def test_a_database_failing_at_run_time_raises_rather_than_allows(tmp_path: Path) -> None:
    """The proxy turns the error into a blocked, logged request (fail closed)."""
    state = SharedState(tmp_path / "state")
    quotas, acknowledgements = SharedQuotaTracker(state), SharedAcknowledgements(state)
    state.db.execute("DROP TABLE quota_usage")
    state.db.execute("DROP TABLE acknowledgements")
    with pytest.raises(SharedStateError, match="charging a quota failed: no such table"):
        quotas.charge("api", "alice", HOUR, 0, NOW)
    with pytest.raises(SharedStateError, match="reading an acknowledgement failed"):
        acknowledgements.acknowledged("alice", "chatgpt", NOW)
    quotas.add_bytes("api", "alice", HOUR, 10, NOW)  # logged and dropped: the response is already under way
    assert not state.db.in_transaction
    state.close()


def test_a_directory_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SharedStateError, match=f"state directory {blocker}/state"):
        SharedState(blocker / "state")
    assert os.path.exists(blocker)


def test_tokens_acknowledgements_and_budgets_outlive_a_restart(tmp_path: Path) -> None:
    before = SharedState(tmp_path / "state")
    token = SharedAcknowledgements(before).token("alice", "chatgpt", NOW)
    SharedAcknowledgements(before).remember("alice", "chatgpt", NOW, 600)
    SharedQuotaTracker(before).charge("api", "alice", HOUR, 0, NOW)
    before.close()
    after = SharedState(tmp_path / "state")
    acknowledgements = SharedAcknowledgements(after)
    assert acknowledgements.valid_token(token, "alice", "chatgpt", NOW + 5)
    assert acknowledgements.acknowledged("alice", "chatgpt", NOW + 5)
    assert SharedQuotaTracker(after).charge("api", "alice", HOUR, 0, NOW + 5).requests == 2
    after.close()
