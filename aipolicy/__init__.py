"""aipolicy: an organisation's AI-app policy, enforced at its web proxy.

This package is the core: policy model and loader, catalogue, matching, the
decision function, block pages and the event log. It imports neither
mitmproxy nor click/rich; ``proxy_addons`` and ``cli`` are its two faces.
"""

from ._bodies import decode_body
from ._bundle import (
    Bundle,
    BundleError,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    parse_validity,
    policy_files,
    sign_bundle,
    unpack_bundle,
    verify_bundle,
    write_key_file,
)
from ._catalog import App, Catalog, Vendor, load_catalog
from ._chain import parse_log_age, parse_log_size
from ._controls import (
    Acknowledgements,
    QuotaSettings,
    QuotaTracker,
    QuotaVerdict,
    WarnSettings,
    clean_justification,
    is_write,
    parse_duration,
    parse_size,
)
from ._decision import Decision, RequestFacts, decide, decide_oversize, scan_request
from ._diff import PolicyDiff, diff_policies
from ._dlp import (
    DETECTORS,
    Detector,
    DlpError,
    Findings,
    ScanLimitError,
    Scanner,
    build_detectors,
    check_custom_regex,
    detector_names,
)
from ._editor import (
    CLI_RULE,
    EditResult,
    PolicyDocument,
    RuleMeta,
    audit_log_path,
    edit_policy,
    format_target,
    parse_edit_target,
)
from ._errors import AipolicyError, EditError, EventLogError, PolicyError, Problem
from ._evasion import evasion_signals
from ._events import EventLog, decision_event, default_proxy_id, system_event
from ._hosts import normalise_host, normalise_path, split_url
from ._imports import ImportListError, ImportPlan, apply_import, plan_import, write_atomically
from ._logs import EventReader, Follower, LogEvent, SkipReport, format_ts, read_events
from ._metrics import Health, Metrics, health
from ._pages import block_page, json_error, wants_html, warn_page
from ._policy import ACTIONS, Policy, Rule, load_policy
from ._replay import LIMITS as REPLAY_LIMITS
from ._replay import ReplayReport, Transition, facts_from_event, redecide, replay
from ._report import Report, Verification, collect_report, render_report
from ._resources import default_policy, policies_dir, shipped_catalog, template
from ._scope import Identity, PolicyException, Scope, TimeWindow
from ._shared_state import SharedAcknowledgements, SharedQuotaTracker, SharedState, SharedStateError, ensure_secret
from ._siem import SYSLOG_FORMATS, SinkConfigError, format_message, frame, parse_syslog_url, to_cef, to_rfc5424
from ._sources import FORMATS as SOURCE_FORMATS
from ._sources import SKIP_REASONS as SOURCE_SKIP_REASONS
from ._sources import ParsedSource, SourceError, SourceLine, detect_format, parse_source, read_source
from ._summary import EventFilter, GroupSummary, Summary, parse_time, summarise
from ._targets import Target, parse_target
from ._verify import ChainBreak, ChainReport, verify_logs

__version__ = "0.1.0"

__all__ = [
    "ACTIONS",
    "Acknowledgements",
    "AipolicyError",
    "App",
    "Bundle",
    "BundleError",
    "CLI_RULE",
    "Catalog",
    "ChainBreak",
    "ChainReport",
    "DETECTORS",
    "Decision",
    "Detector",
    "DlpError",
    "EditError",
    "EditResult",
    "EventFilter",
    "EventLog",
    "EventLogError",
    "EventReader",
    "Findings",
    "Follower",
    "GroupSummary",
    "Health",
    "Identity",
    "ImportListError",
    "ImportPlan",
    "LogEvent",
    "Metrics",
    "ParsedSource",
    "Policy",
    "PolicyDiff",
    "PolicyDocument",
    "PolicyError",
    "PolicyException",
    "Problem",
    "QuotaSettings",
    "QuotaTracker",
    "QuotaVerdict",
    "REPLAY_LIMITS",
    "ReplayReport",
    "Report",
    "RequestFacts",
    "Rule",
    "RuleMeta",
    "SOURCE_FORMATS",
    "SOURCE_SKIP_REASONS",
    "SYSLOG_FORMATS",
    "ScanLimitError",
    "Scanner",
    "Scope",
    "SharedAcknowledgements",
    "SharedQuotaTracker",
    "SharedState",
    "SharedStateError",
    "SinkConfigError",
    "SkipReport",
    "SourceError",
    "SourceLine",
    "Summary",
    "Target",
    "TimeWindow",
    "Transition",
    "Vendor",
    "Verification",
    "WarnSettings",
    "apply_import",
    "audit_log_path",
    "block_page",
    "build_detectors",
    "check_custom_regex",
    "clean_justification",
    "collect_report",
    "decide",
    "decide_oversize",
    "decision_event",
    "decode_body",
    "default_policy",
    "default_proxy_id",
    "detect_format",
    "detector_names",
    "diff_policies",
    "edit_policy",
    "ensure_secret",
    "evasion_signals",
    "facts_from_event",
    "format_message",
    "format_target",
    "format_ts",
    "frame",
    "generate_keypair",
    "health",
    "is_write",
    "json_error",
    "key_id",
    "load_catalog",
    "load_policy",
    "load_private_key",
    "load_public_key",
    "normalise_host",
    "normalise_path",
    "parse_duration",
    "parse_edit_target",
    "parse_log_age",
    "parse_log_size",
    "parse_size",
    "parse_source",
    "parse_syslog_url",
    "parse_target",
    "parse_time",
    "parse_validity",
    "plan_import",
    "policies_dir",
    "policy_files",
    "read_events",
    "read_source",
    "redecide",
    "render_report",
    "replay",
    "scan_request",
    "shipped_catalog",
    "sign_bundle",
    "split_url",
    "summarise",
    "system_event",
    "template",
    "to_cef",
    "to_rfc5424",
    "unpack_bundle",
    "verify_bundle",
    "verify_logs",
    "wants_html",
    "warn_page",
    "write_atomically",
    "write_key_file",
]
