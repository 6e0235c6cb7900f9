"""SIEM sinks beside the event log: syslog (UDP, TCP, TLS) and a webhook.

Each sink has a bounded queue and one worker task on mitmproxy's event loop:
``send`` never waits (a full queue drops the event and counts it), so a slow or
dead SIEM never holds up the proxy. Messages are formatted by the core
(``aipolicy._siem``); this module only moves bytes.

Delivery is at least once: a syslog message or webhook batch whose delivery
failed is sent again after a reconnect or back-off, so a receiver may see an
event twice (every event carries a unique ``id`` to de-duplicate on). Events
dropped because a queue was full are counted in metrics and reported in a
``sink_dropped`` system event once the sink delivers again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from mitmproxy import ctx, exceptions

import aipolicy
from aipolicy import Metrics
from aipolicy.formats import SinkConfigError, format_message, frame, parse_syslog_url, webhook_batch

logger = logging.getLogger("aipolicy")

TOKEN_ENV = "AIPOLICY_WEBHOOK_TOKEN"
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0  # seconds between attempts, doubling
WEBHOOK_BATCH = 100  # events per POST at most
WEBHOOK_LINGER = 0.2  # seconds to wait for more events before a POST
SEND_TIMEOUT = 10.0

Report = Callable[[str, int], None]


class Sink:
    """A bounded queue and the task that drains it."""

    name = "sink"

    def __init__(self, metrics: Metrics, report: Report, queue_size: int) -> None:
        self.metrics, self.report = metrics, report
        self.queue: asyncio.Queue[Any] = asyncio.Queue(queue_size)
        self.task: asyncio.Task[None] | None = None
        self.unreported = 0  # drops not yet told in a sink_dropped event
        self.failing = False
        metrics.sink_up.labels(self.name).set(0)

    def send(self, item: Any) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped(1, "its queue is full")
        self.metrics.sink_queued.labels(self.name).set(self.queue.qsize())

    def dropped(self, count: int, why: str) -> None:
        if not self.unreported:
            logger.warning(f"aipolicy: {self.name} sink dropped events: {why}")
        self.unreported += count
        self.metrics.sink_dropped.labels(self.name).inc(count)

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, grace: float) -> None:
        if self.task is None:
            return
        deadline = asyncio.get_running_loop().time() + grace
        while not self.queue.empty() and not self.failing and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)  # let the worker deliver what is queued
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        self.task = None

    def delivered(self, count: int) -> None:
        self.metrics.sink_sent.labels(self.name).inc(count)
        self.metrics.sink_queued.labels(self.name).set(self.queue.qsize())
        self.metrics.sink_up.labels(self.name).set(1)
        if self.failing:
            logger.warning(f"aipolicy: {self.name} sink delivers again")
        self.failing = False
        if self.unreported:
            count, self.unreported = self.unreported, 0
            self.report(self.name, count)

    def failed(self, error: object) -> None:
        if not self.failing:
            logger.warning(f"aipolicy: {self.name} sink cannot deliver ({error}); retrying with back-off")
        self.failing = True
        self.metrics.sink_up.labels(self.name).set(0)

    def event(self, event: dict[str, Any], hostname: str) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        raise NotImplementedError


class SyslogSink(Sink):
    name = "syslog"

    def __init__(
        self, url: str, syslog_format: str, metrics: Metrics, report: Report, queue_size: int, cafile: str = ""
    ) -> None:
        self.transport, self.host, self.port = parse_syslog_url(url)
        self.format, self.cafile = syslog_format, cafile
        super().__init__(metrics, report, queue_size)

    def event(self, event: dict[str, Any], hostname: str) -> None:
        self.send(frame(format_message(event, self.format, hostname, aipolicy.__version__), self.transport))

    async def _run(self) -> None:
        backoff = BACKOFF_FIRST
        pending: bytes | None = None
        while True:
            try:
                async with _Connection(self) as connection:
                    while True:
                        if pending is None:
                            pending = await self.queue.get()
                        await connection.write(pending)
                        pending = None
                        backoff = BACKOFF_FIRST
                        self.delivered(1)
            except (OSError, TimeoutError, ssl.SSLError, ConnectionError) as error:
                self.failed(error)
            except Exception as error:  # anything else: keep the worker alive, retry later
                logger.exception("aipolicy: syslog sink: unexpected error")
                self.failed(error)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)


class _Connection:
    """One syslog connection: a UDP endpoint or a TCP/TLS stream."""

    def __init__(self, sink: SyslogSink) -> None:
        self.sink = sink
        self.datagram: asyncio.DatagramTransport | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reader: asyncio.StreamReader | None = None

    async def __aenter__(self) -> _Connection:
        sink = self.sink
        if sink.transport == "udp":
            self.datagram, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=(sink.host, sink.port)
            )
            return self
        context = None
        if sink.transport == "tls":
            context = ssl.create_default_context(cafile=sink.cafile or None)
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(sink.host, sink.port, ssl=context), SEND_TIMEOUT
        )
        return self

    async def write(self, data: bytes) -> None:
        if self.datagram is not None:
            self.datagram.sendto(data)
            return
        assert self.writer is not None and self.reader is not None
        if self.reader.at_eof():
            raise ConnectionError("the syslog server closed the connection")
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), SEND_TIMEOUT)

    async def __aexit__(self, *exc: object) -> None:
        if self.datagram is not None:
            self.datagram.close()
        if self.writer is not None:
            self.writer.close()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), 1)
            except (OSError, TimeoutError, ssl.SSLError):
                pass


class WebhookSink(Sink):
    name = "webhook"

    def __init__(
        self,
        url: str,
        token: str,
        metrics: Metrics,
        report: Report,
        queue_size: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        headers = {"user-agent": f"aipolicy/{aipolicy.__version__}"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        # trust_env off: events go straight to the SIEM, never through a proxy from the environment (maybe this one)
        self.client = httpx.AsyncClient(headers=headers, timeout=SEND_TIMEOUT, transport=transport, trust_env=False)
        super().__init__(metrics, report, queue_size)

    def event(self, event: dict[str, Any], hostname: str) -> None:
        self.send(event)

    async def _run(self) -> None:
        try:
            while True:
                batch = await self._batch()
                backoff = BACKOFF_FIRST
                while not await self._post(batch):
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
        finally:
            await self.client.aclose()

    async def _batch(self) -> list[dict[str, Any]]:
        batch = [await self.queue.get()]
        deadline = asyncio.get_running_loop().time() + WEBHOOK_LINGER
        while len(batch) < WEBHOOK_BATCH:
            if not self.queue.empty():
                batch.append(self.queue.get_nowait())
                continue
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            # polled, not wait_for(queue.get()): on Python 3.11 a timeout racing a get can lose the item
            await asyncio.sleep(min(left, 0.02))
        self.metrics.sink_queued.labels(self.name).set(self.queue.qsize())
        return batch

    async def _post(self, batch: list[dict[str, Any]]) -> bool:
        """True when the batch is done with: delivered, or refused for good (a 4xx other than 408 and 429)."""
        try:
            response = await self.client.post(self.url, json=webhook_batch(batch))
        except httpx.HTTPError as error:
            self.failed(f"{type(error).__name__}: {error}")
            return False
        except Exception as error:  # anything else: keep the worker alive, retry later
            logger.exception("aipolicy: webhook sink: unexpected error")
            self.failed(f"{type(error).__name__}: {error}")
            return False
        if response.is_success:
            self.delivered(len(batch))
            return True
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            logger.error(f"aipolicy: webhook refused {len(batch)} events with HTTP {response.status_code}; dropped")
            self.dropped(len(batch), f"the webhook answered HTTP {response.status_code}")
            return True
        self.failed(f"HTTP {response.status_code}")
        return False


class Sinks:
    """The addon: options, and the sinks they name; ``event()`` hands one event to every sink."""

    def __init__(self, metrics: Metrics, write: Callable[..., object]) -> None:
        self.metrics, self.write = metrics, write
        self.sinks: list[Sink] = []
        self.started = False

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option(
            "aipolicy_syslog", str, "", "Send events to a syslog server too: udp://HOST[:514], tcp://HOST[:514] or "
            "tls://HOST[:6514] (RFC 5424; TCP and TLS with octet-counting framing). Empty: off."
        )  # fmt: skip
        loader.add_option(
            "aipolicy_syslog_format", str, "rfc5424",
            "Syslog message format: rfc5424 (fields as structured data) or cef (ArcSight CEF in an RFC 5424 header).",
        )  # fmt: skip
        loader.add_option(
            "aipolicy_syslog_ca", str, "", "CA certificates (PEM file) to verify a tls:// syslog server. Empty: the system's."
        )  # fmt: skip
        loader.add_option(
            "aipolicy_webhook", str, "", "POST events as JSON batches to this http(s) URL too. Empty: off."
        )  # fmt: skip
        loader.add_option(
            "aipolicy_webhook_token_file", str, "",
            f"File holding a bearer token for the webhook (else ${TOKEN_ENV}). Never put the token on the command line.",
        )  # fmt: skip
        loader.add_option(
            "aipolicy_sink_queue", int, 10000, "Events each sink holds while its server is slow or down; beyond, dropped."
        )  # fmt: skip

    def configure(self, updated: set[str]) -> None:
        names = {"aipolicy_syslog", "aipolicy_syslog_format", "aipolicy_syslog_ca", "aipolicy_webhook"}
        if not updated & (names | {"aipolicy_webhook_token_file", "aipolicy_sink_queue"}):
            return
        sinks = self._build()
        old, self.sinks = self.sinks, sinks
        for sink in old:
            if sink.task is not None:
                sink.task.cancel()
        if self.started:
            for sink in sinks:
                sink.start()

    def _build(self) -> list[Sink]:
        options = ctx.options
        size = options.aipolicy_sink_queue
        if size < 1:
            raise exceptions.OptionsError("aipolicy_sink_queue must be at least 1")
        sinks: list[Sink] = []
        try:
            if options.aipolicy_syslog:
                if options.aipolicy_syslog_format not in aipolicy.SYSLOG_FORMATS:
                    raise SinkConfigError(
                        f"aipolicy_syslog_format is {options.aipolicy_syslog_format!r}; use rfc5424 or cef"
                    )
                if options.aipolicy_syslog_ca and not os.path.isfile(options.aipolicy_syslog_ca):
                    raise SinkConfigError(f"aipolicy_syslog_ca {options.aipolicy_syslog_ca!r} is not a file")
                sinks.append(
                    SyslogSink(
                        options.aipolicy_syslog,
                        options.aipolicy_syslog_format,
                        self.metrics,
                        self._report,
                        size,
                        options.aipolicy_syslog_ca,
                    )
                )
            if options.aipolicy_webhook:
                url = check_webhook_url(options.aipolicy_webhook)
                sinks.append(WebhookSink(url, self._token(), self.metrics, self._report, size))
        except SinkConfigError as error:
            raise exceptions.OptionsError(str(error)) from None
        return sinks

    @staticmethod
    def _token() -> str:
        path = ctx.options.aipolicy_webhook_token_file
        if not path:
            return os.environ.get(TOKEN_ENV, "").strip()
        try:
            with open(path, encoding="utf-8") as file:
                return file.read().strip()
        except OSError as error:
            raise SinkConfigError(f"aipolicy_webhook_token_file {path!r}: {error.strerror or error}") from None

    def running(self) -> None:
        self.started = True
        for sink in self.sinks:
            sink.start()

    async def done(self) -> None:
        for sink in self.sinks:
            await sink.stop(grace=2.0)

    def event(self, event: dict[str, Any], hostname: str) -> None:
        for sink in self.sinks:
            try:
                sink.event(event, hostname)
            except Exception:  # a sink must never stop the event reaching the log or the other sinks
                logger.exception(f"aipolicy: {sink.name} sink could not take an event")
                sink.dropped(1, "the event could not be formatted")

    def _report(self, sink: str, count: int) -> None:
        message = f"the {sink} sink dropped {count} events while its server was slow or down (queue full or refused)"
        logger.warning(f"aipolicy: {message}")
        self.write("sink_dropped", message, sink=sink, dropped=count)


def check_webhook_url(url: str) -> str:
    """The URL if it is http(s) and holds no credentials; else a SinkConfigError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SinkConfigError(f"webhook {url!r}: expected an http:// or https:// URL")
    if parts.password or parts.username:
        raise SinkConfigError(
            f"webhook URL for {parts.hostname!r} holds credentials: put the token in a file "
            f"(--webhook-token-file / aipolicy_webhook_token_file) or ${TOKEN_ENV} instead"
        )
    return url
