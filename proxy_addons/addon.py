"""The script mitmdump loads: ``mitmdump -s proxy_addons/addon.py``.

Kept to an import so that the addon's code lives in a real module
(``proxy_addons.enforcer``) that tests and other addons can import.
The DNS addon shares the enforcer's policy and event log (``--mode dns``).
"""

from proxy_addons.dns_enforcer import DnsEnforcer
from proxy_addons.enforcer import Enforcer

enforcer = Enforcer()
addons = [enforcer, DnsEnforcer(enforcer)]
