"""One table of cases that drives both ``aipolicy policy test`` and the real
proxy (tests/integration/test_cases.py): every row gets the same answer from both.

Each case runs against tests/fixtures/policy.yaml. ``{m}`` is replaced by a
marker unique to the run, so the proxy's events for a case can be told apart.
``HTTP``/``HTTPS`` stand for the loopback upstreams' addresses.

What the proxy does follows from the action (``status``, ``logged``); a few rows
say more: the code of the proxy's JSON answer, what the upstream must receive
after a redaction, and a quota budget being counted.
"""

from __future__ import annotations

import functools
import gzip
import json
import random
import zlib
from dataclasses import dataclass, field, replace

SECRET = "AKIAZ3MPLEKEY7QX4R2T"  # an AWS access key id, as the secret detector finds it


@dataclass(frozen=True)
class Case:
    name: str
    url: str
    action: str
    rule: str
    sni: str = ""  # TLS server name, when it differs from the URL's host
    host_header: str = ""  # Host header, when it differs from the URL's host
    body: str = field(default="", repr=False)  # a JSON request body (sent with POST); some are megabytes
    encoding: str = ""  # Content-Encoding to compress the body with: gzip or deflate
    header: str = ""  # one more request header, NAME:VALUE
    control: str = ""  # the decision's control: "read-only" when a read-only rule refused a submission
    code: str = ""  # the `error.code` of the proxy's JSON answer (aipolicy_warn); "" not checked
    forwarded: str = ""  # a text the upstream must receive in the (decoded) body: what a redaction left
    withheld: str = ""  # a text of the body that must reach neither the upstream nor the event log
    counted: bool = False  # quota: the budget is one request, so the same request again gets 429

    @property
    def status(self) -> int:
        """The status the proxy answers with: 403 when it refuses or asks to confirm, else the upstream's 200."""
        return 403 if self.action in ("block", "warn") else 200

    @property
    def logged(self) -> bool:
        """Does the proxy write a decision event? Not for allow, a quota within budget, read-only browsing."""
        return self.action in ("block", "monitor", "warn", "redact")

    def content(self) -> bytes:
        """The body as sent: compressed as ``encoding`` says."""
        compress = {"": bytes, "gzip": gzip.compress, "deflate": zlib.compress}[self.encoding]
        return compress(self.body.encode())

    def render(self, marker: str, http_port: int, https_port: int) -> Case:
        def fill(text: str) -> str:
            return (
                text.replace("{m}", marker)
                .replace("HTTPS", f"127.0.0.1:{https_port}")
                .replace("HTTP", f"127.0.0.1:{http_port}")
            )

        return replace(self, url=fill(self.url), sni=fill(self.sni), host_header=fill(self.host_header))


def prompt(text: str) -> str:
    """A chat request's JSON body with one user message."""
    return json.dumps({"messages": [{"role": "user", "content": text}]})


@functools.cache
def bomb(noise: int = 0) -> str:
    """A JSON prompt for a banned model that decodes past settings.inspect_max_bytes (8 MiB) but
    compresses to a few KB; ``noise`` adds random hex that compresses to about that many bytes."""
    rng = random.Random(noise)
    padding = rng.randbytes(noise).hex() + "0" * (8 * 1024 * 1024)
    return json.dumps({"model": "deepseek/deepseek-r1", "messages": [{"role": "user", "content": padding}]})


