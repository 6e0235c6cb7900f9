"""DLP through a real mitmdump: a secret in a prompt is blocked; personal data and custom words
are redacted in the forwarded body (the upstream checks what it received; JSON stays valid);
clean prompts and other hosts pass untouched; events carry detector counts, never the text."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .clients import proxied_client
from .conftest import start_policy_proxy
from .harness import Proxy, Upstream

pytestmark = pytest.mark.integration

SECRET = "AKIAZ3MPLEKEY7QX4R2T"
SSN = "123-45-6789"
POLICY = """\
version: 1
catalog: catalog.yaml
rules:
  - id: no-secrets
    action: block
    match: {hosts: [gateway.example]}
    dlp: {detectors: [secret]}
  - id: redact-pii
    action: redact
    match: {hosts: [api.openai.com]}
    dlp: {detectors: [pii], keywords: {projects: [Bluebird]}}
default: allow
"""


@pytest.fixture(scope="module")
def dlp_proxy(tmp_path_factory, http_upstream: Upstream, https_upstream: Upstream) -> Iterator[Proxy]:  # type: ignore[no-untyped-def]
    proxy = start_policy_proxy(tmp_path_factory, "dlp", POLICY, http_upstream, https_upstream)
    yield proxy
    proxy.stop()


@pytest.fixture
def client(dlp_proxy: Proxy, upstream_cert: tuple[Path, Path, bytes]) -> Iterator[httpx.Client]:
    with proxied_client(dlp_proxy, upstream_cert[0]) as client:
        yield client


def chat(text: str) -> dict[str, object]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}


def test_secret_in_a_prompt_is_blocked(dlp_proxy: Proxy, client: httpx.Client, https_upstream: Upstream) -> None:
    mark = "d" + uuid.uuid4().hex[:8]
    refused = client.post(f"https://gateway.example/{mark}/v1/chat/completions", json=chat(f"use {SECRET} please"))
    assert refused.status_code == 403
    assert "found: secret.aws-access-key (1)" in refused.json()["error"]["message"]
    packed = gzip.compress(json.dumps(chat(f"gzip {SECRET}")).encode())
    zipped = client.post(
        f"https://gateway.example/{mark}/v1/gz",
        content=packed,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert zipped.status_code == 403  # decoded before it is scanned
    clean = client.post(f"https://gateway.example/{mark}/v1/ok", json=chat("what is an access key?"))
    assert clean.status_code == 200
    assert [h["path"] for h in https_upstream.hits(mark)] == [f"/{mark}/v1/ok"]
    events = dlp_proxy.events_for(mark)
    assert [(e["action"], e["rule"], e["dlp"]) for e in events] == [
        ("block", "no-secrets", {"secret.aws-access-key": 1}),
        ("block", "no-secrets", {"secret.aws-access-key": 1}),
    ]
    assert SECRET not in dlp_proxy.log.read_text()


def test_personal_data_is_redacted_in_what_the_upstream_receives(
    dlp_proxy: Proxy, client: httpx.Client, http_upstream: Upstream
) -> None:
    mark = "r" + uuid.uuid4().hex[:8]
    sent = chat(f"My SSN is {SSN} and the project is Bluebird.")
    response = client.post(f"http://api.openai.com/{mark}/v1/chat/completions", json=sent)
    assert response.status_code == 200
    (hit,) = http_upstream.hits(mark)
    received = json.loads(hit["body"])  # still valid JSON
    text = received["messages"][0]["content"]
    assert SSN not in text and "Bluebird" not in text
    assert "[REDACTED:pii.us-ssn]" in text and "[REDACTED:custom.projects]" in text
    assert received["model"] == "gpt-4o"
    (event,) = dlp_proxy.events_for(mark)
    assert (event["action"], event["rule"], event["dlp"]) == (
        "redact",
        "redact-pii",
        {"custom.projects": 1, "pii.us-ssn": 1},
    )
    assert SSN not in dlp_proxy.log.read_text()


def test_gzip_body_is_redacted_and_sent_gzip(dlp_proxy: Proxy, client: httpx.Client, http_upstream: Upstream) -> None:
    mark = "z" + uuid.uuid4().hex[:8]
    packed = gzip.compress(json.dumps(chat(f"SSN {SSN}")).encode())
    response = client.post(
        f"http://api.openai.com/{mark}/v1/chat/completions",
        content=packed,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 200
    (hit,) = http_upstream.hits(mark)
    assert hit["content_encoding"] == "gzip"
    received = json.loads(gzip.decompress(hit["raw"].encode("latin-1")))
    assert received["messages"][0]["content"] == "SSN [REDACTED:pii.us-ssn]"


def test_large_body_is_scanned_off_the_event_loop_and_still_redacted(
    dlp_proxy: Proxy, client: httpx.Client, http_upstream: Upstream
) -> None:
    mark = "l" + uuid.uuid4().hex[:8]
    filler = "lorem ipsum " * 20_000  # ~240 KB: above the size scanned on the event loop
    response = client.post(f"http://api.openai.com/{mark}/v1/chat/completions", json=chat(f"{filler} {SSN}"))
    assert response.status_code == 200
    (hit,) = http_upstream.hits(mark)
    received = json.loads(hit["body"])["messages"][0]["content"]
    assert len(received) > 200_000 and SSN not in received and received.endswith("[REDACTED:pii.us-ssn]")
    (event,) = dlp_proxy.events_for(mark)
    assert event["action"] == "redact" and event["dlp"] == {"pii.us-ssn": 1}


def test_a_prompt_without_findings_passes_unchanged(client: httpx.Client, http_upstream: Upstream) -> None:
    mark = "c" + uuid.uuid4().hex[:8]
    body = json.dumps(chat("Summarise the DeepSeek R1 paper"), separators=(",", ":"))
    response = client.post(
        f"http://api.openai.com/{mark}/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    (hit,) = http_upstream.hits(mark)
    assert hit["body"] == body  # byte for byte
