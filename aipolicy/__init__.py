"""aipolicy: an organisation's AI-app policy, enforced at its web proxy.

This package is the core: policy model and loader, catalogue, matching, the
decision function, block pages and the event log. It imports neither
mitmproxy nor click/rich; ``proxy_addons`` and ``cli`` are its two faces.
"""

from ._bodies import decode_body
from ._catalog import App, Catalog, Vendor, load_catalog
from ._decision import Decision, RequestFacts, decide, decide_oversize
from ._errors import AipolicyError, EventLogError, PolicyError, Problem
from ._evasion import evasion_signals
from ._events import EventLog, decision_event, default_proxy_id, system_event
from ._hosts import normalise_host, normalise_path, split_url
from ._logs import EventReader, Follower, LogEvent, SkipReport, format_ts, read_events
from ._metrics import Health, Metrics, health
from ._pages import block_page, json_error, wants_html
from ._policy import ACTIONS, Policy, Rule, load_policy
from ._resources import default_policy, policies_dir, shipped_catalog
from ._siem import SYSLOG_FORMATS, SinkConfigError, format_message, frame, parse_syslog_url, to_cef, to_rfc5424
from ._summary import EventFilter, GroupSummary, Summary, parse_time, summarise
from ._targets import Target, parse_target

__version__ = "0.1.0"

__all__ = [
    "ACTIONS",
    "AipolicyError",
    "App",
    "Catalog",
    "Decision",
    "EventFilter",
    "EventLog",
    "EventLogError",
    "EventReader",
    "Follower",
    "GroupSummary",
    "Health",
    "LogEvent",
    "Metrics",
    "Policy",
    "PolicyError",
    "Problem",
    "RequestFacts",
    "Rule",
    "SYSLOG_FORMATS",
    "SinkConfigError",
    "SkipReport",
    "Summary",
    "Target",
    "Vendor",
    "block_page",
    "decide",
    "decide_oversize",
    "decision_event",
    "decode_body",
    "default_policy",
    "default_proxy_id",
    "evasion_signals",
    "format_message",
    "format_ts",
    "frame",
    "health",
    "json_error",
    "load_catalog",
    "load_policy",
    "normalise_host",
    "normalise_path",
    "parse_syslog_url",
    "parse_target",
    "parse_time",
    "policies_dir",
    "read_events",
    "shipped_catalog",
    "split_url",
    "summarise",
    "system_event",
    "to_cef",
    "to_rfc5424",
    "wants_html",
]
