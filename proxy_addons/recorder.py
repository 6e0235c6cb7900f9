"""Recording: the event log (with its rotation) and the SIEM sinks, and the events the other
parts write through ``Recording``. An event that cannot be written makes the caller fail closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from mitmproxy import ctx, exceptions, http

import aipolicy
from aipolicy import Decision, EventLog, EventLogError, Policy, RequestFacts

from .sinks import Sinks

logger = logging.getLogger("aipolicy")
OPTIONS = frozenset({"aipolicy_log", "aipolicy_log_max_size", "aipolicy_log_max_age"})
_HOSTNAME = aipolicy.default_proxy_id()


class Recording(Protocol):
    """What the other parts need of the recorder."""

    @property
    def proxy_id(self) -> str: ...

    def write(self, event: dict[str, object]) -> bool: ...

    def record(
        self,
        decision: Decision,
        facts: RequestFacts,
        stage: str,
        *,
        flow: http.HTTPFlow | None = None,
        sni: str = "",
        note: str = "",
    ) -> bool: ...

    def event(self, decision: Decision, facts: RequestFacts, flow: http.HTTPFlow) -> dict[str, object]: ...


class Recorder:
    def __init__(self, metrics: aipolicy.Metrics, policy: Callable[[], Policy | None]) -> None:
        self.metrics, self.policy = metrics, policy
        self.events: EventLog | None = None
        self.log_ok = True  # the last event written reached the log
        self.sinks = Sinks(metrics, self.system)

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option(
            "aipolicy_log",
            str,
            "aipolicy-events.jsonl",
            "Event log file (JSON Lines), appended to. '-' writes to standard output.",
        )
        loader.add_option(
            "aipolicy_log_max_size",
            str,
            "0",
            "Rotate the event log before it grows past this size (bytes, or 100K, 100M, 1G: powers of 1000; "
            "KiB, MiB, GiB: powers of 1024); 0: never. "
            "Rotated files are renamed NAME-YYYYMMDDHHMMSSmmm (UTC) and gzip-compressed; the hash chain runs on.",
        )
        loader.add_option(
            "aipolicy_log_max_age",
            str,
            "0",
            "Rotate the event log once its first line is older than this (seconds, or 30m, 24h, 7d); 0: never.",
        )
        loader.add_option("aipolicy_proxy_id", str, "", "This proxy's name in events. Empty: the host name.")
        self.sinks.load(loader)

    def configure(self, updated: set[str]) -> None:
        if "aipolicy_log" in updated:
            target = ctx.options.aipolicy_log
            max_bytes, max_age = _rotation()
            try:
                events = EventLog(
                    None if target == "-" else target, max_bytes=max_bytes, max_age=max_age, proxy_id=self.proxy_id
                )
            except EventLogError as error:
                raise exceptions.OptionsError(str(error)) from None
            if self.events:
                self.events.close()
            self.events, self.log_ok = events, True
        elif updated & OPTIONS and self.events:
            self.events.max_bytes, self.events.max_age = _rotation()
        self.sinks.configure(updated)

    def running(self) -> None:
        self.sinks.running()

    async def done(self) -> None:
        if self.events:
            self.events.close()
        await self.sinks.done()

    @property
    def proxy_id(self) -> str:
        return ctx.options.aipolicy_proxy_id or _HOSTNAME

    @property
    def ok(self) -> bool:
        """The event log is open and the last write reached it."""
        return self.log_ok and self.events is not None

    def write(self, event: dict[str, object]) -> bool:
        """Log the event and hand it to the sinks; False if the log could not take it."""
        self.sinks.event(event, self.proxy_id)  # never waits: each sink queues, or drops and counts
        if self.events is None:
            logger.error("aipolicy: no event log open; event lost: %s", event.get("event"))
            return False
        try:
            self.events.write(event)
        except EventLogError as error:
            logger.error(f"aipolicy: {error}; AI-app traffic is blocked until events can be written")
            self.metrics.log_failures.inc()
            self.log_ok = False
            return False
        self.log_ok = True
        self.metrics.events.labels(str(event.get("event"))).inc()
        return True

    def system(self, kind: str, message: str, **extra: object) -> bool:
        policy = self.policy()
        return self.write(
            aipolicy.system_event(kind, message, policy=policy.hash if policy else "", proxy_id=self.proxy_id, **extra)
        )

    def event(self, decision: Decision, facts: RequestFacts, flow: http.HTTPFlow) -> dict[str, object]:
        """A request's decision event, for a caller that adds fields before writing it."""
        return aipolicy.decision_event(
            decision,
            facts,
            stage="request",
            sni=flow.client_conn.sni or "",
            user_agent=flow.request.headers.get("user-agent", ""),
            proxy_id=self.proxy_id,
            log_query=self._log_query(),
        )

    def record(
        self,
        decision: Decision,
        facts: RequestFacts,
        stage: str,
        *,
        flow: http.HTTPFlow | None = None,
        sni: str = "",
        note: str = "",
    ) -> bool:
        """Write the decision's event; False if it could not be written (the caller then fails closed)."""
        user_agent = flow.request.headers.get("user-agent", "") if flow is not None else ""
        if flow is not None and not sni:
            sni = flow.client_conn.sni or ""
        event = aipolicy.decision_event(
            decision,
            facts,
            stage=stage,
            sni=sni,
            user_agent=user_agent,
            proxy_id=self.proxy_id,
            log_query=self._log_query(),
            note=note,
        )
        return self.write(event)

    def evasion(
        self,
        decision: Decision,
        facts: RequestFacts,
        stage: str,
        names: tuple[str, str, str],
        flow: http.HTTPFlow | None = None,
        doh_names: tuple[str, ...] = (),
    ) -> None:
        """An ``evasion`` event for each sign that the client hides where it goes.
        ``names``: the CONNECT target, the SNI and the Host header."""
        policy = self.policy()
        assert policy is not None
        target, sni, host_header = names
        for kind in aipolicy.evasion_signals(policy, target, sni, host_header, doh_names):
            event = aipolicy.decision_event(decision, facts, stage=stage, sni=sni, proxy_id=self.proxy_id)
            event.update(event="evasion", evasion=kind, host_header=host_header[:255] or None)
            if not decision.app:  # an allowed request carries no app: name the one the signal is about
                app = _app_for(policy, (*doh_names, sni, host_header))
                if app is not None:
                    event.update(
                        app=app.id, vendor=app.vendor, category=app.categories[0], categories=list(app.categories)
                    )
            if flow is not None:
                event["user_agent"] = flow.request.headers.get("user-agent", "")[:512] or None
            self.write(event)

    def _log_query(self) -> bool:
        policy = self.policy()
        return bool(policy and policy.log_query)


def _app_for(policy: Policy, names: tuple[str, ...]) -> aipolicy.App | None:
    for name in names:
        app = policy.catalog.app_for_host(aipolicy.normalise_host(name)) if name else None
        if app is not None:
            return app
    return None


def _rotation() -> tuple[int, float]:
    """(max_bytes, max_age) of the event log, from the options."""
    try:
        return aipolicy.parse_log_size(ctx.options.aipolicy_log_max_size), aipolicy.parse_log_age(
            ctx.options.aipolicy_log_max_age
        )
    except ValueError as error:
        raise exceptions.OptionsError(f"aipolicy_log_max_size / aipolicy_log_max_age: {error}") from None
