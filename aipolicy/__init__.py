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
from ._pages import block_page, json_error, wants_html
from ._policy import ACTIONS, Policy, Rule, load_policy
from ._report import Report, Verification, collect_report, render_report
from ._resources import default_policy, policies_dir, shipped_catalog
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
    "LogEvent",
    "Policy",
    "PolicyError",
    "Problem",
    "Report",
    "RequestFacts",
    "Rule",
    "SkipReport",
    "Summary",
    "Target",
    "Vendor",
    "Verification",
    "block_page",
    "collect_report",
    "decide",
    "decide_oversize",
    "decision_event",
    "decode_body",
    "default_policy",
    "default_proxy_id",
    "evasion_signals",
    "format_ts",
    "json_error",
    "load_catalog",
    "load_policy",
    "normalise_host",
    "normalise_path",
    "parse_target",
    "parse_time",
    "policies_dir",
    "read_events",
    "render_report",
    "shipped_catalog",
    "split_url",
    "summarise",
    "system_event",
    "wants_html",
]
