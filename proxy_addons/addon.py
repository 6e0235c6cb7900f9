"""The script mitmdump loads: ``mitmdump -s proxy_addons/addon.py``.

For people who run mitmdump themselves. ``aipolicy proxy`` does not load it: it runs
launcher.py, which puts the same Enforcer straight into mitmdump's addon chain (no
ScriptLoader → Script → module walk on every hook, and configured before the port opens).
Kept to an import so that the addon's code lives in a real module
(``aipolicy.proxy_addons.enforcer``) that tests and other addons can import.
The DNS addon shares the enforcer's policy and event log (``--mode dns``).
"""

from aipolicy.proxy_addons.enforcer import Enforcer

# One addon object: mitmproxy walks every addon for every hook of every request. The Enforcer
# answers DNS queries too (``--mode dns``), through its DnsEnforcer part.
enforcer = Enforcer()
addons = [enforcer]
