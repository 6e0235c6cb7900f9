"""Where the ``warn`` and ``quota`` controls keep their state: this process's memory, or a
directory shared with the other processes on the port (``aipolicy_state_dir``).

A part of the Enforcer, not an addon of its own: the Enforcer calls ``load``, ``configure`` and
``done``, and ``configure`` puts the acknowledgements and quota tracker to use into the ``Stores``
that the warn and quota parts read.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Protocol

from mitmproxy import ctx, exceptions

import aipolicy

logger = logging.getLogger("aipolicy")
OPTIONS = frozenset({"aipolicy_state_dir", "aipolicy_secret_file"})


class Controlled(Protocol):
    acknowledgements: aipolicy.Acknowledgements
    quotas: aipolicy.QuotaTracker


@dataclass
class Stores:
    """The warn and quota controls' state in use; SharedControls swaps it when its options change."""

    acknowledgements: aipolicy.Acknowledgements
    quotas: aipolicy.QuotaTracker


class SharedControls:
    def __init__(self, owner: Controlled) -> None:
        self.owner = owner
        self.state: aipolicy.SharedState | None = None
        self.settings = ("", "")  # (state dir, secret file) in force: the owner's in-memory objects

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option(
            "aipolicy_state_dir",
            str,
            "",
            "Directory whose warn acknowledgements, quota counters and form-token key are shared by every proxy "
            "process using it (aipolicy proxy --workers sets it). Empty: each process keeps its own, in memory.",
        )
        loader.add_option(
            "aipolicy_secret_file",
            str,
            "",
            "File with the key of the warning page's form tokens (at least 32 characters, mode 0600; created if "
            "missing), for proxies on several hosts that share a load balancer. Empty: STATE_DIR/secret, or a "
            "random key per process without a state directory.",
        )

    def configure(self, updated: set[str]) -> None:
        if not updated & OPTIONS:
            return
        directory, secret_file = ctx.options.aipolicy_state_dir, ctx.options.aipolicy_secret_file
        if (directory, secret_file) == self.settings:
            return  # unchanged, or rolled back after a refused value: keep the objects in use
        try:
            if directory:
                state = aipolicy.SharedState(directory, secret_file or None)
                acknowledgements: aipolicy.Acknowledgements = aipolicy.SharedAcknowledgements(state)
                quotas: aipolicy.QuotaTracker = aipolicy.SharedQuotaTracker(state)
            else:
                state = None
                key = aipolicy.ensure_secret(secret_file) if secret_file else os.urandom(32)
                acknowledgements = aipolicy.Acknowledgements(secret=key)
                quotas = self.owner.quotas if self.state is None else aipolicy.QuotaTracker()
        except aipolicy.SharedStateError as error:
            raise exceptions.OptionsError(f"aipolicy: {error}") from None
        self.done()
        self.state, self.settings = state, (directory, secret_file)
        self.owner.acknowledgements, self.owner.quotas = acknowledgements, quotas
        if state:
            logger.info(f"aipolicy: warn acknowledgements and quota counters shared in {state.directory}")

    def done(self) -> None:
        if self.state:
            self.state.close()
            self.state = None
