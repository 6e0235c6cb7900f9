"""The stateful controls, ``warn`` (acknowledge, then proceed), ``read-only`` and ``quota``:
their settings, and the stores that keep their state (memory for one process, SQLite for one box).
"""

from aipolicy._units import parse_duration, parse_size  # the one grammar; kept here for older imports

from ._controls import (
    JUSTIFICATION_MODES,
    QUOTA_SUBJECTS,
    Acknowledgements,
    QuotaSettings,
    QuotaTracker,
    QuotaVerdict,
    WarnSettings,
    clean_justification,
    is_write,
)
from ._sqlite_store import SharedAcknowledgements, SharedQuotaTracker, SharedState, SharedStateError, ensure_secret

__all__ = [
    "Acknowledgements",
    "JUSTIFICATION_MODES",
    "QUOTA_SUBJECTS",
    "QuotaSettings",
    "QuotaTracker",
    "QuotaVerdict",
    "SharedAcknowledgements",
    "SharedQuotaTracker",
    "SharedState",
    "SharedStateError",
    "WarnSettings",
    "clean_justification",
    "ensure_secret",
    "is_write",
    "parse_duration",
    "parse_size",
]
