"""The event log: writing JSON Lines with a hash chain and rotation, reading many files and
hostile lines, and verifying the chain.
"""

from ._chain import parse_log_age, parse_log_size
from ._reader import EventReader, Follower, LogEvent, SkipReport, format_ts, read_events
from ._verify import STATUSES, ChainBreak, ChainReport, verify_logs
from ._writer import EventLog, decision_event, default_proxy_id, system_event

__all__ = [
    "ChainBreak",
    "ChainReport",
    "EventLog",
    "EventReader",
    "Follower",
    "LogEvent",
    "STATUSES",
    "SkipReport",
    "decision_event",
    "default_proxy_id",
    "format_ts",
    "parse_log_age",
    "parse_log_size",
    "read_events",
    "system_event",
    "verify_logs",
]
