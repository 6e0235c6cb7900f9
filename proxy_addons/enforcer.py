"""mitmproxy addon that enforces an aipolicy policy.

Decides at the earliest hook that knows enough: ``http_connect`` (the CONNECT
target), ``tls_clienthello`` (the SNI; connections nothing needs to inspect
are tunnelled without decryption), ``requestheaders`` (Host header, path,
before any upload is buffered), ``request`` (the body, where a rule reads it).
Every block and monitor decision is written to the event log. Any exception
inside a hook blocks the flow and is logged: the addon fails closed.

The Enforcer is the one object in mitmproxy's chain (mitmproxy walks every addon
on every hook of every request); it hands each concern to a plain part:

    facts.Facts          flows -> RequestFacts, per-connection state
    reload.Reloader      the policy in force, hot reload
    recorder.Recorder    the event log and the SIEM sinks
    responses.Blocker    block responses and pages
    warn.Warn            the warn control's interstitial and acknowledgements
    quota.Quota          the quota control's budgets
    redact.Redact        DLP redaction of request bodies
    dns_enforcer         DNS mode
    feed.PolicyFeed      a signed policy bundle followed over HTTP(S)
    shared_controls      where warn and quota keep their state
    admin.Admin          /healthz and /metrics
    startup.StartupGate  connections held until start-up is over

Each part reaches the others only through the small protocols they declare
(``recorder.Recording``, ``feed.PolicyTarget``, ``shared_controls.Controlled``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Coroutine
from dataclasses import replace

from mitmproxy import connection, ctx, dns, http, tcp, tls
from mitmproxy.proxy import server_hooks

import aipolicy
from aipolicy import Decision, Policy, RequestFacts

from .admin import Admin
from .dns_enforcer import DnsEnforcer
from .facts import STREAM_ABOVE, Facts, RequestHead, content_length
from .feed import PolicyFeed
from .quota import METADATA as QUOTA_METADATA
from .quota import Quota
from .recorder import Recorder
from .redact import Redact
from .reload import Reloader
from .responses import Blocker, error_decision, json_refusal, unlogged
from .shared_controls import SharedControls, Stores
from .sinks import Sinks
from .startup import StartupGate
from .warn import Warn

logger = logging.getLogger("aipolicy")

OVERSIZE_KILL_FACTOR = 4  # declared bodies over this many times settings.inspect_max_bytes are refused unread
SCAN_IN_THREAD_ABOVE = 64 * 1024  # bytes of request body; smaller ones are decided on the event loop


class Enforcer:
    def __init__(self) -> None:
        self.decide = aipolicy.decide  # injectable: tests swap it to prove the addon fails closed
        self.clock = time.time  # injectable, for the time-based controls
        self.metrics = aipolicy.Metrics()
        self.recorder = Recorder(self.metrics, lambda: self.reloader.policy)
        self.reloader = Reloader(self.recorder, self.metrics, lambda: self.feed.policy_file)
        self.feed = PolicyFeed(self.reloader, lambda: self.startup.wait())
        self.facts = Facts(lambda: self.reloader.policy)
        self.blocker = Blocker(self.recorder, lambda: self.reloader.policy)
        self.stores = Stores(aipolicy.Acknowledgements(secret=os.urandom(32)), aipolicy.QuotaTracker())
        self.shared = SharedControls(self.stores)  # or both kept in a directory shared by the workers
        self.warn = Warn(self.stores, self.recorder, self.blocker, lambda: self.clock())
        self.quota = Quota(self.stores, self.recorder, self.blocker, lambda: self.clock())
        self.redact = Redact(self.recorder, self.blocker)
        self.startup = StartupGate(lambda: self.reloader.policy is not None)
        self.admin = Admin(
            self.metrics,
            lambda: aipolicy.health(self.reloader.hash, self.recorder.ok, running=self.startup.started()),
        )
        self.dns = DnsEnforcer(self._decide, self.recorder)  # --mode dns
        self._stages = self.metrics.stages  # requests seen per stage: plain counts, read when scraped
        self._count_decision = self.metrics.decision

    # --- what tests and operators read ------------------------------------------

    @property
    def policy(self) -> Policy | None:
        return self.reloader.policy

    @property
    def events(self) -> aipolicy.EventLog | None:
        return self.recorder.events

    @events.setter
    def events(self, events: aipolicy.EventLog | None) -> None:
        self.recorder.events = events

    @property
    def sinks(self) -> Sinks:
        return self.recorder.sinks

    @property
    def acknowledgements(self) -> aipolicy.Acknowledgements:
        return self.stores.acknowledgements

    @property
    def quotas(self) -> aipolicy.QuotaTracker:
        return self.stores.quotas

    # --- lifecycle ----------------------------------------------------------------

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        self.reloader.load(loader)
        self.recorder.load(loader)
        loader.add_option(
            "aipolicy_block_page",
            bool,
            False,
            "Show the block page for blocked HTTPS sites: decrypt the blocked connection instead of refusing the CONNECT "
            "(clients must trust the proxy's CA). Upstream servers are never contacted either way.",
        )
        self.feed.load(loader)
        self.shared.load(loader)
        self.admin.load(loader)

    def configure(self, updated: set[str]) -> None:
        self.reloader.configure(updated)
        self.recorder.configure(updated)
        if ctx.options.connection_strategy != "lazy":
            # A block must never depend on reaching, or even resolving, the upstream.
            ctx.options.connection_strategy = "lazy"
        if "stream_large_bodies" in ctx.options and ctx.options.stream_large_bodies:
            # mitmproxy would start sending a large body upstream before the request hook, where a
            # model or DLP rule reads it. Bodies no rule reads are streamed by this addon anyway.
            logger.warning(
                f"aipolicy: stream_large_bodies={ctx.options.stream_large_bodies} is turned off: it would send "
                "request bodies upstream before the policy's model and DLP rules could read them. aipolicy "
                f"streams every body no rule reads, and request and response bodies over {STREAM_ABOVE // 1024} KiB, itself."
            )
            ctx.options.stream_large_bodies = None
        self.feed.configure(updated)
        self.shared.configure(updated)
        self.admin.configure(updated)

    def running(self) -> None:
        self.reloader.running()
        self.feed.running()
        self.startup.running()
        self.recorder.running()

    async def done(self) -> None:
        self.reloader.done()
        self.feed.done()
        self.startup.done()
        await self.recorder.done()
        self.admin.done()
        self.shared.done()

    async def client_connected(self, client: connection.Client) -> None:
        await self.startup.client_connected(client)  # held until start-up is over and the policy loaded

    def client_disconnected(self, client: connection.Client) -> None:
        self.facts.forget(client)

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        await self.admin.server_connect(data)  # the admin listener is never reachable through the proxy

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self.admin.server_connected(data)

    def server_disconnected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self.admin.server_disconnected(data)

    # --- connection hooks ---------------------------------------------------------

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error:
            return
        state = self.facts.state(flow.client_conn)
        try:
            self._stages["connect"] += 1
            facts = self.facts.of_connection(
                flow.client_conn, (flow.request.host,), flow=flow, method="CONNECT", port=flow.request.port
            )
            state.user, state.groups = facts.user, facts.groups
            decision = self._decide(facts)
            if decision.blocked:
                if ctx.options.aipolicy_block_page:
                    state.pending, state.facts = decision, facts  # decrypt and show the page on the first request
                    return
                self._refuse_connect(flow, decision, facts)
        except Exception as error:
            self._fail_closed(flow, error, "connect")

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        client = data.context.client
        state = self.facts.state(client)
        if state.pending:
            return  # already known to be blocked: decrypt to show the page
        try:
            self._stages["tls"] += 1
            sni = data.client_hello.sni or ""
            server = data.context.server.address
            names = ((server[0],) if server else ()) + ((sni,) if sni else ())
            facts = replace(
                self.facts.of_connection(client, names, port=server[1] if server else 0),
                user=state.user,
                groups=state.groups,
            )
            state.sni = sni
            decision = self._decide(facts)
            self.recorder.evasion(decision, facts, "tls", (server[0] if server else "", sni, ""), doh_names=names)
            if decision.blocked or not decision.final or self._needs_requests(decision, facts):
                state.pending = decision if decision.blocked else None
                state.facts = facts
                return  # decrypt: the block page, or a rule that needs the request itself
            if decision.action == "monitor" or decision.exception:
                if not self.recorder.record(decision, facts, "tls", sni=sni):
                    state.pending = unlogged(decision)
                    state.facts = facts
                    return
            data.ignore_connection = True  # nothing to inspect: tunnel it untouched
        except Exception as error:
            logger.exception("aipolicy: error in tls_clienthello; the connection will be decrypted and blocked")
            server = data.context.server.address
            names = tuple(n for n in ((server[0] if server else ""), data.client_hello.sni or "") if n)
            state.pending = error_decision(error, self.reloader.hash, names)
            state.facts = RequestFacts(hosts=names)

    def tls_failed_client(self, data: tls.TlsData) -> None:
        state = self.facts.connections.get(data.conn.id)
        if state and state.pending and not state.recorded and state.facts:
            note = "the client did not complete TLS with the proxy (does it trust the proxy's CA?), so it saw no block page"
            self.recorder.record(state.pending, state.facts, "tls", sni=state.sni, note=note)
            state.recorded = True

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        state = self.facts.connections.get(flow.client_conn.id)
        if state and state.pending and not state.recorded and state.facts:
            self.recorder.record(state.pending, state.facts, "tcp", sni=state.sni)
            state.recorded = True
            flow.kill()

    def dns_request(self, flow: dns.DNSFlow) -> None:
        self.dns.dns_request(flow)

    # --- request hooks ------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or flow.request.data.method == b"CONNECT":
            return
        try:
            self._stages["request"] += 1
            self._enforce_request(flow)
        except Exception as error:
            self._fail_closed(flow, error, "request")

    def request(self, flow: http.HTTPFlow) -> Coroutine[None, None, None] | None:
        # Not a coroutine function: mitmproxy awaits what a hook returns only if it is awaitable, so
        # the usual request (decided at requestheaders) costs no coroutine.
        if flow.response or flow.error or not flow.live or "aipolicy_wait_body" not in flow.metadata:
            return None
        return self._request_with_body(flow)

    async def _request_with_body(self, flow: http.HTTPFlow) -> None:
        try:
            facts, head = self.facts.of_request(flow, with_body=True)
            raw = flow.request.raw_content or b""
            evaluate = functools.partial(
                aipolicy.evaluate,
                self._policy(),
                facts,
                raw,
                content_encoding=flow.request.headers.get("content-encoding", ""),
                decide=self._timed_decide,
                provisional=flow.metadata["aipolicy_wait_body"],
            )
            # a large body takes long to decode and scan: do it off the event loop
            evaluation = await asyncio.to_thread(evaluate) if len(raw) > SCAN_IN_THREAD_ABOVE else evaluate()
            self._act(flow, evaluation, head, with_body=True)
        except Exception as error:
            self._fail_closed(flow, error, "request")

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if response is None:
            return
        length: bytes | None = None
        alt_svc = False
        for name, value in response.data.headers.fields:  # one pass: each headers.get walks them all
            lowered = name.lower()
            if lowered == b"content-length":
                length = value if length is None else b"several"
            elif lowered == b"alt-svc":
                alt_svc = True
        if alt_svc:
            del response.headers["alt-svc"]  # never let a client learn of HTTP/3 and leave the proxy's view
        size = content_length(length.decode("latin-1").strip()) if length is not None else None
        if QUOTA_METADATA in flow.metadata:
            if size is not None:
                self.quota.count_bytes(flow, size)
            else:  # chunked or open-ended: count the bytes as they pass through
                response.stream = self.quota.byte_counter(flow)
                return
        if size is None or size > STREAM_ABOVE:
            response.stream = True  # responses are never inspected: stream big and open-ended ones (SSE)

    # --- the request sequence -------------------------------------------------------

    def _enforce_request(self, flow: http.HTTPFlow) -> None:
        """At the request's headers: act on the decision, or wait for the body a rule needs."""
        facts, head = self.facts.of_request(flow)
        evaluation = aipolicy.evaluate(
            self._policy(), facts, declared_size=head.declared_size, decide=self._timed_decide
        )
        if evaluation.needs_body:
            flow.metadata["aipolicy_wait_body"] = evaluation.decision  # let mitmproxy read it, then decide again
            return
        self._act(flow, evaluation, head, with_body=False)

    def _act(self, flow: http.HTTPFlow, evaluation: aipolicy.Evaluation, head: RequestHead, with_body: bool) -> None:
        """Carry out a request's final decision (once per request)."""
        decision, facts, note = evaluation.decision, evaluation.facts, evaluation.note
        policy = self._policy()
        state = self.facts.state(flow.client_conn)
        sni = state.sni or flow.client_conn.sni or ""
        doh_names = () if sni or flow.client_conn.tls else facts.hosts
        self.recorder.evasion(
            decision, facts, "request", ("", sni, head.hosts[0] if head.hosts else ""), flow, doh_names
        )
        if state.pending and not decision.blocked:
            # blocked for a reason the request alone does not show (an error, an unwritable log)
            decision = state.pending
        flow.metadata["aipolicy"] = decision
        if decision.blocked and not with_body and evaluation.oversize > OVERSIZE_KILL_FACTOR * policy.inspect_max_bytes:
            # mitmproxy reads a request's whole body before it sends a response set now: for a body this
            # large, close the connection instead of holding it in memory to answer.
            note = (
                f"a {evaluation.oversize:,}-byte body was refused unread: the connection was closed without a response"
            )
            self.recorder.record(decision, facts, "request", flow=flow, note=note)
            state.recorded = True
            flow.kill()
        elif decision.blocked:
            self.blocker.block(flow, decision, facts, note)
            state.recorded = True
        elif decision.action == "warn" and self.warn.handle(flow, decision, facts, policy, with_body):
            return
        elif decision.action == "quota" and self.quota.over(flow, decision, facts, head.declared_size, policy):
            return
        elif decision.action == "redact":
            self.redact.apply(flow, decision, facts, evaluation.redacted, note)
        elif (decision.action == "monitor" or decision.exception) and not self.recorder.record(
            decision, facts, "request", flow=flow, note=note
        ):
            self.blocker.unlogged(flow, decision, facts)
        elif not with_body and facts.body is None and head.large_or_open_ended:
            flow.request.stream = True  # decided without the body: let big uploads stream through untouched

    # --- shared steps -----------------------------------------------------------------

    def _policy(self) -> Policy:
        policy = self.reloader.policy
        if policy is None:
            raise RuntimeError("no policy loaded")
        return policy

    def _decide(self, facts: RequestFacts) -> Decision:
        return self._timed_decide(self._policy(), facts)

    def _timed_decide(self, policy: Policy, facts: RequestFacts) -> Decision:
        """``decide`` (or what a test swapped in), counted and timed for /metrics."""
        start = time.perf_counter()
        decision = self.decide(policy, facts)
        self._count_decision(decision.action, decision.rule, time.perf_counter() - start)
        return decision

    def _needs_requests(self, decision: Decision, facts: RequestFacts) -> bool:
        """Must the connection be decrypted for the warn or quota rule to see its requests?"""
        if decision.action == "quota":
            return True
        return decision.action == "warn" and not self.warn.acknowledged(decision, facts)

    def _refuse_connect(self, flow: http.HTTPFlow, decision: Decision, facts: RequestFacts) -> None:
        flow.metadata["aipolicy"] = decision
        flow.response = json_refusal(decision)
        self.recorder.record(decision, facts, "connect", flow=flow)

    def _fail_closed(self, flow: http.HTTPFlow, error: Exception, stage: str) -> None:
        logger.exception(f"aipolicy: error while deciding {flow.request.host!r}; blocking (fail closed)")
        names = tuple(n for n in (flow.request.host, flow.request.host_header or "") if n)
        decision = error_decision(error, self.reloader.hash, names)
        facts = RequestFacts(
            hosts=names,
            path=flow.request.path if stage == "request" else None,
            method=flow.request.method,
            client_ip=flow.client_conn.peername[0] if flow.client_conn.peername else "",
        )
        flow.response = json_refusal(decision)
        try:
            self.recorder.record(decision, facts, stage, flow=flow)
        except Exception:
            logger.exception("aipolicy: could not record the error event")
