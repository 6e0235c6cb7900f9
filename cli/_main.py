from __future__ import annotations

import click

from aipolicy import __version__

from . import (
    _distribute,  # noqa: F401  (policy sign, verify-bundle, sync)
    _policy_changes,  # noqa: F401  (registers policy import|diff|replay)
)
from ._ca import ca
from ._catalog import catalog
from ._edit import init, rule  # also adds policy show/block/allow/monitor/unblock and catalog search
from ._exception import exception
from ._keys import keys
from ._log import log
from ._pac import pac
from ._policy import policy
from ._proxy import proxy
from ._report import report
from ._violations import violations


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="aipolicy")
def main() -> None:
    """Enforce an organisation's AI-app policy at its web proxy.

    \b
    Example:
        aipolicy proxy                      # run the proxy with the shipped default policy
        aipolicy policy validate my.yaml    # check a policy file
        aipolicy policy test https://chat.deepseek.com/
    """


main.add_command(proxy)
main.add_command(policy)
main.add_command(catalog)
main.add_command(violations)
main.add_command(keys)
main.add_command(rule)
main.add_command(exception)
main.add_command(init)
main.add_command(pac)
main.add_command(ca)
main.add_command(log)
main.add_command(report)
