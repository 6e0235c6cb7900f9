"""One capped download over HTTP(S), for a community block list (``policy import``), a signed
bundle (``policy sync|verify-bundle``) and the proxy's policy feed alike.

    fetched = fetch_capped(url, max_bytes=32 << 20)               # httpx.Client
    fetched = await fetch_capped_async(url, max_bytes=64 << 20)   # httpx.AsyncClient

Both have a timeout, follow at most ``max_redirects`` redirects, refuse a declared
Content-Length over the cap before reading the body, and count the bytes as they stream in
(decoded, so a compressed bomb is capped too); the async one can also stop at a deadline for
the whole download, however slowly the bytes trickle in. Failures raise::

    AipolicyError
     └── FetchError          network, timeout, redirects, an HTTP status not asked for
          └── FetchTooLarge  more than max_bytes, declared or streamed

Messages name the URL without its credentials or query string (``public_url``). httpx is
imported when a fetch starts, never with the core (it imports click and rich when they are
installed). Tests pass ``transport=httpx.MockTransport(...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import AipolicyError

if TYPE_CHECKING:
    import httpx

TIMEOUT = 30.0  # seconds to wait for each read (and write)
CONNECT_TIMEOUT = 10.0
MAX_REDIRECTS = 5


class FetchError(AipolicyError):
    """A download failed; ``reason`` says why without the URL, ``status`` is the HTTP status if any."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        self.url, self.reason, self.status = public_url(url), reason, status
        super().__init__(self._message())

    def _message(self) -> str:
        return f"{self.url}: {self.reason}"


class FetchTooLarge(FetchError):
    """The server sends, or declares, more than the cap."""

    def __init__(self, url: str, reason: str, limit: int) -> None:
        self.limit = limit
        super().__init__(url, reason)

    def _message(self) -> str:
        return f"{self.url} {self.reason}"


@dataclass(frozen=True)
class Fetched:
    status: int
    body: bytes  # empty for a status without a body, such as 304 Not Modified
    headers: Mapping[str, str]


def public_url(url: str) -> str:
    """The URL without credentials or query string, for logs and events."""
    if not url.startswith(("http://", "https://")):
        return url
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an invalid URL)"
    if ":" in host:
        host = f"[{host}]"
    return urllib.parse.urlunsplit((parts.scheme, f"{host}:{port}" if port else host, parts.path, "", ""))


def fetch_capped(
    url: str,
    *,
    max_bytes: int,
    accept: str = "*/*",
    headers: Mapping[str, str] | None = None,
    statuses: Collection[int] = (200,),
    check_headers: Callable[[Mapping[str, str]], None] | None = None,
    timeout: float | None = TIMEOUT,
    connect_timeout: float | None = CONNECT_TIMEOUT,
    max_redirects: int = MAX_REDIRECTS,
    trust_env: bool = True,
    transport: httpx.BaseTransport | None = None,
) -> Fetched:
    """GET ``url`` and return at most ``max_bytes`` of body; raise FetchError saying what went wrong.

    A status outside ``statuses`` is an error; ``check_headers`` may refuse the response (by
    raising) once its headers are in, before the body is read.
    """
    import httpx

    plan = _Plan(url, max_bytes, accept, headers, statuses, check_headers, timeout, connect_timeout, max_redirects)
    try:
        with httpx.Client(transport=transport, trust_env=trust_env, **plan.client_options()) as client:
            with client.stream("GET", url, headers=plan.request_headers()) as response:
                body = plan.start(response)
                for chunk in response.iter_bytes() if body.wanted else ():
                    body.add(chunk)
                return body.fetched()
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise plan.failure(error) from None


async def fetch_capped_async(
    url: str,
    *,
    max_bytes: int,
    accept: str = "*/*",
    headers: Mapping[str, str] | None = None,
    statuses: Collection[int] = (200,),
    check_headers: Callable[[Mapping[str, str]], None] | None = None,
    timeout: float | None = TIMEOUT,
    connect_timeout: float | None = CONNECT_TIMEOUT,
    max_redirects: int = MAX_REDIRECTS,
    trust_env: bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
    deadline: float | None = None,
) -> Fetched:
    """``fetch_capped`` for the event loop, with a ``deadline`` in seconds for the whole download."""
    import httpx

    plan = _Plan(url, max_bytes, accept, headers, statuses, check_headers, timeout, connect_timeout, max_redirects)
    try:
        async with asyncio.timeout(deadline) if deadline is not None else contextlib.nullcontext():
            async with httpx.AsyncClient(transport=transport, trust_env=trust_env, **plan.client_options()) as client:
                async with client.stream("GET", url, headers=plan.request_headers()) as response:
                    body = plan.start(response)
                    if body.wanted:
                        async for chunk in response.aiter_bytes():
                            body.add(chunk)
                    return body.fetched()
    except TimeoutError:
        if deadline is None:
            raise
        raise FetchError(url, f"not fetched within {deadline:g} s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise plan.failure(error) from None


# --- shared by both ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """What one download asks for and allows."""

    url: str
    max_bytes: int
    accept: str
    headers: Mapping[str, str] | None
    statuses: Collection[int]
    check_headers: Callable[[Mapping[str, str]], None] | None
    timeout: float | None
    connect_timeout: float | None
    max_redirects: int

    def client_options(self) -> dict[str, Any]:
        import httpx

        timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout)
        return {"timeout": timeout, "follow_redirects": True, "max_redirects": self.max_redirects}

    def request_headers(self) -> dict[str, str]:
        return {"accept": self.accept, **(self.headers or {})}

    def start(self, response: httpx.Response) -> _Body:
        """The headers are in: check the status and the declared length before any of the body."""
        status = response.status_code
        if status not in self.statuses:
            raise FetchError(self.url, f"the server answered {status} {response.reason_phrase}".rstrip(), status)
        if status != 200:  # 304 Not Modified, say: no body to read
            return _Body(self, response, wanted=False)
        if self.check_headers is not None:
            self.check_headers(response.headers)
        declared = response.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            reason = f"serves {int(declared):,} bytes, over the limit of {self.max_bytes:,} bytes"
            raise FetchTooLarge(self.url, reason, self.max_bytes)
        return _Body(self, response, wanted=True)

    def failure(self, error: Exception) -> FetchError:
        import httpx

        if isinstance(error, httpx.TimeoutException):
            connecting = isinstance(error, httpx.ConnectTimeout)
            phase, limit = ("connection", self.connect_timeout) if connecting else ("answer", self.timeout)
            return FetchError(self.url, f"no {phase} within {limit:g} s" if limit is not None else f"no {phase}")
        if isinstance(error, httpx.TooManyRedirects):
            return FetchError(self.url, f"more than {self.max_redirects} redirects")
        return FetchError(self.url, f"{type(error).__name__}: {error}")


class _Body:
    """The bytes of a response, counted against the cap as they arrive (decoded)."""

    def __init__(self, plan: _Plan, response: httpx.Response, *, wanted: bool) -> None:
        self.plan, self.response, self.wanted = plan, response, wanted
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.plan.max_bytes:
            limit = self.plan.max_bytes
            raise FetchTooLarge(self.plan.url, f"serves more than the limit of {limit:,} bytes", limit)
        self.chunks.append(chunk)

    def fetched(self) -> Fetched:
        return Fetched(self.response.status_code, b"".join(self.chunks), self.response.headers)
