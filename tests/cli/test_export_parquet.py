"""``aipolicy violations export --parquet DIR``: read back with pyarrow, counts checked by hand."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import pytest
from aipolicy.cli import main
from click.testing import CliRunner, Result

from aipolicy.analytics._parquet import write_parquet
from aipolicy.eventlog._reader import read_events
from tests.aipolicy.test_summary import ALL, TOTAL

pa = pytest.importorskip("pyarrow")
dataset = pytest.importorskip("pyarrow.dataset")

# The summary fixture's 13 events per UTC day (see tests/aipolicy/test_summary.py: E1 … E13).
PER_DAY = {
    "2026-10-28": 1, "2026-10-29": 1, "2026-10-30": 1, "2026-11-01": 3, "2026-11-02": 3,
    "2026-11-03": 2, "2026-11-04": 1, "2026-11-05": 1,
}  # fmt: skip


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIPOLICY_LOG", raising=False)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["violations", "export", *args], catch_exceptions=True)


def read_back(directory: Path) -> pa.Table:
    return dataset.dataset(str(directory), format="parquet", partitioning="hive").to_table()


def test_export_partitioned_by_day(tmp_path: Path) -> None:
    out = tmp_path / "attempts"
    result = run("--parquet", str(out), "--log", *ALL)
    assert result.exit_code == 0, result.output
    assert f"{TOTAL} events written" in result.stderr and "5 lines skipped" in result.stderr
    assert sorted(path.name for path in out.iterdir()) == [f"dt={day}" for day in PER_DAY]
    table = read_back(out)
    assert table.num_rows == TOTAL == sum(PER_DAY.values())
    days = table.column("dt").to_pylist()
    assert {day: days.count(day) for day in set(days)} == PER_DAY
    first = min(table.column("ts").to_pylist())
    assert first == datetime.datetime(2026, 10, 28, 9, 0, tzinfo=datetime.UTC)
    rows = table.to_pylist()
    e1 = next(row for row in rows if row["ts"] == first)
    assert (e1["user"], e1["app"], e1["action"], e1["groups"], e1["port"]) == (
        "alice", "deepseek", "block", ["eng", "admins"], 443
    )  # fmt: skip
    assert sum(1 for row in rows if row["action"] == "block") == 9


def test_export_filters(tmp_path: Path) -> None:
    out = tmp_path / "deepseek"
    result = run("--parquet", str(out), "--log", *ALL, "--vendor", "deepseek", "--since", "2026-11-02")
    assert result.exit_code == 0, result.output
    table = read_back(out)
    assert table.num_rows == 2  # E9 and E11
    assert set(table.column("vendor").to_pylist()) == {"deepseek"}


def test_small_batches_write_several_files_per_day(tmp_path: Path) -> None:
    counts = write_parquet(read_events(ALL), tmp_path / "out", batch_rows=2)
    assert counts == PER_DAY
    assert len(list((tmp_path / "out").glob("dt=2026-11-01/part-*.parquet"))) >= 2
    assert read_back(tmp_path / "out").num_rows == TOTAL


def test_hostile_field_types_become_text(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text(
        '{"v":1,"ts":"2026-11-01T00:00:00.000Z","event":"decision","action":"block",'
        '"user":{"nested":[1,2]},"port":"443; drop","groups":"eng"}\n'
    )
    write_parquet(read_events([str(log)]), tmp_path / "out")
    (row,) = read_back(tmp_path / "out").to_pylist()
    assert (row["user"], row["port"], row["groups"]) == ('{"nested":[1,2]}', None, ["eng"])


def test_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    result = run("--parquet", str(tmp_path), "--log", *ALL)
    assert result.exit_code == 1 and "is not empty" in result.output and "Traceback" not in result.output


def test_one_format_only(tmp_path: Path) -> None:
    result = run("--parquet", str(tmp_path / "x"), "--csv", "--log", *ALL)
    assert result.exit_code == 2 and "choose one of --json, --csv or --parquet DIR" in result.output


def test_without_pyarrow_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    result = run("--parquet", str(tmp_path / "x"), "--log", *ALL)
    assert result.exit_code == 1, result.output
    assert "needs pyarrow" in result.output and "pip install 'aipolicy[parquet]'" in result.output
    assert "Traceback" not in result.output
