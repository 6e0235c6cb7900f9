"""From mitmproxy's flows to the core's RequestFacts: the names a request goes to, who sends
it, and the few headers the hot path reads, gathered once per connection or request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from mitmproxy import connection, http

import aipolicy
from aipolicy import Decision, Policy, RequestFacts

STREAM_ABOVE = 256 * 1024  # bytes; smaller bodies cost less buffered than streamed


@dataclass
class ConnectionState:
    """What the addon knows about one client connection across its hooks."""

    pending: Decision | None = None  # blocked at connection level, decrypted to show the page
    facts: RequestFacts | None = None
    sni: str = ""
    user: str = ""  # from proxy authentication on the CONNECT, for events at the TLS stage
    groups: tuple[str, ...] = ()
    recorded: bool = False
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
        return content_length(self.length) or 0

    @property
    def large_or_open_ended(self) -> bool:
        """No usable Content-Length, or one above STREAM_ABOVE."""
        size = content_length(self.length)
        return size is None or size > STREAM_ABOVE


def content_length(value: str | None) -> int | None:
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


def same_host(host_header: str, host: str) -> bool:
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


def known_empty_body(request: http.Request, head: RequestHead) -> bytes | None:
    """b"" when the headers say no body follows; None when one may (it is not read yet)."""
    if head.length == "0":
        return b""
    if head.length is None and not head.chunked and request.data.http_version.startswith(b"HTTP/1"):
        return b""
    return None


class Facts:
    """Builds request facts; keeps each client connection's state until it disconnects."""

    def __init__(self, policy: Callable[[], Policy | None]) -> None:
        self.policy = policy
        self.connections: dict[str, ConnectionState] = {}

    def state(self, client: connection.Client) -> ConnectionState:
        state = self.connections.get(client.id)
        if state is None:
            state = self.connections[client.id] = ConnectionState()
        return state

    def forget(self, client: connection.Client) -> None:
        self.connections.pop(client.id, None)

    def of_connection(
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
        policy = self.policy()
        state = self.state(client)
        client_ip = state.client_ip
        if client_ip is None:
            client_ip = state.client_ip = aipolicy.normalise_host(client.peername[0]) if client.peername else ""
        if flow is not None:
            headers = flow.request.headers  # case-insensitive; read only where a rule looks
            auth = flow.metadata.get("proxyauth")
            user = auth[0] if isinstance(auth, tuple) and auth else ""
            if policy is not None and policy.identity.trusted_proxies:
                user, groups = claimed_identity(policy, flow, client_ip, user)
        if policy is not None and (user or groups):
            groups = tuple(sorted({g.casefold() for g in groups} | policy.groups_of(user)))
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

    def of_request(self, flow: http.HTTPFlow, with_body: bool = False) -> tuple[RequestFacts, RequestHead]:
        """The facts of a request and the headers the hot path reads. The facts carry no body
        (aipolicy.evaluate reads it): b"" when the headers say none follows, else None."""
        request = flow.request
        client = flow.client_conn
        head = read_head(request)
        host = request.data.host
        sni = self.state(client).sni or client.sni or ""
        if not sni and len(head.hosts) == 1 and same_host(head.hosts[0], host):
            names: tuple[str, ...] = (host,)  # the usual plain-HTTP request: one name, said twice
        else:
            names = tuple(dict.fromkeys(n for n in (host, sni, *head.hosts) if n))
        body = None if with_body else known_empty_body(request, head)
        facts = self.of_connection(
            client, names, flow=flow, method=request.method, port=request.data.port, path=request.path, body=body
        )
        return facts, head


def claimed_identity(policy: Policy, flow: http.HTTPFlow, client_ip: str, user: str) -> tuple[str, tuple[str, ...]]:
    """The user and groups an authenticating proxy in front put in headers: believed only from
    the policy's trusted proxies, and never forwarded upstream (nor a client's forged claim)."""
    identity, headers = policy.identity, flow.request.headers
    claimed_user = headers.get(identity.user_header, "") if identity.user_header else ""
    claimed_groups = headers.get(identity.groups_header, "") if identity.groups_header else ""
    for name in (identity.user_header, identity.groups_header):
        if name and name in headers:
            del headers[name]
    if not identity.trusts(client_ip):
        return user, ()
    groups = tuple(g.strip()[:128] for g in claimed_groups.split(",") if g.strip())[:64]
    return (user or claimed_user.strip()[:256]), groups
