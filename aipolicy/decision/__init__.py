"""The decision: request facts in, a Decision out (``decide``), and the whole request sequence
(``evaluate``) that the proxy and ``aipolicy policy test`` share.
"""

from ._bodies import BodyTooLarge, decode_body
from ._decide import Decision, RequestFacts, decide, decide_oversize, scan_request
from ._evaluate import Evaluation, evaluate
from ._evasion import evasion_signals

__all__ = [
    "BodyTooLarge",
    "Decision",
    "Evaluation",
    "RequestFacts",
    "decide",
    "decide_oversize",
    "decode_body",
    "evaluate",
    "evasion_signals",
    "scan_request",
]
