"""Host and path matching: normalisation done once, hash indexes whose cost does not grow with
list size, and the one target syntax of rules, lists and the catalogue.
"""

from ._hosts import normalise_host, normalise_path, parse_ip, split_url
from ._index import HostIndex, NetworkIndex, PathPattern
from ._targets import Target, parse_target

__all__ = [
    "HostIndex",
    "NetworkIndex",
    "PathPattern",
    "Target",
    "normalise_host",
    "normalise_path",
    "parse_ip",
    "parse_target",
    "split_url",
]
