"""One table of cases that drives both ``aipolicy policy test`` and the real
proxy (tests/cli/test_policy_test_agrees.py, tests/integration/test_cases.py).

Each case runs against tests/fixtures/policy.yaml. ``{m}`` is replaced by a
marker unique to the run, so the proxy's events for a case can be told apart.
``HTTP``/``HTTPS`` stand for the loopback upstreams' addresses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    url: str
    action: str
    rule: str
    sni: str = ""  # TLS server name, when it differs from the URL's host
    host_header: str = ""  # Host header, when it differs from the URL's host
    body: str = ""  # a JSON request body (sent with POST)
    encoding: str = ""  # Content-Encoding to compress the body with: gzip
    header: str = ""  # one more request header, NAME:VALUE

    def render(self, marker: str, http_port: int, https_port: int) -> Case:
        def fill(text: str) -> str:
            return (
                text.replace("{m}", marker)
                .replace("HTTPS", f"127.0.0.1:{https_port}")
                .replace("HTTP", f"127.0.0.1:{http_port}")
            )

        return Case(
            self.name,
            fill(self.url),
            self.action,
            self.rule,
            fill(self.sni),
            fill(self.host_header),
            self.body,
            self.encoding,
            self.header,
        )


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
]
