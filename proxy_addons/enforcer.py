"""mitmproxy addon that enforces an aipolicy policy.

Decides at the earliest hook that knows enough: ``http_connect`` (the CONNECT
target), ``tls_clienthello`` (the SNI; connections nothing needs to inspect
are tunnelled without decryption), ``requestheaders`` (Host header, path,
before any upload is buffered). Every block and monitor decision is written to
the event log. Any exception inside a hook blocks the flow and is logged: the
addon fails closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import urllib.parse
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from mitmproxy import connection, ctx, dns, exceptions, http, tcp, tls
from mitmproxy.proxy import server_hooks

import aipolicy
from aipolicy import Decision, EventLog, EventLogError, Policy, PolicyError, RequestFacts

from .admin import Admin
from .dns_enforcer import DnsEnforcer
from .feed import PolicyFeed
from .shared_controls import SharedControls
from .sinks import Sinks
from .startup import StartupGate

logger = logging.getLogger("aipolicy")


@dataclass
class ConnectionState:
    """What the addon knows about one client connection across its hooks."""

    pending: Decision | None = None  # blocked at connection level, decrypted to show the page
    facts: RequestFacts | None = None
    sni: str = ""
    user: str = ""  # from proxy authentication on the CONNECT, for events at the TLS stage
    groups: tuple[str, ...] = ()
    recorded: bool = False
    names: tuple[str, ...] = field(default_factory=tuple)
    client_ip: str | None = None  # the client's address, normalised once per connection


class RequestHead(NamedTuple):
    """The few request headers the hot path reads, found in one pass over the raw header list
    (each ``request.headers.get`` walks and decodes the whole list again)."""

    hosts: tuple[str, ...]  # every Host header value; on HTTP/2 and 3 the :authority comes first
    length: str | None  # Content-Length as sent (several joined by ", "); None when absent
    chunked: bool  # a Transfer-Encoding header is present

    @property
    def declared_size(self) -> int:
        """The Content-Length if it is one number, else 0."""
        return _length(self.length) or 0

    @property
    def large_or_open_ended(self) -> bool:
        """No usable Content-Length, or one above STREAM_ABOVE."""
        size = _length(self.length)
        return size is None or size > STREAM_ABOVE


def _length(value: str | None) -> int | None:
    """A Content-Length value that is one number, else None (absent, repeated, or not ASCII digits:
    str.isdigit() accepts "²", which int() refuses, and "١٢", which int() takes)."""
    return int(value) if value and value.isascii() and value.isdigit() else None


def read_head(request: http.Request) -> RequestHead:
    data = request.data
    hosts: tuple[str, ...] = ()
    length: bytes | None = None
    chunked = False
    for name, value in data.headers.fields:
        lowered = name.lower()
        if lowered == b"host":
            hosts = (*hosts, value.decode("utf-8", "surrogateescape"))
        elif lowered == b"content-length":
            length = value if length is None else length + b", " + value
        elif lowered == b"transfer-encoding":
            chunked = True
    if data.http_version in (b"HTTP/2.0", b"HTTP/3") and data.authority:
        hosts = (data.authority.decode("utf-8", "surrogateescape"), *hosts)
    return RequestHead(hosts, None if length is None else length.decode("latin-1").strip(), chunked)


class Enforcer:
    def __init__(self) -> None:
        self.decide = aipolicy.decide  # injectable: tests swap it to prove the addon fails closed
        self.policy: Policy | None = None
        self.events: EventLog | None = None
        self.connections: dict[str, ConnectionState] = {}
        self.watcher: asyncio.Task[None] | None = None
        self.fingerprint: tuple[object, ...] = ()
        self.rejected: tuple[object, ...] = ()
        self.reload_interval = 2.0
        self.clock = time.time  # injectable, for the time-based controls
        self.acknowledgements = aipolicy.Acknowledgements(secret=os.urandom(32))
        self.quotas = aipolicy.QuotaTracker()
        self.shared = SharedControls(self)  # or both kept in a directory shared by the workers: shared_controls.py
        self.warned: dict[tuple[str, str], float] = {}  # (subject, app) -> when a warn event was last written
        self.feed = PolicyFeed(self)  # a signed policy bundle followed over HTTP(S): see feed.py
        self.metrics = aipolicy.Metrics()
        self.log_ok = True  # the last event written reached the log
        self.sinks = Sinks(self.metrics, self._system)
        self.startup = StartupGate(lambda: self.policy is not None)  # holds connections until start-up is over
        self.admin = Admin(
            self.metrics,
            lambda: aipolicy.health(
                self._hash(), self.log_ok and self.events is not None, running=self.startup.started()
            ),
        )
        self.dns = DnsEnforcer(self)  # --mode dns
        # Not nested addons: mitmproxy walks every addon for every hook of every request, so the
        # Enforcer calls its parts from its own hooks (about 10 µs a request less, measured).
        self._stages = self.metrics.stages  # requests seen per stage: plain counts, read when scraped
        self._count_decision = self.metrics.decision

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option("aipolicy_policy", str, "", "Policy file to enforce. Empty: the shipped default policy.")
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
            "Rotate the event log before it grows past this size (bytes, or 100K, 100M, 1G); 0: never. "
            "Rotated files are renamed NAME-YYYYMMDDHHMMSSmmm (UTC) and gzip-compressed; the hash chain runs on.",
        )
        loader.add_option(
            "aipolicy_log_max_age",
            str,
            "0",
            "Rotate the event log once its first line is older than this (seconds, or 30m, 24h, 7d); 0: never.",
        )
        loader.add_option(
            "aipolicy_reload",
            str,
            "2",
            "Seconds between checks of the policy files for changes; 0 turns hot reload off.",
        )
        loader.add_option(
            "aipolicy_block_page",
            bool,
            False,
            "Show the block page for blocked HTTPS sites: decrypt the blocked connection instead of refusing the CONNECT "
            "(clients must trust the proxy's CA). Upstream servers are never contacted either way.",
        )
        loader.add_option("aipolicy_proxy_id", str, "", "This proxy's name in events. Empty: the host name.")
        self.feed.load(loader)
        self.shared.load(loader)
        self.sinks.load(loader)
        self.admin.load(loader)

    def configure(self, updated: set[str]) -> None:
        if "aipolicy_policy" in updated:
            self.policy = self._load(self._policy_path())
            self.fingerprint = _fingerprint(self.policy.files)
            self._summary()
        if "aipolicy_log" in updated:
            target = ctx.options.aipolicy_log
            max_bytes, max_age = self._rotation()
            try:
                events = EventLog(
                    None if target == "-" else target, max_bytes=max_bytes, max_age=max_age, proxy_id=self._proxy_id()
                )
            except EventLogError as error:
                raise exceptions.OptionsError(str(error)) from None
            if self.events:
                self.events.close()
            self.events, self.log_ok = events, True
        elif updated & {"aipolicy_log_max_size", "aipolicy_log_max_age"} and self.events:
            self.events.max_bytes, self.events.max_age = self._rotation()
        if "aipolicy_reload" in updated:
            try:
                self.reload_interval = float(ctx.options.aipolicy_reload)
            except ValueError:
                raise exceptions.OptionsError(
                    f"aipolicy_reload must be a number of seconds, got {ctx.options.aipolicy_reload!r}"
                ) from None
            if self.reload_interval < 0:
                raise exceptions.OptionsError("aipolicy_reload must not be negative")
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
        self.sinks.configure(updated)
        self.admin.configure(updated)

    @staticmethod
    def _rotation() -> tuple[int, float]:
        """(max_bytes, max_age) of the event log, from the options."""
        try:
            return aipolicy.parse_log_size(ctx.options.aipolicy_log_max_size), aipolicy.parse_log_age(
                ctx.options.aipolicy_log_max_age
            )
        except ValueError as error:
            raise exceptions.OptionsError(f"aipolicy_log_max_size / aipolicy_log_max_age: {error}") from None

    def _policy_path(self) -> str:
        return self.feed.policy_file or ctx.options.aipolicy_policy or str(aipolicy.default_policy())

    @staticmethod
    def _load(path: str) -> Policy:
        try:
            policy = aipolicy.load_policy(path)
        except PolicyError as error:
            raise exceptions.OptionsError(f"aipolicy: policy {path!r} does not load:\n{error}") from None
        for warning in policy.warnings:
            logger.warning(f"aipolicy: {warning}")
        return policy

    def _summary(self) -> None:
        policy = self.policy
        assert policy is not None
        actions = {a: sum(r.action == a for r in policy.rules) for a in ("block", "monitor", "allow")}
        self.metrics.loaded(policy.hash, policy.path, len(policy.rules))
        logger.info(
            f"aipolicy: enforcing {policy.path} (policy {policy.hash}): {len(policy.rules)} rules "
            f"({actions['block']} block, {actions['monitor']} monitor, {actions['allow']} allow), "
            f"{policy.hosts.size:,} host patterns, default {policy.default}"
        )

    def running(self) -> None:
        if self.reload_interval > 0 and self.watcher is None:
            self.watcher = asyncio.get_running_loop().create_task(self._watch())
        self.feed.running()
        self.startup.running()
        self.sinks.running()

    async def done(self) -> None:
        if self.watcher:
            self.watcher.cancel()
        self.feed.done()
        if self.events:
            self.events.close()
        self.startup.done()
        await self.sinks.done()
        self.admin.done()
        self.shared.done()

    async def client_connected(self, client: connection.Client) -> None:
        await self.startup.client_connected(client)  # held until start-up is over and the policy loaded

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        await self.admin.server_connect(data)  # the admin listener is never reachable through the proxy

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self.admin.server_connected(data)

    def server_disconnected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self.admin.server_disconnected(data)

    # --- hot reload -------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(max(self.reload_interval, 0.2))
            try:
                await self._reload_if_changed()
            except Exception:  # keep watching whatever happens; the last good policy stays
                logger.exception("aipolicy: policy reload failed")

    async def _reload_if_changed(self) -> None:
        if self.feed.policy_file:
            return  # a followed feed's policy changes only through a verified bundle
        files = self.policy.files if self.policy else (self._policy_path(),)
        current = _fingerprint(files)
        if (current == self.fingerprint and not (self.policy and self.policy.stale)) or current == self.rejected:
            return  # unchanged (and no rule has expired since it was loaded), or already rejected
        path = self._policy_path()
        try:
            policy = await asyncio.to_thread(aipolicy.load_policy, path)
        except PolicyError as error:
            self.rejected = current
            self.reject(path, str(error), file=path)
            return
        self.install(policy, f"policy reloaded from {path}")

    def install(self, policy: Policy, message: str, **extra: object) -> None:
        """Enforce policy from now on and record a policy_loaded event (hot reload, the policy feed)."""
        old = self._hash()
        self.policy, self.fingerprint, self.rejected = policy, _fingerprint(policy.files), ()
        logger.warning(f"aipolicy: policy reloaded: {old} -> {policy.hash}")
        self._summary()
        self._write(
            aipolicy.system_event(
                "policy_loaded", message, policy=policy.hash, proxy_id=self._proxy_id(), previous=old, **extra
            )
        )

    def reject(self, origin: str, reason: str, **extra: object) -> None:
        """Record a policy_rejected event; the policy in force stays."""
        logger.error(f"aipolicy: new policy {origin!r} rejected; still enforcing {self._hash()}:\n{reason}")
        self._write(
            aipolicy.system_event("policy_rejected", reason, policy=self._hash(), proxy_id=self._proxy_id(), **extra)
        )

    # --- hooks ------------------------------------------------------------

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error:
            return
        state = self._state(flow.client_conn)
        try:
            self._stages["connect"] += 1
            facts = self._facts(
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
        state = self._state(client)
        if state.pending:
            return  # already known to be blocked: decrypt to show the page
        try:
            self._stages["tls"] += 1
            sni = data.client_hello.sni or ""
            server = data.context.server.address
            names = ((server[0],) if server else ()) + ((sni,) if sni else ())
            facts = replace(
                self._facts(client, names, port=server[1] if server else 0), user=state.user, groups=state.groups
            )
            state.sni = sni
            decision = self._decide(facts)
            self._record_evasion(decision, facts, "tls", server[0] if server else "", sni, "", doh_names=names)
            if decision.blocked or not decision.final or self._needs_requests(decision, facts):
                state.pending = decision if decision.blocked else None
                state.facts = facts
                return  # decrypt: the block page, or a rule that needs the request itself
            if decision.action == "monitor" or decision.exception:
                if not self._record(decision, facts, "tls", sni=sni):
                    state.pending = _unlogged(decision)
                    state.facts = facts
                    return
            data.ignore_connection = True  # nothing to inspect: tunnel it untouched
        except Exception as error:
            logger.exception("aipolicy: error in tls_clienthello; the connection will be decrypted and blocked")
            server = data.context.server.address
            names = tuple(n for n in ((server[0] if server else ""), data.client_hello.sni or "") if n)
            state.pending = _error_decision(error, self._hash(), names)
            state.facts = RequestFacts(hosts=names)

    def tls_failed_client(self, data: tls.TlsData) -> None:
        state = self.connections.get(data.conn.id)
        if state and state.pending and not state.recorded and state.facts:
            note = "the client did not complete TLS with the proxy (does it trust the proxy's CA?), so it saw no block page"
            self._record(state.pending, state.facts, "tls", sni=state.sni, note=note)
            state.recorded = True

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
            decided = None
            if len(flow.request.raw_content or b"") > SCAN_IN_THREAD_ABOVE:
                # a large body takes long to decode and scan: do it off the event loop
                facts, _, _ = self._request_facts(flow, with_body=True)
                decided = await asyncio.to_thread(self._decide_and_redact, facts)
            self._enforce_request(flow, with_body=True, decided=decided)
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
        size = _length(length.decode("latin-1").strip()) if length is not None else None
        if "aipolicy_quota" in flow.metadata:
            if size is not None:
                self._count_bytes(flow, size)
            else:  # chunked or open-ended: count the bytes as they pass through
                response.stream = self._byte_counter(flow)
                return
        if size is None or size > STREAM_ABOVE:
            response.stream = True  # responses are never inspected: stream big and open-ended ones (SSE)

    def _byte_counter(self, flow: http.HTTPFlow) -> Callable[[bytes], bytes]:
        """A response stream function that counts the bytes passing, charged in batches of
        COUNT_BATCH bytes and at the end (mitmproxy passes b"" then): with shared state each
        charge is a database write, so not one per chunk."""
        pending = 0

        def count(chunk: bytes) -> bytes:
            nonlocal pending
            pending += len(chunk)
            if pending and (not chunk or pending >= COUNT_BATCH):
                self._count_bytes(flow, pending)
                pending = 0
            return chunk

        return count

    def dns_request(self, flow: dns.DNSFlow) -> None:
        self.dns.dns_request(flow)

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        state = self.connections.get(flow.client_conn.id)
        if state and state.pending and not state.recorded and state.facts:
            self._record(state.pending, state.facts, "tcp", sni=state.sni)
            state.recorded = True
            flow.kill()

    def client_disconnected(self, client: connection.Client) -> None:
        self.connections.pop(client.id, None)

    # --- decisions and actions ----------------------------------------------

    def _request_facts(self, flow: http.HTTPFlow, with_body: bool) -> tuple[RequestFacts, int, RequestHead]:
        """The facts of a request (with its decoded body, if read), its size if too large to
        inspect, and the headers the hot path reads."""
        request = flow.request
        client = flow.client_conn
        head = read_head(request)
        host = request.data.host
        sni = self._state(client).sni or client.sni or ""
        if not sni and len(head.hosts) == 1 and _same_host(head.hosts[0], host):
            names: tuple[str, ...] = (host,)  # the usual plain-HTTP request: one name, said twice
        else:
            names = tuple(dict.fromkeys(n for n in (host, sni, *head.hosts) if n))
        body, oversize = self._body(flow) if with_body else (_known_empty_body(request, head), 0)
        facts = self._facts(
            client,
            names,
            flow=flow,
            method=request.method,
            port=request.data.port,
            path=request.path,
            body=body,
        )
        return facts, oversize, head

    def _decide_and_redact(self, facts: RequestFacts) -> tuple[RequestFacts, Decision, bytes | None]:
        """The decision and, for a redact decision, the redacted body: pure work, safe in a thread."""
        decision = self._decide(facts)
        redacted = self._redacted_body(decision, facts) if decision.action == "redact" else None
        return facts, decision, redacted

    def _enforce_request(
        self,
        flow: http.HTTPFlow,
        with_body: bool = False,
        decided: tuple[RequestFacts, Decision, bytes | None] | None = None,
    ) -> None:
        request = flow.request
        state = self._state(flow.client_conn)
        redacted = None
        if decided is not None:
            facts, decision, redacted = decided
            oversize = 0 if facts.body is not None else len(request.raw_content or b"")
            head = read_head(request)
        else:
            facts, oversize, head = self._request_facts(flow, with_body)
            decision = self._decide(facts)
        body = facts.body
        if not decision.final and self.policy:
            oversize = oversize or head.declared_size  # only a request whose body a rule needs is sized
            if oversize > self.policy.inspect_max_bytes:
                decision = aipolicy.decide_oversize(self.policy, facts, oversize)
        if not decision.final and not with_body:
            flow.metadata["aipolicy_wait_body"] = True  # a model rule needs the body: let mitmproxy read it
            return
        if with_body or decision.final:  # once per request
            sni = state.sni or flow.client_conn.sni or ""
            host_header = head.hosts[0] if head.hosts else ""
            doh_names = () if sni or flow.client_conn.tls else facts.hosts
            self._record_evasion(decision, facts, "request", "", sni, host_header, flow, doh_names)
        if state.pending and not decision.blocked:
            # blocked for a reason the request alone does not show (an error, an unwritable log)
            decision = state.pending
        flow.metadata["aipolicy"] = decision
        if decision.blocked and not with_body and oversize > OVERSIZE_KILL_FACTOR * self._inspect_limit():
            # mitmproxy reads a request's whole body before it sends a response set now: for a body this
            # large, close the connection instead of holding it in memory to answer.
            note = f"a {oversize:,}-byte body was refused unread: the connection was closed without a response"
            self._record(decision, facts, "request", flow=flow, note=note)
            state.recorded = True
            flow.kill()
            return
        if decision.blocked:
            self._block(flow, decision, facts)
            state.recorded = True
            return
        if decision.action == "warn" and self._warn(flow, decision, facts, with_body):
            return
        if decision.action == "quota" and self._over_quota(flow, decision, facts, head.declared_size):
            return
        if decision.action == "redact":
            self._redact(flow, decision, facts, redacted)
            return
        if (decision.action == "monitor" or decision.exception) and not self._record(
            decision, facts, "request", flow=flow
        ):
            self._block(flow, _unlogged(decision), facts)
            return
        if not with_body and body is None and head.large_or_open_ended:
            request.stream = True  # decided without the body: let big uploads stream through untouched

    # --- DLP redaction ----------------------------------------------------------

    def _redacted_body(self, decision: Decision, facts: RequestFacts) -> bytes | None:
        """The body with what the rule's detectors found replaced, or None if something would remain
        (a secret used as a JSON key, say): then the request is blocked instead."""
        assert self.policy is not None and facts.body is not None
        rule = self.policy.rule(decision.rule)
        if rule is None or rule.dlp is None:
            return None
        content_type = facts.headers.get("content-type", "")
        redacted, _ = rule.dlp.redact_body(facts.body, content_type)
        if aipolicy.scan_request(rule.dlp, replace(facts, body=redacted)):
            return None
        return redacted

    def _redact(self, flow: http.HTTPFlow, decision: Decision, facts: RequestFacts, redacted: bytes | None) -> None:
        if redacted is None and facts.body is not None:
            redacted = self._redacted_body(decision, facts)
        if redacted is None:
            reason = f"{decision.reason}; it could not be redacted completely, so the request was not sent"
            self._block(flow, replace(decision, action="block", reason=reason), facts)
            return
        if not self._record(decision, facts, "request", flow=flow):
            self._block(flow, _unlogged(decision), facts)
            return
        flow.request.content = redacted  # encoded again as the request declares; Content-Length follows
        flow.metadata["aipolicy_redacted"] = dict(decision.dlp or {})

    # --- warn and quota -------------------------------------------------------

    def _needs_requests(self, decision: Decision, facts: RequestFacts) -> bool:
        """Must the connection be decrypted for the warn or quota rule to see its requests?"""
        if decision.action == "quota":
            return True
        if decision.action == "warn":
            subject = facts.user or facts.client_ip
            return not self.acknowledgements.acknowledged(subject, decision.app or decision.host, self.clock())
        return False

    def _warn(self, flow: http.HTTPFlow, decision: Decision, facts: RequestFacts, with_body: bool) -> bool:
        """True if the request was answered (the warning, or the acknowledgement); False lets it pass."""
        assert self.policy is not None
        rule = self.policy.rule(decision.rule)
        settings = rule.warn if rule and rule.warn else aipolicy.WarnSettings()
        subject, app, now = facts.user or facts.client_ip, decision.app or decision.host, self.clock()
        request = flow.request
        if request.path.split("?", 1)[0] == PROCEED_PATH and request.method == "POST":
            if not with_body:
                flow.metadata["aipolicy_wait_body"] = True  # read the form first
                return True
            return self._proceed(flow, decision, facts, settings, (subject, app, now))
        if self.acknowledgements.acknowledged(subject, app, now):
            return False
        self._show_warning(flow, decision, facts, settings, (subject, app, now))
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
        raw = flow.request.raw_content or b""
        form = urllib.parse.parse_qs(raw[:16384].decode("utf-8", "replace"), max_num_fields=10)
        token, back = form.get("token", [""])[0], form.get("return", ["/"])[0]
        justification = aipolicy.clean_justification(form.get("justification", [""])[0])
        if not self.acknowledgements.valid_token(token, subject, app, now):
            error = "This confirmation has expired or did not come from this page. Please confirm again."
        elif settings.justification == "required" and not justification:
            error = "Please give a business justification to continue."
        else:
            self.acknowledgements.remember(subject, app, now, settings.remember)
            proceed = replace(
                decision, action="proceed", reason=f"the user acknowledged the warning of rule {decision.rule}"
            )
            event = self._event(proceed, facts, flow)
            event["justification"] = justification or None
            if not self._write(event):
                self._block(flow, _unlogged(decision), facts)
                return True
            location = back if back.startswith("/") and not back.startswith(("//", "/\\")) else "/"
            flow.response = http.Response.make(303, b"", {"location": location, "cache-control": "no-store"})
            return True
        self._show_warning(flow, decision, facts, settings, who, error=error, status=400)
        return True

    def _show_warning(
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
        if aipolicy.wants_html(request.headers) and request.headers.get("upgrade", "").lower() != "websocket":
            path = request.path if request.path.split("?", 1)[0] != PROCEED_PATH else "/"
            body = aipolicy.warn_page(
                decision,
                request.pretty_url.split("?", 1)[0],
                action=PROCEED_PATH,
                token=self.acknowledgements.token(subject, app, now),
                return_to=path,
                justification=settings.justification,
                message=settings.message,
                remember=_human_duration(settings.remember),
                error=error,
            )
            flow.response = http.Response.make(status, body, self._block_headers(decision, "text/html; charset=utf-8"))
        else:
            hint = f"Open {request.scheme}://{request.pretty_host}/ in a browser and confirm to continue."
            body = aipolicy.json_error(
                decision,
                lead="Your organisation's AI policy asks you to confirm first",
                code="aipolicy_warn",
                hint=hint,
            )
            flow.response = http.Response.make(403, body, self._block_headers(decision, "application/json"))
        last = self.warned.get((subject, app), 0.0)
        if now - last >= WARN_EVENT_INTERVAL:  # one warn event per user and app a minute, not one per asset
            if len(self.warned) > 100_000:
                self.warned.clear()
            self.warned[(subject, app)] = now
            self._record(decision, facts, "request", flow=flow)

    def _over_quota(self, flow: http.HTTPFlow, decision: Decision, facts: RequestFacts, size: int) -> bool:
        assert self.policy is not None
        rule = self.policy.rule(decision.rule)
        if rule is None or rule.quota is None:
            return False
        settings = rule.quota
        subject = facts.client_ip if settings.by == "client" else (facts.user or facts.client_ip)
        now = self.clock()
        verdict = self.quotas.charge(rule.id, subject, settings, size, now)
        if verdict.alert:
            reason = (
                f"{subject} sent {verdict.requests} requests to {decision.app_name or decision.host} in one "
                f"{_human_duration(settings.per)} window, about {verdict.requests / verdict.baseline:.0f}x their "
                f"usual {verdict.baseline:.0f}"
            )
            event = self._event(replace(decision, action="monitor", reason=reason), facts, flow)
            event.update(event="volume", requests=verdict.requests, baseline=verdict.baseline)
            self._write(event)
        if verdict.allowed:
            flow.metadata["aipolicy_quota"] = (rule.id, subject, settings)
            return False
        used = f"{verdict.requests} requests" + (f", {verdict.bytes:,} bytes" if settings.bytes else "")
        refused = replace(
            decision,
            reason=f"the budget of rule {rule.id} is used up for this {_human_duration(settings.per)} window ({used})",
        )
        headers = self._block_headers(refused, "application/json")
        headers["retry-after"] = str(verdict.retry_after)
        body = aipolicy.json_error(
            refused, lead="Usage limit of your organisation's AI policy reached", kind="rate_limit_error",
            code="aipolicy_quota", hint=f"Try again in {verdict.retry_after} seconds.",
        )  # fmt: skip
        flow.response = http.Response.make(429, body, headers)
        event = self._event(refused, facts, flow)
        event.update(retry_after=verdict.retry_after, window_requests=verdict.requests, window_bytes=verdict.bytes)
        if not self._write(event):
            self._block(flow, _unlogged(decision), facts)
        return True

    def _count_bytes(self, flow: http.HTTPFlow, size: int) -> None:
        rule_id, subject, settings = flow.metadata["aipolicy_quota"]
        self.quotas.add_bytes(rule_id, subject, settings, size, self.clock())

    def _event(self, decision: Decision, facts: RequestFacts, flow: http.HTTPFlow) -> dict[str, object]:
        return aipolicy.decision_event(
            decision,
            facts,
            stage="request",
            sni=flow.client_conn.sni or "",
            user_agent=flow.request.headers.get("user-agent", ""),
            proxy_id=self._proxy_id(),
            log_query=bool(self.policy and self.policy.log_query),
        )

    def _body(self, flow: http.HTTPFlow) -> tuple[bytes | None, int]:
        """(decoded request body, 0), or (None, size) when it is too large to inspect."""
        assert self.policy is not None
        limit = self.policy.inspect_max_bytes
        raw = flow.request.raw_content or b""
        if len(raw) > limit:
            return None, len(raw)
        try:
            return aipolicy.decode_body(raw, flow.request.headers.get("content-encoding", ""), limit), 0
        except ValueError as error:
            if "larger than" in str(error):
                return None, limit + 1
            return raw, 0  # not decodable as declared: inspect the bytes as sent

    def _inspect_limit(self) -> int:
        return self.policy.inspect_max_bytes if self.policy else 8 * 1024 * 1024

    def _decide(self, facts: RequestFacts) -> Decision:
        if self.policy is None:
            raise RuntimeError("no policy loaded")
        start = time.perf_counter()
        decision = self.decide(self.policy, facts)
        self._count_decision(decision.action, decision.rule, time.perf_counter() - start)
        return decision

    def _facts(
        self,
        client: connection.Client,
        names: tuple[str, ...],
        *,
        flow: http.HTTPFlow | None = None,
        method: str = "",
        port: int = 0,
        path: str | None = None,
        body: bytes | None = None,
    ) -> RequestFacts:
        headers: Mapping[str, str] = {}
        user = ""
        groups: tuple[str, ...] = ()
        state = self._state(client)
        client_ip = state.client_ip
        if client_ip is None:
            client_ip = state.client_ip = aipolicy.normalise_host(client.peername[0]) if client.peername else ""
        if flow is not None:
            headers = flow.request.headers  # case-insensitive; read only where a rule looks
            auth = flow.metadata.get("proxyauth")
            user = auth[0] if isinstance(auth, tuple) and auth else ""
            if self.policy is not None and self.policy.identity.trusted_proxies:
                user, groups = self._claimed_identity(flow, client_ip, user)
        if self.policy is not None and (user or groups):
            groups = tuple(sorted({g.casefold() for g in groups} | self.policy.groups_of(user)))
        scheme = "https" if client.tls or method == "CONNECT" else "http"
        return RequestFacts(
            hosts=names,
            path=path,
            method=method,
            scheme=flow.request.scheme if flow is not None and method != "CONNECT" else scheme,
            port=port,
            client_ip=client_ip,
            user=user,
            groups=groups,
            headers=headers,
            body=body,
        )

    def _claimed_identity(self, flow: http.HTTPFlow, client_ip: str, user: str) -> tuple[str, tuple[str, ...]]:
        """The user and groups an authenticating proxy in front put in headers: believed only from
        the policy's trusted proxies, and never forwarded upstream (nor a client's forged claim)."""
        assert self.policy is not None
        identity, headers = self.policy.identity, flow.request.headers
        claimed_user = headers.get(identity.user_header, "") if identity.user_header else ""
        claimed_groups = headers.get(identity.groups_header, "") if identity.groups_header else ""
        for name in (identity.user_header, identity.groups_header):
            if name and name in headers:
                del headers[name]
        if not identity.trusts(client_ip):
            return user, ()
        groups = tuple(g.strip()[:128] for g in claimed_groups.split(",") if g.strip())[:64]
        return (user or claimed_user.strip()[:256]), groups

    def _refuse_connect(self, flow: http.HTTPFlow, decision: Decision, facts: RequestFacts) -> None:
        flow.metadata["aipolicy"] = decision
        flow.response = http.Response.make(
            403, aipolicy.json_error(decision), self._block_headers(decision, "application/json")
        )
        self._record(decision, facts, "connect", flow=flow)

    def _block(self, flow: http.HTTPFlow, decision: Decision, facts: RequestFacts) -> None:
        headers = flow.request.headers
        if aipolicy.wants_html(headers) and headers.get("upgrade", "").lower() != "websocket":
            title = self.policy.block_page_title if self.policy else "Blocked"
            body = aipolicy.block_page(decision, flow.request.pretty_url.split("?", 1)[0], title)
            content_type = "text/html; charset=utf-8"
        else:
            body, content_type = aipolicy.json_error(decision), "application/json"
        flow.response = http.Response.make(403, body, self._block_headers(decision, content_type))
        self._record(decision, facts, "request", flow=flow)

    @staticmethod
    def _block_headers(decision: Decision, content_type: str) -> dict[str, str]:
        return {
            "content-type": content_type,
            "cache-control": "no-store",
            "x-aipolicy-rule": decision.rule,
            "proxy-status": f'aipolicy; error=http_request_denied; details="rule {decision.rule}"',
        }

    def _record(
        self,
        decision: Decision,
        facts: RequestFacts,
        stage: str,
        *,
        flow: http.HTTPFlow | None = None,
        sni: str = "",
        note: str = "",
    ) -> bool:
        """Write the event; False if it could not be written (the caller then fails closed)."""
        user_agent = flow.request.headers.get("user-agent", "") if flow is not None else ""
        if flow is not None and not sni:
            sni = flow.client_conn.sni or ""
        event = aipolicy.decision_event(
            decision,
            facts,
            stage=stage,
            sni=sni,
            user_agent=user_agent,
            proxy_id=self._proxy_id(),
            log_query=bool(self.policy and self.policy.log_query),
            note=note,
        )
        return self._write(event)

    def _record_evasion(
        self,
        decision: Decision,
        facts: RequestFacts,
        stage: str,
        target: str,
        sni: str,
        host_header: str,
        flow: http.HTTPFlow | None = None,
        doh_names: tuple[str, ...] = (),
    ) -> None:
        assert self.policy is not None
        for kind in aipolicy.evasion_signals(self.policy, target, sni, host_header, doh_names):
            event = aipolicy.decision_event(decision, facts, stage=stage, sni=sni, proxy_id=self._proxy_id())
            event.update(event="evasion", evasion=kind, host_header=host_header[:255] or None)
            if not decision.app:  # an allowed request carries no app: name the one the signal is about
                app = self._app_for((*doh_names, sni, host_header))
                if app is not None:
                    event.update(
                        app=app.id, vendor=app.vendor, category=app.categories[0], categories=list(app.categories)
                    )
            if flow is not None:
                event["user_agent"] = flow.request.headers.get("user-agent", "")[:512] or None
            self._write(event)

    def _app_for(self, names: tuple[str, ...]) -> aipolicy.App | None:
        assert self.policy is not None
        for name in names:
            app = self.policy.catalog.app_for_host(aipolicy.normalise_host(name)) if name else None
            if app is not None:
                return app
        return None

    def _write(self, event: dict[str, object]) -> bool:
        self.sinks.event(event, self._proxy_id())  # never waits: each sink queues, or drops and counts
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

    def _system(self, kind: str, message: str, **extra: object) -> bool:
        return self._write(
            aipolicy.system_event(kind, message, policy=self._hash(), proxy_id=self._proxy_id(), **extra)
        )

    def _fail_closed(self, flow: http.HTTPFlow, error: Exception, stage: str) -> None:
        logger.exception(f"aipolicy: error while deciding {flow.request.host!r}; blocking (fail closed)")
        names = tuple(n for n in (flow.request.host, flow.request.host_header or "") if n)
        decision = _error_decision(error, self._hash(), names)
        facts = RequestFacts(
            hosts=names,
            path=flow.request.path if stage == "request" else None,
            method=flow.request.method,
            client_ip=flow.client_conn.peername[0] if flow.client_conn.peername else "",
        )
        flow.response = http.Response.make(
            403, aipolicy.json_error(decision), self._block_headers(decision, "application/json")
        )
        try:
            self._record(decision, facts, stage, flow=flow)
        except Exception:
            logger.exception("aipolicy: could not record the error event")

    def _state(self, client: connection.Client) -> ConnectionState:
        state = self.connections.get(client.id)
        if state is None:
            state = self.connections[client.id] = ConnectionState()
        return state

    def _hash(self) -> str:
        return self.policy.hash if self.policy else ""

    def _proxy_id(self) -> str:
        return ctx.options.aipolicy_proxy_id or _HOSTNAME


def _error_decision(error: Exception, policy_hash: str, names: tuple[str, ...]) -> Decision:
    return Decision(
        "block",
        "aipolicy:internal-error",
        f"aipolicy could not decide ({type(error).__name__}); blocked to fail closed",
        host=names[0] if names else "",
        hosts=names,
        policy=policy_hash,
    )


def _unlogged(decision: Decision) -> Decision:
    return replace(
        decision,
        action="block",
        rule="aipolicy:log-unavailable",
        reason=f"the event log cannot be written, so AI-app traffic is blocked (would have been: {decision.action} by rule {decision.rule})",
    )


def _same_host(host_header: str, host: str) -> bool:
    """Is the Host header the request's host, with or without a port ("example.org:8080")?"""
    if host_header == host:
        return True
    size = len(host)
    return (
        host_header.startswith(host)
        and host_header[size : size + 1] == ":"
        and host_header[size + 1 :].isascii()
        and host_header[size + 1 :].isdigit()
    )


