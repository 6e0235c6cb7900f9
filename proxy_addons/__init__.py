"""The mitmproxy face of aipolicy: the only package that imports mitmproxy.

``aipolicy proxy`` runs ``python -m aipolicy.proxy_addons.launcher``: mitmdump with the
Enforcer in its addon chain. ``mitmdump -s proxy_addons/addon.py`` loads the same addon as a
script. Importing this package imports no mitmproxy (the CLI reads these names).
"""

from pathlib import Path

ENFORCER_SCRIPT = str(Path(__file__).with_name("addon.py"))
LAUNCHER_MODULE = "aipolicy.proxy_addons.launcher"

__all__ = ["ENFORCER_SCRIPT", "LAUNCHER_MODULE"]
