"""The one capped fetch (aipolicy/_fetch.py), sync and async alike: the cap, the statuses,
redirects, timeouts and the messages people read."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from aipolicy import Fetched, FetchError, FetchTooLarge, fetch_capped, fetch_capped_async

Handler = Callable[[httpx.Request], httpx.Response]


def fetch_sync(url: str, handler: Handler | None = None, **options: Any) -> Fetched:
    transport = httpx.MockTransport(handler) if handler else None
    return fetch_capped(url, transport=transport, **options)


def fetch_async(url: str, handler: Handler | None = None, **options: Any) -> Fetched:
    transport = httpx.MockTransport(handler) if handler else None
    return asyncio.run(fetch_capped_async(url, transport=transport, **options))


both = pytest.mark.parametrize("fetch", [fetch_sync, fetch_async], ids=["sync", "async"])


class Chunks:
    """A body streamed in chunks, counting how many were taken: the sentinel for 'not read'."""

    def __init__(self, count: int, size: int = 1000) -> None:
        self.count, self.size, self.taken = count, size, 0

    def chunks(self) -> Iterator[bytes]:
        for _ in range(self.count):
            self.taken += 1
            yield b"x" * self.size

    async def async_chunks(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks():
            yield chunk

    def stream(self, fetch: Callable[..., Fetched]) -> Iterator[bytes] | AsyncIterator[bytes]:
        """What the mock transport of ``fetch`` streams: httpx wants an async body for the async client."""
        return self.async_chunks() if fetch is fetch_async else self.chunks()


@both
def test_a_body_within_the_cap(fetch: Callable[..., Fetched]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"hello", headers={"etag": '"v1"'})

    fetched = fetch(
        "https://feed.example/b.json", handler, max_bytes=5, accept="application/json", headers={"x-a": "1"}
    )
    assert (fetched.status, fetched.body, fetched.headers["etag"]) == (200, b"hello", '"v1"')
    assert seen[0].headers["accept"] == "application/json" and seen[0].headers["x-a"] == "1"


@both
def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_read(fetch: Callable[..., Fetched]) -> None:
    body = Chunks(5)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body.stream(fetch), headers={"content-length": "5000"})

    with pytest.raises(
        FetchTooLarge, match=r"^https://l\.example/x serves 5,000 bytes, over the limit of 4,999 bytes$"
    ):
        fetch("https://l.example/x", handler, max_bytes=4999)
    assert body.taken == 0


@both
def test_a_stream_over_the_cap_stops_at_the_cap(fetch: Callable[..., Fetched]) -> None:
    body = Chunks(100)  # 100 kB, no length declared
    with pytest.raises(
        FetchTooLarge, match=r"^https://l\.example/x serves more than the limit of 10,000 bytes$"
    ) as raised:
        fetch("https://l.example/x", lambda request: httpx.Response(200, content=body.stream(fetch)), max_bytes=10_000)
    assert raised.value.limit == 10_000
    assert body.taken == 11  # the chunk that crossed the cap, and no more


@both
def test_the_cap_counts_decoded_bytes(fetch: Callable[..., Fetched]) -> None:
    bomb = gzip.compress(b"\0" * 1_000_000)  # about 1 kB on the wire

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=bomb, headers={"content-encoding": "gzip"})

    with pytest.raises(FetchTooLarge, match="serves more than the limit of 100,000 bytes"):
        fetch("https://l.example/bomb", handler, max_bytes=100_000)


@both
def test_a_status_not_asked_for_is_an_error(fetch: Callable[..., Fetched]) -> None:
    with pytest.raises(FetchError, match=r"^https://l\.example/x: the server answered 404 Not Found$") as raised:
        fetch("https://l.example/x", lambda request: httpx.Response(404, content=b"no"), max_bytes=100)
    assert raised.value.status == 404 and raised.value.reason == "the server answered 404 Not Found"
    assert not isinstance(raised.value, FetchTooLarge)


@both
def test_not_modified_when_asked_for(fetch: Callable[..., Fetched]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["if-none-match"] == '"v1"'
        return httpx.Response(304, headers={"content-length": "999999"})

    fetched = fetch(
        "https://l.example/x", handler, max_bytes=10, headers={"if-none-match": '"v1"'}, statuses=(200, 304)
    )
    assert (fetched.status, fetched.body) == (304, b"")


@both
def test_redirects_are_followed_up_to_the_limit(fetch: Callable[..., Fetched]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        hop = int(request.url.path.strip("/") or 0)
        if hop < 5:
            return httpx.Response(302, headers={"location": f"/{hop + 1}"})
        return httpx.Response(200, content=b"arrived")

    assert fetch("https://l.example/", handler, max_bytes=10).body == b"arrived"
    with pytest.raises(FetchError, match=r"^https://l\.example/: more than 4 redirects$"):
        fetch("https://l.example/", handler, max_bytes=10, max_redirects=4)


@both
@pytest.mark.parametrize(
    ("error", "message"),
    [
        (httpx.ReadTimeout, "no answer within 30 s"),
        (httpx.ConnectTimeout, "no connection within 10 s"),
        (httpx.ConnectError, "ConnectError: refused"),
        (httpx.RemoteProtocolError, "RemoteProtocolError: refused"),
    ],
)
def test_network_failures_say_what_happened(fetch: Callable[..., Fetched], error: type, message: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("refused", request=request)

    with pytest.raises(FetchError, match=f"^https://l.example/x: {message}$"):
        fetch("https://l.example/x", handler, max_bytes=10)


@both
def test_messages_never_show_credentials_or_the_query(fetch: Callable[..., Fetched]) -> None:
    with pytest.raises(FetchError) as raised:
        fetch("https://user:s3cret@l.example/x?token=t0ken", lambda r: httpx.Response(500), max_bytes=10)
    assert str(raised.value) == "https://l.example/x: the server answered 500 Internal Server Error"


@both
@pytest.mark.parametrize("url", ["http://[::1", "https://\x00/"])
def test_a_bad_url_is_an_error_not_a_traceback(fetch: Callable[..., Fetched], url: str) -> None:
    with pytest.raises(FetchError):
        fetch(url, lambda r: httpx.Response(200), max_bytes=10)


@both
def test_headers_can_be_refused_before_the_body_is_read(fetch: Callable[..., Fetched]) -> None:
    body = Chunks(3)

    def refuse(headers: Any) -> None:
        if headers.get("content-type") == "text/html":
            raise ValueError("a web page")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body.stream(fetch), headers={"content-type": "text/html"})

    with pytest.raises(ValueError, match="a web page"):
        fetch("https://l.example/x", handler, max_bytes=10_000, check_headers=refuse)
    assert body.taken == 0


def test_the_async_fetch_stops_at_its_deadline() -> None:
    release = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield b"a"
        await release.wait()  # never set: the server stalls
        yield b"b"

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=trickle())

    async def scenario() -> None:
        with pytest.raises(FetchError, match=r"^https://l\.example/x: not fetched within 0\.2 s$"):
            await fetch_capped_async(
                "https://l.example/x", max_bytes=10, deadline=0.2, transport=httpx.MockTransport(handler)
            )

    asyncio.run(scenario())


# --- a real server on loopback -------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b"x" * int(self.path.strip("/"))
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@both
def test_a_real_server(fetch: Callable[..., Fetched], server: str) -> None:
    assert fetch(f"{server}/1000", max_bytes=1000).body == b"x" * 1000
    with pytest.raises(FetchTooLarge, match="serves 1,001 bytes, over the limit of 1,000 bytes"):
        fetch(f"{server}/1001", max_bytes=1000)
