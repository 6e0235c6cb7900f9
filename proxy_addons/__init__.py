"""The mitmproxy face of aipolicy: the only package that imports mitmproxy.

Load it into mitmdump with ``-s proxy_addons/addon.py`` (``aipolicy proxy``
does this for you).
"""

from pathlib import Path

ENFORCER_SCRIPT = str(Path(__file__).with_name("addon.py"))

__all__ = ["ENFORCER_SCRIPT"]