CASES = [
    Case("banned host over plain HTTP", "http://{m}.chat.deepseek.com/chat", "block", "deepseek"),
    Case("banned host over CONNECT", "https://{m}.chat.deepseek.com/", "block", "deepseek"),
    Case("banned apex domain", "http://deepseek.com/{m}", "block", "deepseek"),
    Case("upper case and trailing dot, plain HTTP", "http://{m}.CHAT.DeepSeek.COM./", "block", "deepseek"),
    Case("upper case and trailing dot, CONNECT", "https://{m}.API.DEEPSEEK.COM./", "block", "deepseek"),
    Case(
        "banned name by SNI only (CONNECT to an IP address)",
        "https://HTTPS/{m}",
        "block",
        "deepseek",
        sni="{m}.chat.deepseek.com",
    ),
    Case(
        "banned name by Host header only", "http://HTTP/{m}", "block", "deepseek", host_header="{m}.chat.deepseek.com"
    ),
    Case("exact host from the catalogue", "http://deepseek.example/{m}", "block", "deepseek"),
    Case("subdomain of an exact-only host is not matched", "http://{m}.deepseek.example/", "allow", "default"),
    Case("address in a listed network", "http://203.0.113.9/{m}", "block", "extra-list"),
    Case("subdomain-only list entry", "http://{m}.sub.example/", "block", "extra-list"),
    Case(
        "weights download of a banned org",
        "https://huggingface.co/deepseek-ai/DeepSeek-R1/resolve/main/{m}.safetensors",
        "block",
        "deepseek",
    ),
    Case(
        "weights path percent-encoded",
        "https://huggingface.co/deepseek%2Dai/DeepSeek-V3/resolve/main/{m}",
        "block",
        "deepseek",
    ),
    Case(
        "allowed path under a banned org",
        "https://huggingface.co/deepseek-ai/public-docs/{m}",
        "allow",
        "allow-hf-public",
    ),
    Case(
        "another org's weights stay reachable", "https://huggingface.co/Qwen/Qwen2/resolve/main/{m}", "allow", "default"
    ),
    Case("monitored AI API over plain HTTP", "http://api.openai.com/v1/{m}", "monitor", "ai-monitor"),
    Case("monitored AI site over CONNECT", "https://{m}.chatgpt.com/", "monitor", "ai-monitor"),
    Case("non-AI host over plain HTTP", "http://HTTP/{m}", "allow", "default"),
    Case("non-AI host over CONNECT", "https://HTTPS/{m}", "allow", "default"),
    # Models served by other providers: the model id is read where the provider keeps it.
    Case(
        "banned model in the body",
        "https://gateway.example/api/v1/{m}",
        "block",
        "deepseek",
        body='{"model": "deepseek/deepseek-r1", "messages": []}',
    ),
    Case(
        "banned model in a fallback array",
        "https://gateway.example/api/v1/{m}",
        "block",
        "deepseek",
        body='{"model": "openai/gpt-4o", "models": ["openai/gpt-4o", "DeepSeek/DeepSeek-Chat"]}',
    ),
    Case(
        "banned model in a gzip-compressed body",
        "https://gateway.example/api/v1/{m}",
        "block",
        "deepseek",
        body='{"model": "deepseek-ai/DeepSeek-V3"}',
        encoding="gzip",
    ),
    Case(
        "another model on the same gateway",
        "https://gateway.example/api/v1/{m}",
        "allow",
        "default",
        body='{"model": "openai/gpt-4o", "messages": []}',
    ),
    Case(
        "a prompt that mentions the banned model",
        "https://gateway.example/api/v1/{m}",
        "allow",
        "default",
        body='{"model": "mistral-large", "messages": [{"role": "user", "content": "Is deepseek-r1 better? model: deepseek"}]}',
    ),
    Case(
        "banned model in the path, percent-encoded ARN",
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fdeepseek.r1-v1%3A0/converse",
        "block",
        "deepseek",
        body='{"messages": []}',
    ),
    Case(
        "another model in the path",
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke?m={m}",
        "allow",
        "default",
        body='{"prompt": "deepseek?"}',
    ),
    Case(
        "banned model in a Workers AI path",
        "https://api.cloudflare.com/client/v4/accounts/{m}/ai/run/@cf/deepseek-ai/deepseek-r1-distill-qwen-32b",
        "block",
        "deepseek",
        body='{"prompt": "hello"}',
    ),
    Case(
        "banned model in a header",
        "https://header.example/v1/{m}",
        "block",
        "deepseek",
        header="x-model:deepseek-coder",
    ),
    # A body a model rule must read but that decodes past the cap gets settings.oversize (block).
    Case(
        "compression bomb past the inspection cap",
        "https://gateway.example/api/v1/{m}",
        "block",
        "aipolicy:body-too-large",
        body=bomb(),
        encoding="gzip",
    ),
    Case(
        "zlib deflate bomb past the inspection cap",
        "https://gateway.example/api/v1/{m}",
        "block",
        "aipolicy:body-too-large",
        body=bomb(),
        encoding="deflate",
    ),
    Case(
        "compression bomb large enough to be decoded in a worker thread",
        "https://gateway.example/api/v1/{m}",
        "block",
        "aipolicy:body-too-large",
        body=bomb(noise=80 * 1024),
        encoding="gzip",
    ),
    # warn: an API client gets a 403 it can show; a browser would get the confirmation page.
    Case(
        "warn: an API client is asked to confirm first",
        "http://{m}.warn.allowed.test/v1/chat",
        "warn",
        "confirm-first",
        code="aipolicy_warn",
    ),
    Case(
        "warn over CONNECT: the connection is decrypted to ask",
        "https://{m}.warn.gateway.example/v1/chat",
        "warn",
        "confirm-first",
        code="aipolicy_warn",
    ),
    # quota: within the budget the request passes, and is counted.
    Case(
        "quota: the first request passes and is counted",
        "http://quota.allowed.test/{m}",
        "quota",
        "budget",
        counted=True,
    ),
    # redact: what the detectors find is replaced before the request is sent; what cannot be is blocked.
    Case(
        "redact: a secret in a prompt is replaced before it is sent",
        "http://redact.allowed.test/v1/{m}",
        "redact",
        "redact-secrets",
        body=prompt(f"deploy with {SECRET} please"),
        forwarded="deploy with [REDACTED:secret.aws-access-key] please",
        withheld=SECRET,
    ),
    Case(
        "redact: a gzip-compressed prompt is redacted and sent gzip-compressed",
        "http://redact.allowed.test/v1/{m}",
        "redact",
        "redact-secrets",
        body=prompt(f"key {SECRET}"),
        encoding="gzip",
        forwarded="key [REDACTED:secret.aws-access-key]",
        withheld=SECRET,
    ),
    Case(
        "redact: a secret used as a JSON key cannot be redacted, so it is blocked",
        "http://redact.allowed.test/v1/{m}",
        "block",
        "redact-secrets",
        body=json.dumps({SECRET: "the key is the secret"}),
        withheld=SECRET,
    ),
    Case(
        "redact: a prompt without findings passes untouched",
        "http://redact.allowed.test/v1/{m}",
        "allow",
        "default",
        body=prompt("what is an access key?"),
        forwarded="what is an access key?",
    ),
    # read-only: reading passes; submitting a prompt is refused.
    Case("read-only: browsing passes", "http://readonly.allowed.test/{m}", "read-only", "read-only-app"),
    Case(
        "read-only: a prompt is refused",
        "http://readonly.allowed.test/{m}",
        "block",
        "read-only-app",
        body='{"prompt": "hello"}',
        control="read-only",
        code="aipolicy_blocked",
    ),
    Case(
        "read-only over CONNECT: browsing passes",
        "https://{m}.readonly.gateway.example/",
        "read-only",
        "read-only-app",
    ),
    Case(
        "read-only over CONNECT: a prompt is refused",
        "https://{m}.readonly.gateway.example/v1/chat",
        "block",
        "read-only-app",
        body='{"prompt": "hello"}',
        control="read-only",
        code="aipolicy_blocked",
    ),
]
