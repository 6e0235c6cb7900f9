"""The ``warn`` control: an interstitial the user must acknowledge (with a justification, if the
rule asks for one) before the app is reached; the acknowledgement is remembered for a while.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import replace

from mitmproxy import http

import aipolicy
from aipolicy import Decision, Policy, RequestFacts

from .recorder import Recording
from .responses import Blocker, block_headers, human_duration, json_refusal, wants_page
from .shared_controls import Controlled

PROCEED_PATH = "/.aipolicy/proceed"  # where the warning page's form posts its acknowledgement
WARN_EVENT_INTERVAL = 60.0  # seconds
MAX_WARNED = 100_000  # (subject, app) pairs remembered for the one-event-a-minute limit


class Warn:
    def __init__(self, stores: Controlled, recorder: Recording, blocker: Blocker, clock: Callable[[], float]) -> None:
        self.stores, self.recorder, self.blocker, self.clock = stores, recorder, blocker, clock
        self.warned: dict[tuple[str, str], float] = {}  # (subject, app) -> when a warn event was last written

    def acknowledged(self, decision: Decision, facts: RequestFacts) -> bool:
        """Has this user (or client) acknowledged the warning for this app, and does it still hold?"""
        subject = facts.user or facts.client_ip
        return self.stores.acknowledgements.acknowledged(subject, decision.app or decision.host, self.clock())

    def handle(
        self, flow: http.HTTPFlow, decision: Decision, facts: RequestFacts, policy: Policy, with_body: bool
    ) -> bool:
        """True if the request was answered (the warning, or the acknowledgement); False lets it pass.
        A posted acknowledgement whose form is not read yet sets ``aipolicy_wait_body``."""
        rule = policy.rule(decision.rule)
        settings = rule.warn if rule and rule.warn else aipolicy.WarnSettings()
        who = (facts.user or facts.client_ip, decision.app or decision.host, self.clock())
        request = flow.request
        if request.path.split("?", 1)[0] == PROCEED_PATH and request.method == "POST":
            if not with_body:
                flow.metadata["aipolicy_wait_body"] = decision  # read the form first
                return True
            return self._proceed(flow, decision, facts, settings, who)
        if self.stores.acknowledgements.acknowledged(*who):
            return False
        self._show(flow, decision, facts, settings, who)
        return True

    def _proceed(
        self,
        flow: http.HTTPFlow,
        decision: Decision,
        facts: RequestFacts,
        settings: aipolicy.WarnSettings,
        who: tuple[str, str, float],
    ) -> bool:
        subject, app, now = who
        acknowledgements = self.stores.acknowledgements
        raw = flow.request.raw_content or b""
        form = urllib.parse.parse_qs(raw[:16384].decode("utf-8", "replace"), max_num_fields=10)
        token, back = form.get("token", [""])[0], form.get("return", ["/"])[0]
        justification = aipolicy.clean_justification(form.get("justification", [""])[0])
        if not acknowledgements.valid_token(token, subject, app, now):
            error = "This confirmation has expired or did not come from this page. Please confirm again."
        elif settings.justification == "required" and not justification:
            error = "Please give a business justification to continue."
        else:
            acknowledgements.remember(subject, app, now, settings.remember)
            proceed = replace(
                decision, action="proceed", reason=f"the user acknowledged the warning of rule {decision.rule}"
            )
            event = self.recorder.event(proceed, facts, flow)
            event["justification"] = justification or None
            if not self.recorder.write(event):
                self.blocker.unlogged(flow, decision, facts)
                return True
            location = back if back.startswith("/") and not back.startswith(("//", "/\\")) else "/"
            flow.response = http.Response.make(303, b"", {"location": location, "cache-control": "no-store"})
            return True
        self._show(flow, decision, facts, settings, who, error=error, status=400)
        return True

    def _show(
        self,
        flow: http.HTTPFlow,
        decision: Decision,
        facts: RequestFacts,
        settings: aipolicy.WarnSettings,
        who: tuple[str, str, float],
        error: str = "",
        status: int = 403,
    ) -> None:
        subject, app, now = who
        request = flow.request
        if wants_page(request):
            path = request.path if request.path.split("?", 1)[0] != PROCEED_PATH else "/"
            body = aipolicy.warn_page(
                decision,
                request.pretty_url.split("?", 1)[0],
                action=PROCEED_PATH,
                token=self.stores.acknowledgements.token(subject, app, now),
                return_to=path,
                justification=settings.justification,
                message=settings.message,
                remember=human_duration(settings.remember),
                error=error,
            )
            flow.response = http.Response.make(status, body, block_headers(decision, "text/html; charset=utf-8"))
        else:
            hint = f"Open {request.scheme}://{request.pretty_host}/ in a browser and confirm to continue."
            flow.response = json_refusal(
                decision,
                lead="Your organisation's AI policy asks you to confirm first",
                code="aipolicy_warn",
                hint=hint,
            )
        last = self.warned.get((subject, app), 0.0)
        if now - last >= WARN_EVENT_INTERVAL:  # one warn event per user and app a minute, not one per asset
            if len(self.warned) > MAX_WARNED:
                self.warned.clear()
            self.warned[(subject, app)] = now
            self.recorder.record(decision, facts, "request", flow=flow)
