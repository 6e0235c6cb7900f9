"""The enforcer's per-request hot path, in process: the headers it reads in one pass, and the
names it checks (every Host header, the HTTP/2 :authority), against mitmproxy's own accessors."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import tflow

with warnings.catch_warnings():
    # taddons loads every default addon; proxyauth's ldap3 uses pyasn1 names deprecated upstream
    warnings.simplefilter("ignore", DeprecationWarning)
    from mitmproxy.test import taddons

from aipolicy.proxy_addons.enforcer import Enforcer
from aipolicy.proxy_addons.facts import read_head, same_host

POLICY = """\
version: 1
rules:
  - id: banned
    action: block
    match: {hosts: [banned.example]}
default: allow
"""


def request(headers: list[tuple[bytes, bytes]], version: str = "HTTP/1.1", authority: str = "") -> http.Request:
    made = http.Request.make("GET", "http://allowed.example/x")
    made.headers = http.Headers(headers)  # make() adds Host and Content-Length: only these
    made.http_version = version
    made.authority = authority
    return made


@pytest.mark.parametrize(
    ("headers", "version", "authority", "hosts", "length", "chunked"),
    [
        ([(b"Host", b"a.example")], "HTTP/1.1", "", ("a.example",), None, False),
        ([(b"HOST", b"a.example"), (b"host", b"b.example")], "HTTP/1.1", "", ("a.example", "b.example"), None, False),
        ([(b"content-length", b"12")], "HTTP/1.1", "", (), "12", False),
        ([(b"Content-Length", b" 7 ")], "HTTP/1.1", "", (), "7", False),
        ([(b"content-length", b"5"), (b"content-length", b"6")], "HTTP/1.1", "", (), "5, 6", False),
        ([(b"Transfer-Encoding", b"chunked")], "HTTP/1.1", "", (), None, True),
        ([(b"host", b"h.example")], "HTTP/2.0", "auth.example:443", ("auth.example:443", "h.example"), None, False),
        ([], "HTTP/2.0", "auth.example", ("auth.example",), None, False),
        ([], "HTTP/3", "auth.example", ("auth.example",), None, False),
        ([(b"host", "bücher.example".encode())], "HTTP/1.1", "", ("bücher.example",), None, False),
    ],
)
def test_read_head(
    headers: list[tuple[bytes, bytes]],
    version: str,
    authority: str,
    hosts: tuple[str, ...],
    length: str | None,
    chunked: bool,
) -> None:
    made = request(headers, version, authority)
    head = read_head(made)
    assert (head.hosts, head.length, head.chunked) == (hosts, length, chunked)
    if len(hosts) == 1 and version == "HTTP/1.1":  # agrees with mitmproxy's own accessor
        assert made.host_header == hosts[0]


@pytest.mark.parametrize(
    ("length", "declared", "open_ended"),
    [
        ("0", 0, False),
        ("1000", 1000, False),
        (str(10 * 1024 * 1024), 10 * 1024 * 1024, True),
        (None, 0, True),
        ("5, 6", 0, True),
        ("-1", 0, True),
        ("²", 0, True),  # str.isdigit() says yes; int() would raise
        ("١٢", 0, True),  # Arabic-Indic digits: int() would accept them
    ],
)
def test_declared_size_takes_only_ascii_digits(length: str | None, declared: int, open_ended: bool) -> None:
    headers = [] if length is None else [(b"content-length", length.encode())]
    head = read_head(request(headers))
    assert (head.declared_size, head.large_or_open_ended) == (declared, open_ended)


@pytest.fixture
def enforcer(tmp_path: Path) -> Iterator[Enforcer]:
    (tmp_path / "policy.yaml").write_text(POLICY)
    addon = Enforcer()
    context = taddons.context(addon)  # makes its own event loop when none runs
    try:
        with context:
            context.configure(
                addon,
                aipolicy_policy=str(tmp_path / "policy.yaml"),
                aipolicy_log=str(tmp_path / "events.jsonl"),
                aipolicy_reload="0",
            )
            yield addon
            context.master.event_loop.run_until_complete(addon.done())
    finally:
        context.master.event_loop.close()


def plain_flow(headers: list[tuple[bytes, bytes]], version: str = "HTTP/1.1", authority: str = "") -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request = request(headers, version, authority)
    flow.client_conn.sni = None
    flow.client_conn.peername = ("127.0.0.1", 50000)
    return flow


@pytest.mark.parametrize(
    ("headers", "version", "authority"),
    [
        ([(b"host", b"allowed.example"), (b"host", b"banned.example")], "HTTP/1.1", ""),
        ([(b"host", b"BANNED.example.")], "HTTP/1.1", ""),
        ([(b"host", b"allowed.example")], "HTTP/2.0", "banned.example"),
        ([(b"host", b"banned.example")], "HTTP/2.0", "allowed.example"),
    ],
)
def test_every_name_a_request_carries_is_checked(
    enforcer: Enforcer, headers: list[tuple[bytes, bytes]], version: str, authority: str
) -> None:
    flow = plain_flow(headers, version, authority)
    enforcer.requestheaders(flow)
    assert flow.response is not None and flow.response.status_code == 403
    assert flow.response.headers["x-aipolicy-rule"] == "banned"


def test_the_usual_request_is_allowed_and_counted(enforcer: Enforcer) -> None:
    flow = plain_flow([(b"host", b"allowed.example"), (b"content-length", b"0")])
    for _ in range(3):
        flow.metadata.clear()
        enforcer.requestheaders(flow)
        assert flow.response is None and flow.metadata["aipolicy"].action == "allow"
        assert enforcer.request(flow) is None  # decided without the body: no coroutine to await
    assert enforcer.metrics.stages["request"] == 3
    assert sum(enforcer.metrics.hot.decisions.values()) == 3


def test_response_headers_in_one_pass(enforcer: Enforcer) -> None:
    flow = plain_flow([(b"host", b"allowed.example")])

    def respond(headers: list[tuple[bytes, bytes]]) -> http.Response:
        flow.response = http.Response.make(200)
        flow.response.headers = http.Headers(headers)  # make() adds Content-Length: only these
        enforcer.responseheaders(flow)
        return flow.response

    sized = respond([(b"Alt-Svc", b'h3=":443"'), (b"content-length", b"10"), (b"alt-svc", b"h2=x")])
    assert "alt-svc" not in sized.headers and sized.stream is False
    assert respond([(b"transfer-encoding", b"chunked")]).stream is True  # open-ended (SSE): streamed
    assert respond([(b"content-length", b"5"), (b"content-length", b"6")]).stream is True
    assert respond([(b"content-length", str(300 * 1024).encode())]).stream is True  # large: streamed


def test_streamed_response_bytes_are_charged_in_batches_and_at_the_end(enforcer: Enforcer) -> None:
    from aipolicy.proxy_addons.quota import COUNT_BATCH

    from aipolicy import QuotaSettings

    settings = QuotaSettings(per=3600, bytes=10**9)
    flow = plain_flow([(b"host", b"allowed.example")])
    flow.metadata["aipolicy_quota"] = ("budget", "10.0.0.1", settings)
    charges: list[int] = []
    add_bytes = enforcer.quotas.add_bytes
    enforcer.quotas.add_bytes = lambda rule, subject, s, size, now: (
        charges.append(size),
        add_bytes(rule, subject, s, size, now),
    )  # type: ignore[method-assign]
    counter = enforcer.quota.byte_counter(flow)
    chunk = b"z" * 1000
    sent = [counter(chunk) for _ in range(COUNT_BATCH // 1000 + 5)]
    assert sent == [chunk] * len(sent)  # passed on untouched
    assert counter(b"") == b""  # the end of the message
    assert charges == [(COUNT_BATCH // 1000 + 1) * 1000, 4000]
    assert enforcer.quotas.usage[("budget", "10.0.0.1")].bytes == sum(charges) == len(sent) * 1000


@pytest.mark.parametrize(
    ("header", "host", "same"),
    [
        ("a.example", "a.example", True),
        ("a.example:8080", "a.example", True),
        ("127.0.0.1:8000", "127.0.0.1", True),
        ("a.example:", "a.example", False),
        ("a.example:80x", "a.example", False),
        ("a.example:²", "a.example", False),
        ("a.example.evil:80", "a.example", False),
        ("a.examplex", "a.example", False),
        ("b.example:80", "a.example", False),
        ("[::1]:8000", "::1", False),  # not the fast path: decided on both names
    ],
)
def test_same_host(header: str, host: str, same: bool) -> None:
    assert same_host(header, host) is same


def test_a_host_header_with_a_port_is_decided_as_its_host(enforcer: Enforcer) -> None:
    flow = plain_flow([(b"host", b"banned.example:8080")])
    flow.request.host = "banned.example"
    enforcer.requestheaders(flow)
    assert flow.response is not None and flow.response.status_code == 403
    flow = plain_flow([(b"host", b"banned.example:8080")])  # the request's host says allowed.example
    enforcer.requestheaders(flow)
    assert flow.response is not None and flow.response.status_code == 403
