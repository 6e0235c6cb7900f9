"""Model rules: the model id read where each provider keeps it, never from the prompt."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import brotli
import pytest
import zstandard

import aipolicy
from aipolicy import PolicyError, RequestFacts, decide, decide_oversize, decode_body
from aipolicy.policy._providers import ModelReader, load_providers

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def policy() -> aipolicy.Policy:
    return aipolicy.load_policy(FIXTURES / "policy.yaml")


def facts(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> RequestFacts:
    _, host, _, path = aipolicy.split_url(url)
    return RequestFacts(hosts=(host,), path=path, method="POST", headers=headers or JSON, body=body)


@pytest.mark.parametrize(
    ("body", "action", "model"),
    [
        (b'{"model": "deepseek/deepseek-r1"}', "block", "deepseek/deepseek-r1"),
        (b'{"model": "DEEPSEEK-CHAT"}', "block", "DEEPSEEK-CHAT"),
        (b'{"model": "gpt-4o", "models": ["gpt-4o", "deepseek/deepseek-v3"]}', "block", "deepseek/deepseek-v3"),
        (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "use deepseek"}]}', "allow", ""),
        (b'{"messages": [{"model": "deepseek"}]}', "allow", ""),  # not the top-level model field
        (b'{"model": ["not", "a", "string"]}', "allow", ""),
        (b'{"model": 42}', "allow", ""),
        (b"not json at all deepseek", "allow", ""),
        (b"", "allow", ""),
    ],
    ids=[
        "model",
        "upper case",
        "fallback array",
        "prompt mentions it",
        "nested field",
        "odd list",
        "number",
        "not json",
        "empty",
    ],
)
def test_model_in_json_body(policy, body: bytes, action: str, model: str) -> None:  # type: ignore[no-untyped-def]
    decision = decide(policy, facts("https://gateway.example/v1/chat/completions", body))
    assert (decision.action, decision.model, decision.final) == (action, model, True)
    if action == "block":
        assert (decision.rule, decision.app, decision.vendor) == ("deepseek", "deepseek", "deepseek")


def test_body_not_read_yet_is_not_final(policy) -> None:  # type: ignore[no-untyped-def]
    decision = decide(policy, facts("https://gateway.example/v1/chat/completions", None))
    assert not decision.final and not decision.blocked


def test_connection_level_on_a_content_host_is_not_blocked(policy) -> None:  # type: ignore[no-untyped-def]
    """A model or path rule that would block must not refuse the CONNECT: only the request can tell."""
    for host in ("gateway.example", "huggingface.co"):
        decision = decide(policy, RequestFacts(hosts=(host,)))
        assert not decision.final and not decision.blocked, host
    default = aipolicy.load_policy(aipolicy.default_policy())
    decision = decide(default, RequestFacts(hosts=("huggingface.co",)))
    assert not decision.final and not decision.blocked


def test_json_only_when_the_content_type_says_so(policy) -> None:  # type: ignore[no-untyped-def]
    body = b'{"model": "deepseek-r1"}'
    as_form = decide(
        policy, facts("https://gateway.example/v1", body, {"content-type": "application/x-www-form-urlencoded"})
    )
    assert as_form.action == "allow"
    untyped = decide(policy, facts("https://gateway.example/v1", body, {}))
    assert untyped.action == "block"  # no content type: sniffed as JSON, failing closed


@pytest.mark.parametrize(
    ("url", "action", "model"),
    [
        ("https://bedrock-runtime.us-east-1.amazonaws.com/model/deepseek.r1-v1:0/invoke", "block", "deepseek.r1-v1:0"),
        (
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.deepseek.r1-v1%3A0/converse-stream",
            "block",
            "arn:aws:bedrock:us-east-1:123:inference-profile/us.deepseek.r1-v1:0",
        ),
        ("https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-v2/invoke", "allow", ""),
        (
            "https://api.cloudflare.com/client/v4/accounts/abc/ai/run/@cf/deepseek-ai/deepseek-r1-distill-qwen-32b",
            "block",
            "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b",
        ),
        ("https://api.cloudflare.com/client/v4/accounts/abc/ai/run/@cf/meta/llama-3-8b-instruct", "allow", ""),
    ],
)
def test_model_in_path(policy, url: str, action: str, model: str) -> None:  # type: ignore[no-untyped-def]
    decision = decide(policy, facts(url, b'{"prompt": "deepseek"}'))
    assert (decision.action, decision.model) == (action, model)


def test_path_only_provider_decides_without_the_body(policy) -> None:  # type: ignore[no-untyped-def]
    decision = decide(
        policy, facts("https://bedrock-runtime.us-east-1.amazonaws.com/model/deepseek.r1-v1:0/invoke", None)
    )
    assert decision.final and decision.blocked


def test_model_in_header(policy) -> None:  # type: ignore[no-untyped-def]
    assert decide(policy, facts("https://header.example/v1", None, {"x-model": "deepseek-coder"})).blocked
    assert decide(policy, facts("https://header.example/v1", None, {"x-model": "llama3"})).action == "allow"


def test_explicit_model_names_in_a_rule(tmp_path: Path) -> None:
    for name in ("catalog.yaml", "providers.yaml"):
        (tmp_path / name).write_text((FIXTURES / name).read_text())
    (tmp_path / "p.yaml").write_text(
        "version: 1\ncatalog: catalog.yaml\nrules:\n  - id: hidden\n    action: block\n"
        "    match: {models: [team-a-reasoner, 'r1-*']}\n"
    )
    policy = aipolicy.load_policy(tmp_path / "p.yaml")
    assert decide(policy, facts("https://gateway.example/v1", b'{"model": "Team-A-Reasoner"}')).rule == "hidden"
    assert decide(policy, facts("https://gateway.example/v1", b'{"model": "r1-distill"}')).blocked
    assert decide(policy, facts("https://gateway.example/v1", b'{"model": "team-b"}')).action == "allow"
    # a model rule applies on provider hosts only, where the model id has a known place
    assert decide(policy, facts("https://other.example/v1", b'{"model": "team-a-reasoner"}')).action == "allow"


def test_oversize_decision(policy) -> None:  # type: ignore[no-untyped-def]
    decision = decide_oversize(policy, facts("https://gateway.example/v1", None), 99_000_000)
    assert (decision.action, decision.rule, decision.host) == ("block", "aipolicy:body-too-large", "gateway.example")
    assert "99,000,000 bytes" in decision.reason


def test_model_reader_parses_the_body_once() -> None:
    providers, _ = load_providers(FIXTURES / "providers.yaml")
    reader = ModelReader("/v1", JSON, b'{"model": "a", "models": ["b", 3]}')
    assert reader.models(providers["gateway"]) == ["a", "b"]
    assert reader.models(providers["workers-ai"]) == ["a"]
    assert reader._json == {"model": "a", "models": ["b", 3]}


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda d: zlib.compress(d)[2:-4]),  # raw deflate
        ("br", brotli.compress),
        ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)),
        ("gzip, br", lambda d: brotli.compress(gzip.compress(d))),
        ("identity", lambda d: d),
    ],
)
def test_decode_body(encoding: str, compress) -> None:  # type: ignore[no-untyped-def]
    data = b'{"model": "deepseek-r1"}' * 10
    assert decode_body(compress(data), encoding, 10_000) == data


def test_decode_body_stops_a_compression_bomb() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)
    with pytest.raises(ValueError, match="larger than 1000000 bytes"):
        decode_body(bomb, "gzip", 1_000_000)


def test_decode_body_errors() -> None:
    with pytest.raises(ValueError, match="unsupported content-encoding 'compress'"):
        decode_body(b"x", "compress", 100)
    with pytest.raises(ValueError, match="broken compressed body"):
        decode_body(b"not gzip", "gzip", 100)


def test_provider_file_problems(tmp_path: Path) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text(
        "version: 1\nproviders:\n"
        "  - id: a\n    name: A\n    source: https://a.example/\n    hosts: ['=a.example']\n    model: {path: ['^/m/(?P<x>.+)']}\n"
        "  - id: b\n    name: B\n    source: http://b.example/\n    hosts: ['b.example/x']\n    model: {}\n"
    )
    with pytest.raises(PolicyError) as raised:
        load_providers(path)
    messages = [p.message for p in raised.value.problems]
    assert "provider 'a': path regex '^/m/(?P<x>.+)' has no (?P<model>…) group" in messages
    assert "provider 'b' source 'http://b.example/' must be an https:// URL" in messages
    assert "provider 'b': 'b.example/x' must be a host or domain" in messages
    assert "provider 'b'.model says nowhere to read the model id (use json, path or header)" in messages


def _multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, dict[str, str]]:
    import httpx

    request = httpx.Request("POST", "https://gateway.example/v1/audio/transcriptions", data=fields, files=files)
    return request.read(), {"content-type": request.headers["content-type"]}


def test_model_in_a_multipart_upload(policy) -> None:  # type: ignore[no-untyped-def]
    body, headers = _multipart({"model": "deepseek-r1", "language": "en"}, {"file": ("a.wav", b"RIFF", "audio/wav")})
    blocked = decide(policy, facts("https://gateway.example/v1/audio/transcriptions", body, headers))
    assert (blocked.action, blocked.model) == ("block", "deepseek-r1")
    body, headers = _multipart({"model": "whisper-1"}, {"file": ("deepseek-r1.wav", b"deepseek-r1", "audio/wav")})
    other = decide(policy, facts("https://gateway.example/v1/audio/transcriptions", body, headers))
    assert other.action == "allow"  # a file's name or content is not the model field


def test_a_file_part_named_model_is_not_read_as_the_model(policy) -> None:  # type: ignore[no-untyped-def]
    body, headers = _multipart({}, {"model": ("m.txt", b"deepseek-r1", "text/plain")})
    assert decide(policy, facts("https://gateway.example/v1/files", body, headers)).action == "allow"


def test_model_in_a_urlencoded_form(policy) -> None:  # type: ignore[no-untyped-def]
    headers = {"content-type": "application/x-www-form-urlencoded"}
    decision = decide(policy, facts("https://gateway.example/v1", b"model=deepseek-chat&x=1", headers))
    assert (decision.action, decision.model) == ("block", "deepseek-chat")


@pytest.mark.parametrize(
    "body",
    [b"", b"--x\r\n", b"no boundary at all", b"--b\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--b--\r\n"],
)
def test_broken_multipart_bodies_are_not_an_error(policy, body: bytes) -> None:  # type: ignore[no-untyped-def]
    headers = {"content-type": "multipart/form-data; boundary=b"}
    assert decide(policy, facts("https://gateway.example/v1", body, headers)).action == "allow"
