"""The ``aipolicy`` command: every group and command, put together here and nowhere else.

Command modules only define commands (and empty groups); which group a command belongs to is
written below, so the whole tree reads in one place and no import has a side effect.
"""

from __future__ import annotations

import click

from aipolicy import __version__

from ._ca import ca
from ._ca import export as ca_export
from ._catalog import catalog, list_apps, show_app
from ._distribute import sign, sync, verify_bundle
from ._edit import (
    allow,
    block,
    init,
    monitor,
    rule,
    rule_add,
    rule_disable,
    rule_enable,
    rule_move,
    rule_remove,
    unblock,
)
from ._edit import search as catalog_search
from ._edit import show as policy_show
from ._exception import add as exception_add
from ._exception import exception, list_exceptions
from ._exception import remove as exception_remove
from ._keys import generate, keys
from ._log import log, verify
from ._pac import pac
from ._policy import policy, test_url, validate
from ._policy_changes import diff, import_list, replay
from ._proxy import proxy
from ._report import report
from ._violations import export, summary, tail, violations


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


TREE: tuple[tuple[click.Group, tuple[click.Command, ...]], ...] = (
    (main, (proxy, policy, catalog, violations, keys, rule, exception, init, pac, ca, log, report)),
    (
        policy,
        (validate, test_url, policy_show, block, allow, monitor, unblock)  # reading and editing
        + (import_list, diff, replay)  # lists, comparisons, what-ifs
        + (sign, verify_bundle, sync),  # distribution
    ),
    (catalog, (list_apps, show_app, catalog_search)),
    (violations, (summary, export, tail)),
    (keys, (generate,)),
    (rule, (rule_add, rule_remove, rule_enable, rule_disable, rule_move)),
    (exception, (exception_add, exception_remove, list_exceptions)),
    (ca, (ca_export,)),
    (log, (verify,)),
)

for group, commands in TREE:
    for command in commands:
        group.add_command(command)
