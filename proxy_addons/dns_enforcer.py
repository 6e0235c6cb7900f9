"""mitmproxy addon that enforces the policy on DNS queries (``mitmdump --mode dns``).

Each question's name is decided by the core like any host. A name the policy
blocks outright gets NXDOMAIN ("no such name": clients stop there, and no
address is cached that could later be used without the proxy); monitored names
resolve and are recorded. Names whose rules need more than the name (a path,
a model id) resolve: the decision for them is made where the HTTP request is
seen. If deciding fails, the answer is SERVFAIL (fail closed; resolvers retry).

A part of the Enforcer: it decides through the Enforcer (the policy in force, hot reload
included) and records through its recorder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mitmproxy import dns
from mitmproxy.net.dns import response_codes, types

import aipolicy
from aipolicy import Decision, RequestFacts

from .recorder import Recording

logger = logging.getLogger("aipolicy")


class DnsEnforcer:
    def __init__(self, decide: Callable[[RequestFacts], Decision], recorder: Recording) -> None:
        self.decide, self.recorder = decide, recorder

    def dns_request(self, flow: dns.DNSFlow) -> None:
        if "aipolicy" in flow.metadata:
            return
        try:
            self._enforce(flow)
        except Exception:
            logger.exception("aipolicy: error while deciding a DNS query; answering SERVFAIL (fail closed)")
            flow.metadata["aipolicy"] = None
            flow.response = flow.request.fail(response_codes.SERVFAIL)

    def _enforce(self, flow: dns.DNSFlow) -> None:
        client_ip = aipolicy.normalise_host(flow.client_conn.peername[0]) if flow.client_conn.peername else ""
        for question in flow.request.questions:
            facts = RequestFacts(hosts=(question.name,), scheme="dns", port=53, client_ip=client_ip)
            decision = self.decide(facts)
            if not decision.final or decision.action == "allow":
                continue
            flow.metadata["aipolicy"] = decision
            recorded = self._record(decision, facts, types.to_str(question.type))
            if decision.blocked or not recorded:  # a monitored name that cannot be recorded is refused too
                flow.response = flow.request.fail(response_codes.NXDOMAIN)
                return

    def _record(self, decision: Decision, facts: RequestFacts, query_type: str) -> bool:
        event = aipolicy.decision_event(decision, facts, stage="dns", proxy_id=self.recorder.proxy_id)
        event["dns_type"] = query_type
        return self.recorder.write(event)
