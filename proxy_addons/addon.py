"""The script mitmdump loads: ``mitmdump -s proxy_addons/addon.py``.

Kept to an import so that the addon's code lives in a real module
(``proxy_addons.enforcer``) that tests and other addons can import.
"""

from proxy_addons.enforcer import Enforcer

addons = [Enforcer()]
