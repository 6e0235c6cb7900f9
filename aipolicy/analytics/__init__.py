"""What compliance officers read: summaries, the HTML report, replays of recorded events
against a candidate policy, and the Parquet export.
"""

from aipolicy._units import parse_time  # the one grammar; kept here for older imports

from ._parquet import ParquetUnavailable, write_parquet
from ._replay import LIMITS, ReplayReport, Transition, facts_from_event, redecide, replay
from ._report import REPORT_KINDS, Report, Verification, collect_report, render_report
from ._summary import (
    BY_KEYS,
    EventFilter,
    GroupSummary,
    Summary,
    as_text,
    filter_events,
    format_change,
    previous_period,
    sparkline,
    summarise,
)

__all__ = [
    "BY_KEYS",
    "EventFilter",
    "GroupSummary",
    "LIMITS",
    "ParquetUnavailable",
    "REPORT_KINDS",
    "ReplayReport",
    "Report",
    "Summary",
    "Transition",
    "Verification",
    "as_text",
    "collect_report",
    "facts_from_event",
    "filter_events",
    "format_change",
    "parse_time",
    "previous_period",
    "redecide",
    "render_report",
    "replay",
    "sparkline",
    "summarise",
    "write_parquet",
]
