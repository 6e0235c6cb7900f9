"""``aipolicy violations export --parquet DIR``: events for query engines, one folder per day."""

from __future__ import annotations

import click

from aipolicy.analytics import ParquetUnavailable, filter_events, write_parquet

from ._common import stderr
from ._selection import Selection, reading, report_skipped


def export_parquet(selection: Selection, directory: str) -> None:
    try:
        with reading(selection) as reader:
            counts = write_parquet(filter_events(reader, selection.event_filter), directory)
    except ParquetUnavailable as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:  # FileExistsError for a directory that is not empty, and disk errors
        raise click.ClickException(f"cannot export: {error.strerror or error}") from None
    report_skipped(reader)
    total = sum(counts.values())
    stderr.print(f"{total:,} events written to {directory} in {len(counts)} day folder(s) (dt=YYYY-MM-DD).")
