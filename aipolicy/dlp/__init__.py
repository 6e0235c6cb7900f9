"""Data-loss prevention: the detectors (secrets, personal data, markings, keywords, custom
patterns), scanning request bodies and redacting what they find.
"""

from ._detectors import (
    DETECTORS,
    Detector,
    DlpError,
    Findings,
    ScanLimitError,
    Scanner,
    build_detectors,
    check_custom_regex,
    check_keyword,
    detector_names,
    resolve_names,
)

__all__ = [
    "DETECTORS",
    "Detector",
    "DlpError",
    "Findings",
    "ScanLimitError",
    "Scanner",
    "build_detectors",
    "check_custom_regex",
    "check_keyword",
    "detector_names",
    "resolve_names",
]
