from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import Proxy, Upstream, make_certificate, start_proxy, start_upstream

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
UPSTREAM_NAMES = [
    "localhost",
    "127.0.0.1",
    "api.openai.com",
    "chatgpt.com",
    "*.chatgpt.com",
    "huggingface.co",
    "allowed.test",
]


@pytest.fixture(scope="session")
def upstream_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    return make_certificate(tmp_path_factory.mktemp("upstream-cert"), UPSTREAM_NAMES)


@pytest.fixture(scope="session")
def http_upstream() -> Iterator[Upstream]:
    upstream = start_upstream()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="session")
def https_upstream(upstream_cert: tuple[Path, Path, bytes]) -> Iterator[Upstream]:
    upstream = start_upstream((upstream_cert[0], upstream_cert[1]))
    upstream.cert_der = upstream_cert[2]
    yield upstream
    upstream.stop()


def routes(http_upstream: Upstream, https_upstream: Upstream) -> dict[str, int]:
    return {
        "api.openai.com": http_upstream.port,
        "chatgpt.com": https_upstream.port,
        "huggingface.co": https_upstream.port,
        "allowed.test": http_upstream.port,
        "example-banned.test": http_upstream.port,  # allowed until `aipolicy policy block` bans it
        "deepseek.example": http_upstream.port,
        "gateway.example": https_upstream.port,
        "bedrock-runtime.us-east-1.amazonaws.com": https_upstream.port,
        "api.cloudflare.com": https_upstream.port,
        "header.example": https_upstream.port,
        "doh.example": http_upstream.port,  # only its subdomains are allowed, and reach this
    }


def copy_fixture_policy(directory: Path) -> Path:
    shutil.copy(FIXTURES / "catalog.yaml", directory / "catalog.yaml")
    shutil.copy(FIXTURES / "providers.yaml", directory / "providers.yaml")
    shutil.copy(FIXTURES / "policy.yaml", directory / "policy.yaml")
    return directory / "policy.yaml"


@pytest.fixture(scope="module")
def make_proxy(
    tmp_path_factory: pytest.TempPathFactory, http_upstream: Upstream, https_upstream: Upstream
) -> Iterator[Callable[..., Proxy]]:
    """Start mitmdump with the enforcer and the fixture policy (options as for start_proxy);
    every proxy started is stopped when the module ends."""
    started: list[Proxy] = []

    def make(name: str = "proxy", **options: Any) -> Proxy:
        workdir = tmp_path_factory.mktemp(name)
        running = start_proxy(workdir, copy_fixture_policy(workdir), routes(http_upstream, https_upstream), **options)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture(scope="module")
def proxy(make_proxy: Callable[..., Proxy]) -> Proxy:
    return make_proxy()


@pytest.fixture(autouse=True)
def collect_garbage() -> Iterator[None]:
    """Collect after each test, so that a leaked socket is reported against the test that leaked it."""
    yield
    import gc

    gc.collect()


def start_policy_proxy(
    tmp_path_factory: pytest.TempPathFactory, name: str, policy: str, http_upstream: Upstream, https_upstream: Upstream
) -> Proxy:
    """mitmdump with the enforcer and a policy of the test's own, beside the fixture catalogue."""
    workdir = tmp_path_factory.mktemp(name)
    shutil.copy(FIXTURES / "catalog.yaml", workdir / "catalog.yaml")
    shutil.copy(FIXTURES / "providers.yaml", workdir / "providers.yaml")
    (workdir / "policy.yaml").write_text(policy)
    return start_proxy(workdir, workdir / "policy.yaml", routes(http_upstream, https_upstream))
