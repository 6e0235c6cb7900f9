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
from typing import TYPE_CHECKING

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

    try:
        with httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=True,
            max_redirects=max_redirects,
            trust_env=trust_env,
        ) as client:
            with client.stream("GET", url, headers={"accept": accept, **(headers or {})}) as response:
                body = _Body(url, response, max_bytes, statuses, check_headers)
                if body.wanted:
                    for chunk in response.iter_bytes():
                        body.add(chunk)
                return body.fetched()
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise _failure(url, error, timeout, connect_timeout, max_redirects) from None


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
    deadline: float | None = None,
    max_redirects: int = MAX_REDIRECTS,
    trust_env: bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Fetched:
    """``fetch_capped`` for the event loop, with a ``deadline`` in seconds for the whole download."""
    import httpx

    try:
        async with asyncio.timeout(deadline) if deadline is not None else contextlib.nullcontext():
            async with httpx.AsyncClient(
                transport=transport,
                timeout=httpx.Timeout(timeout, connect=connect_timeout),
                follow_redirects=True,
                max_redirects=max_redirects,
                trust_env=trust_env,
            ) as client:
                async with client.stream("GET", url, headers={"accept": accept, **(headers or {})}) as response:
                    body = _Body(url, response, max_bytes, statuses, check_headers)
                    if body.wanted:
                        async for chunk in response.aiter_bytes():
                            body.add(chunk)
                    return body.fetched()
    except TimeoutError:
        if deadline is None:
            raise
        raise FetchError(url, f"not fetched within {deadline:g} s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise _failure(url, error, timeout, connect_timeout, max_redirects) from None


class _Body:
    """The cap, shared by both fetches: the status and declared length checked, then the bytes counted."""

    def __init__(
        self,
        url: str,
        response: httpx.Response,
        max_bytes: int,
        statuses: Collection[int],
        check_headers: Callable[[Mapping[str, str]], None] | None,
    ) -> None:
        self.url, self.response, self.max_bytes = url, response, max_bytes
        status = response.status_code
        if status not in statuses:
            reason = f"the server answered {status} {response.reason_phrase}".rstrip()
            raise FetchError(url, reason, status)
        self.wanted = status == 200
        if self.wanted and check_headers is not None:
            check_headers(response.headers)
        declared = response.headers.get("content-length", "")
        if self.wanted and declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
            raise FetchTooLarge(
                url, f"serves {int(declared):,} bytes, over the limit of {max_bytes:,} bytes", max_bytes
            )
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise FetchTooLarge(self.url, f"serves more than the limit of {self.max_bytes:,} bytes", self.max_bytes)
        self.chunks.append(chunk)

    def fetched(self) -> Fetched:
        return Fetched(self.response.status_code, b"".join(self.chunks), self.response.headers)


def _failure(
    url: str, error: Exception, timeout: float | None, connect_timeout: float | None, max_redirects: int
) -> FetchError:
    import httpx

    if isinstance(error, httpx.ConnectTimeout):
        return FetchError(url, f"no connection within {connect_timeout:g} s")
    if isinstance(error, httpx.TimeoutException):
        return FetchError(url, f"no answer within {timeout:g} s")
    if isinstance(error, httpx.TooManyRedirects):
        return FetchError(url, f"more than {max_redirects} redirects")
    return FetchError(url, f"{type(error).__name__}: {error}")
