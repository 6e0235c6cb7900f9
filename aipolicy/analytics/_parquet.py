"""Events as Parquet files for query engines (DuckDB, Spark, Trino, Athena …), one folder per day.

    written = write_parquet(read_events(paths), "attempts/")
    # attempts/dt=2026-11-01/part-00000.parquet, attempts/dt=2026-11-02/part-00000.parquet, …

Hive-style partitions (``dt=YYYY-MM-DD``, UTC); the ``dt`` column lives in the folder name.
Written streaming: at most ``batch_rows`` events are held before files are written.
Needs pyarrow (``pip install 'aipolicy[parquet]'``); ``ParquetUnavailable`` says so.
"""

from __future__ import annotations

import datetime
import importlib
import os
from collections.abc import Iterable
from typing import Any

from aipolicy.eventlog import LogEvent

from ._summary import as_text

INSTALL_HINT = "install pyarrow: pip install 'aipolicy[parquet]' (or pip install pyarrow)"
STRING_COLUMNS = (
    "event", "action", "rule", "app", "vendor", "category", "host", "sni", "method", "scheme", "path",
    "client_ip", "user", "user_agent", "reason", "model", "directive", "policy", "stage", "proxy", "id",
    "evasion",
)  # fmt: skip
_MAX_BATCH_ROWS = 65536  # events held in memory before files are written


class ParquetUnavailable(ImportError):
    """pyarrow is not installed."""


def _pyarrow() -> tuple[Any, Any]:
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise ParquetUnavailable(f"Parquet export needs pyarrow, which is not installed: {INSTALL_HINT}") from None


def schema() -> Any:
    pa, _ = _pyarrow()
    return pa.schema(
        [pa.field("ts", pa.timestamp("ms", tz="UTC"), nullable=False)]
        + [pa.field(name, pa.string()) for name in STRING_COLUMNS]
        + [pa.field("port", pa.int32()), pa.field("groups", pa.list_(pa.string()))]
    )


def _port(value: object) -> int | None:
    return value if type(value) is int and 0 <= value <= 65535 else None


def _groups(value: object) -> list[str] | None:
    if isinstance(value, list):
        return [text for text in (as_text(item) for item in value) if text is not None]
    return None if value is None else [as_text(value) or ""]


class _Partition:
    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in ("ts", *STRING_COLUMNS, "port", "groups")}
        self.files = 0

    def add(self, event: LogEvent) -> None:
        data = event.data
        columns = self.columns
        columns["ts"].append(datetime.datetime.fromisoformat(event.ts.replace("Z", "+00:00")))
        for name in STRING_COLUMNS:
            columns[name].append(as_text(data.get(name)))
        columns["port"].append(_port(data.get("port")))
        columns["groups"].append(_groups(data.get("groups")))

    def __len__(self) -> int:
        return len(self.columns["ts"])


def write_parquet(
    events: Iterable[LogEvent], directory: str | os.PathLike[str], *, batch_rows: int = _MAX_BATCH_ROWS
) -> dict[str, int]:
    """Write the events under ``directory`` (created; must be empty); returns events per day."""
    pa, pq = _pyarrow()
    table_schema = schema()
    root = os.fspath(directory)
    if os.path.isdir(root) and os.listdir(root):
        raise FileExistsError(f"{root!r} is not empty (export into a new or empty directory)")
    os.makedirs(root, exist_ok=True)
    partitions: dict[str, _Partition] = {}
    counts: dict[str, int] = {}

    def flush(day: str, partition: _Partition) -> None:
        folder = os.path.join(root, f"dt={day}")
        os.makedirs(folder, exist_ok=True)
        table = pa.Table.from_pydict(partition.columns, schema=table_schema)
        pq.write_table(table, os.path.join(folder, f"part-{partition.files:05d}.parquet"), compression="zstd")
        partition.files += 1
        for values in partition.columns.values():
            values.clear()

    buffered = 0
    for event in events:
        day = event.ts[:10]  # a canonical timestamp: always a real date
        partition = partitions.get(day)
        if partition is None:
            partition = partitions[day] = _Partition()
        partition.add(event)
        counts[day] = counts.get(day, 0) + 1
        buffered += 1
        if buffered >= batch_rows:  # bound memory, however the days interleave
            for name, pending in partitions.items():
                if len(pending):
                    flush(name, pending)
            buffered = 0
    for day, partition in partitions.items():
        if len(partition):
            flush(day, partition)
    return dict(sorted(counts.items()))
