"""mitmdump with SO_REUSEPORT on its listening sockets: ``python -m aipolicy.proxy_addons.reuseport MITMDUMP-ARGS``.

Kept as an alias from before the launcher: plain mitmdump (load the addon with ``-s
proxy_addons/addon.py``), listening with SO_REUSEPORT. ``aipolicy proxy --workers N`` and
``--reuse-port`` run ``python -m aipolicy.proxy_addons.launcher --reuse-port`` instead, which
has the Enforcer in its addon chain; how SO_REUSEPORT is applied, and what it gives, is
described in launcher.py.
"""

from __future__ import annotations

import sys

from .launcher import reuse_port_servers

__all__ = ["main", "reuse_port_servers"]


def main() -> None:
    reuse_port_servers()
    from mitmproxy.tools.main import mitmdump

    sys.argv[0] = "mitmdump"
    sys.exit(mitmdump(sys.argv[1:]))


if __name__ == "__main__":
    main()
