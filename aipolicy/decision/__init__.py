"""The decision: request facts in, a Decision out (``decide``), and the whole request sequence
(``evaluate``) that the proxy and ``aipolicy policy test`` share.
"""

from ._bodies import decode_body
from ._decide import Decision, RequestFacts, decide, decide_oversize, scan_request
from ._evasion import evasion_signals

__all__ = [
    "Decision",
    "RequestFacts",
    "decide",
    "decide_oversize",
    "decode_body",
    "evasion_signals",
    "scan_request",
]