def _known_empty_body(request: http.Request, head: RequestHead) -> bytes | None:
    """b"" when the headers say no body follows; None when one may (it is not read yet)."""
    if head.length == "0":
        return b""
    if head.length is None and not head.chunked and request.data.http_version.startswith(b"HTTP/1"):
        return b""
    return None


OVERSIZE_KILL_FACTOR = 4  # declared bodies over this many times settings.inspect_max_bytes are refused unread
SCAN_IN_THREAD_ABOVE = 64 * 1024  # bytes of request body; smaller ones are decided on the event loop
PROCEED_PATH = "/.aipolicy/proceed"  # where the warning page's form posts its acknowledgement
WARN_EVENT_INTERVAL = 60.0  # seconds


def _human_duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"


COUNT_BATCH = 256 * 1024  # bytes of a streamed response counted against a byte quota at once
STREAM_ABOVE = 256 * 1024  # bytes; smaller bodies cost less buffered than streamed


def _fingerprint(files: tuple[str, ...]) -> tuple[object, ...]:
    result: list[object] = []
    for name in files:
        try:
            info = os.stat(name)
            result.append((name, info.st_mtime_ns, info.st_size, info.st_ino))
        except OSError:
            result.append((name, None))
    return tuple(result)


_HOSTNAME = aipolicy.default_proxy_id()
