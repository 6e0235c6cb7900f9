from __future__ import annotations

import click

from aipolicy import __version__

from ._catalog import catalog
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
main.add_command(report)
