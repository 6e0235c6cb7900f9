"""Drive one case through the real proxy with a real client and report what happened."""

from __future__ import annotations

import ssl
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.cases import Case

from .harness import Proxy, connect_tls, http_over


@dataclass
class Outcome:
    status: int  # HTTP status the client saw (403 for a refused CONNECT), 0 if none
    body: bytes
    tls_error: str = ""


def client_context(*cas: Path) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for ca in cas:
        context.load_verify_locations(str(ca))
    return context


def send(proxy: Proxy, case: Case, upstream_ca: Path, accept: str = "application/json", marker: str = "") -> Outcome:
    parts = urllib.parse.urlsplit(case.url)
    if case.sni:
        status_line, sock, detail = connect_tls(proxy.port, parts.netloc, case.sni, [proxy.ca, upstream_ca])
        if sock is None:
            return Outcome(403 if " 403" in status_line else 0, b"", str(detail))
        status, _, body = http_over(sock, parts.netloc, parts.path or "/", accept)
        sock.close()
        return Outcome(status, body)
    headers = {"accept": accept, "user-agent": f"aipolicy-tests/{marker}"}
    if case.host_header:
        headers["host"] = case.host_header
    if case.header:
        name, _, value = case.header.partition(":")
        headers[name] = value
    if case.body:
        headers["content-type"] = "application/json"
    if case.encoding:
        headers["content-encoding"] = case.encoding
    with httpx.Client(
        proxy=proxy.url, verify=client_context(proxy.ca, upstream_ca), timeout=10, trust_env=False
    ) as client:
        try:
            if case.body:
                response = client.post(case.url, headers=headers, content=case.content())
            else:
                response = client.get(case.url, headers=headers)
        except httpx.ProxyError as error:
            return Outcome(403 if "403" in str(error) else 0, str(error).encode())
        return Outcome(response.status_code, response.content)


def proxied_client(proxy: Proxy, *cas: Path, timeout: float = 10) -> httpx.Client:
    """An httpx client that goes through the proxy, trusting its CA and any other CAs given."""
    return httpx.Client(proxy=proxy.url, verify=client_context(proxy.ca, *cas), trust_env=False, timeout=timeout)
