"""Changing policies safely: byte-exact edits, exceptions, importing community block lists,
and the semantic diff a reviewer reads.
"""

from ._community_lists import (
    FORMATS,
    SKIP_REASONS,
    ParsedSource,
    SourceError,
    SourceLine,
    detect_format,
    parse_source,
    read_source,
)
from ._diff import PolicyDiff, diff_policies
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
from ._exceptions import NewException, add_exception, remove_exception
from ._list_import import ImportListError, ImportPlan, apply_import, plan_import, write_atomically

__all__ = [
    "CLI_RULE",
    "EditResult",
    "FORMATS",
    "ImportListError",
    "ImportPlan",
    "NewException",
    "ParsedSource",
    "PolicyDiff",
    "PolicyDocument",
    "RuleMeta",
    "SKIP_REASONS",
    "SourceError",
    "SourceLine",
    "add_exception",
    "apply_import",
    "audit_log_path",
    "detect_format",
    "diff_policies",
    "edit_policy",
    "format_target",
    "parse_edit_target",
    "parse_source",
    "plan_import",
    "read_source",
    "remove_exception",
    "write_atomically",
]
