"""The shipped AI-app catalogue and policies: sourced, consistent, and narrow."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

import aipolicy
from aipolicy import Policy, RequestFacts, decide, load_catalog, load_policy
from aipolicy.policy._providers import load_providers

POLICIES = Path(__file__).resolve().parents[2] / "policies"
CATALOG_FILE = POLICIES / "catalog.yaml"


@pytest.fixture(scope="module")
def raw_catalog() -> dict[str, Any]:
    data = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy(aipolicy.default_policy())


def raw_apps(raw_catalog: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(vendor, app) for vendor in raw_catalog["vendors"] for app in vendor.get("apps", [])]


def example_host(pattern: str) -> str:
    """A host that a catalogue host pattern covers."""
    if pattern.startswith("*."):
        return "x." + pattern[2:]
    return pattern.lstrip("=")


def example_request(target: aipolicy.Target) -> tuple[str, str]:
    """A (host, path) that a catalogue target covers."""
    host = example_host(target.host)
    if target.path is None:
        return host, "/"
    path = target.path.text.replace("*", "x")
    return host, path + ("/x" if not path.endswith("/") else "x")


# --- the file itself ------------------------------------------------------------------------


def test_shipped_catalogue_loads() -> None:
    catalog = load_catalog(aipolicy.shipped_catalog())
    assert catalog.vendors and catalog.apps
    assert Path(aipolicy.shipped_catalog()).resolve() == CATALOG_FILE.resolve()
    assert {"genai", "genai-prc"} <= set(catalog.categories)


def test_every_entry_cites_an_https_source(raw_catalog: dict[str, Any]) -> None:
    missing: list[str] = []

    def check(entry: dict[str, Any], what: str) -> None:
        source = entry.get("source")
        if not (isinstance(source, str) and source.startswith("https://") and len(source) > len("https://x.y")):
            missing.append(f"{what}: {source!r}")

    for hub_id, hub in raw_catalog.get("hubs", {}).items():
        check(hub, f"hub {hub_id}")
    for vendor in raw_catalog["vendors"]:
        check(vendor, f"vendor {vendor['id']}")
        for app in vendor.get("apps", []):
            check(app, f"app {app['id']}")
            for host in app.get("hosts", []):
                check(host, f"host {host.get('host')} of {app['id']}")
            for weights in app.get("weights", []):
                check(weights, f"weights {weights.get('name')} of {app['id']}")
    assert missing == []


def test_ids_are_unique(raw_catalog: dict[str, Any]) -> None:
    vendor_ids = Counter(vendor["id"] for vendor in raw_catalog["vendors"])
    app_ids = Counter(app["id"] for _, app in raw_apps(raw_catalog))
    assert [v for v, n in vendor_ids.items() if n > 1] == []
    assert [a for a, n in app_ids.items() if n > 1] == []


def test_no_host_is_listed_twice(raw_catalog: dict[str, Any]) -> None:
    hosts = Counter(host["host"] for _, app in raw_apps(raw_catalog) for host in app.get("hosts", []))
    assert [h for h, n in hosts.items() if n > 1] == []


def test_every_vendor_has_a_country_and_apps(raw_catalog: dict[str, Any]) -> None:
    for vendor in raw_catalog["vendors"]:
        assert len(vendor["country"]) == 2 and vendor["country"].isupper(), vendor["id"]
        assert vendor.get("apps"), vendor["id"]


# --- DeepSeek -------------------------------------------------------------------------------


def test_deepseek_covers_every_role(raw_catalog: dict[str, Any]) -> None:
    vendor = next(v for v in raw_catalog["vendors"] if v["id"] == "deepseek")
    app = next(a for a in vendor["apps"] if a["id"] == "deepseek")
    roles = {host["role"] for host in app["hosts"]}
    assert {"web", "api", "docs", "status", "cdn"} <= roles
    hosts = {host["host"] for host in app["hosts"]}
    assert {"chat.deepseek.com", "api.deepseek.com", "platform.deepseek.com"} <= hosts
    assert {w["hub"] for w in app["weights"]} >= {"huggingface"}
    assert app["categories"] == ["genai", "genai-prc"]
    assert vendor["country"] == "CN"


@pytest.mark.parametrize(
    ("host", "path"),
    [
        ("chat.deepseek.com", "/"),
        ("api.deepseek.com", "/chat/completions"),
        ("platform.deepseek.com", "/api_keys"),
        ("api-docs.deepseek.com", "/"),
        ("status.deepseek.com", "/"),
        ("cdn.deepseek.com", "/static/app.js"),
        ("www.deepseek.com", "/"),
        ("huggingface.co", "/deepseek-ai/DeepSeek-R1/resolve/main/model.safetensors"),
        ("huggingface.co", "/api/models/deepseek-ai/DeepSeek-V3"),
        ("registry.ollama.ai", "/v2/library/deepseek-r1/manifests/latest"),
    ],
)
def test_default_policy_blocks_deepseek_in_any_capacity(default: Policy, host: str, path: str) -> None:
    decision = decide(default, RequestFacts(hosts=(host,), path=path))
    assert (decision.action, decision.rule) == ("block", "deepseek-any-capacity")
    assert decision.directive is not None and decision.directive["id"] == "USN-2025-01-24-DEEPSEEK"


# --- PRC and Western apps under the default policy -------------------------------------------


def test_every_prc_app_belongs_to_a_vendor_and_is_blocked(default: Policy) -> None:
    catalog = default.catalog
    prc = catalog.apps_in_category("genai-prc")
    assert len(prc) >= 10
    not_blocked: list[str] = []
    for app in prc:
        assert app.vendor in catalog.vendors and app.id in catalog.vendors[app.vendor].apps
        assert app.targets, app.id
        for target in app.targets:
            host, path = example_request(target)
            decision = decide(default, RequestFacts(hosts=(host,), path=path))
            if decision.action != "block" or decision.rule not in ("deepseek-any-capacity", "prc-generative-ai"):
                not_blocked.append(f"{app.id}: {host}{path} -> {decision.action} by {decision.rule}")
    assert not_blocked == []


WESTERN_APPS = [
    "chatgpt", "sora", "claude", "gemini", "notebooklm", "microsoft-copilot", "github-copilot",
    "perplexity", "mistral", "grok", "character-ai", "poe", "meta-ai",
]  # fmt: skip


@pytest.mark.parametrize("app_id", WESTERN_APPS)
def test_western_apps_are_monitored_not_blocked(default: Policy, app_id: str) -> None:
    app = default.catalog.apps[app_id]
    assert "genai-prc" not in app.categories
    assert default.catalog.vendors[app.vendor].country != "CN"
    for target in app.targets:
        host, path = example_request(target)
        # body=b"": a request whose (empty) body has been read, as model rules on API hosts need
        decision = decide(default, RequestFacts(hosts=(host,), path=path, body=b""))
        assert (decision.action, decision.rule, decision.app) == ("monitor", "generative-ai-monitored", app_id), (
            f"{host}{path}"
        )


def test_western_vendors_are_listed(default: Policy) -> None:
    assert {"openai", "anthropic", "google", "microsoft", "perplexity", "mistral", "xai"} <= set(
        default.catalog.vendors
    )


GENERAL_PURPOSE = [
    "baidu.com", "www.baidu.com", "google.com", "www.google.com", "mail.google.com", "tencent.com", "qq.com",
    "mail.qq.com", "aliyun.com", "www.aliyun.com", "aliyuncs.com", "oss-cn-hangzhou.aliyuncs.com", "bytedance.com",
    "microsoft.com", "www.microsoft.com", "x.com", "volces.com", "console.volces.com", "bing.com",
    "www.bing.com", "googleapis.com", "fonts.googleapis.com", "gstatic.com", "githubusercontent.com",
    "raw.githubusercontent.com", "baidubce.com", "cloud.tencent.com", "huggingface.co", "github.com",
    "ollama.com", "cloud.microsoft", "google", "twitter.com", "alibaba.com", "alibabacloud.com",
]  # fmt: skip


@pytest.mark.parametrize("host", GENERAL_PURPOSE)
def test_general_purpose_domains_are_not_blocked(default: Policy, host: str) -> None:
    decision = decide(default, RequestFacts(hosts=(host,), path="/"))
    assert decision.action != "block", decision.rule
    assert default.catalog.index.lookup(host) == []


# --- every shipped YAML ---------------------------------------------------------------------

SHIPPED = sorted(POLICIES.rglob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(POLICIES)) for p in SHIPPED])
def test_every_shipped_yaml_validates(path: Path) -> None:
    if path.name == "catalog.yaml":
        load_catalog(path)
    elif path.name == "providers.yaml":
        providers, _ = load_providers(path)
        assert len(providers) >= 20
    else:
        policy = load_policy(path)
        assert policy.rules
        assert [w for w in policy.warnings if w.code != "review-due"] == []


def test_shipped_files_include_the_default_and_the_catalogue() -> None:
    names = {p.relative_to(POLICIES).as_posix() for p in SHIPPED}
    assert {"default.yaml", "catalog.yaml"} <= names


def test_default_policy_helper() -> None:
    path = aipolicy.default_policy()
    assert Path(path).resolve() == (POLICIES / "default.yaml").resolve()
    assert Path(aipolicy.policies_dir()).resolve() == POLICIES.resolve()
    policy = load_policy(path)
    assert policy.default == "allow"
    assert [rule.id for rule in policy.rules] == [
        "deepseek-any-capacity",
        "prc-generative-ai",
        "generative-ai-monitored",
    ]
    assert policy.warnings == []


def test_default_policy_allows_ordinary_traffic(default: Policy) -> None:
    decision = decide(default, RequestFacts(hosts=("example.org",), path="/"))
    assert (decision.action, decision.rule) == ("allow", "default")
