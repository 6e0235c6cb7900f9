"""Proxy authentication with an htpasswd file: a user-scoped rule and an exception apply to the
right user (plain HTTP and CONNECT), and events name the user, through a real mitmdump."""

from __future__ import annotations

import base64
import datetime
import hashlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .clients import client_context
from .conftest import FIXTURES, routes
from .harness import Proxy, Upstream, start_proxy

pytestmark = pytest.mark.integration
NEXT_YEAR = datetime.date.today().year + 1
PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2"}
POLICY = f"""\
version: 1
catalog: catalog.yaml
rules:
  - id: deepseek
    action: block
    match: {{vendors: [deepseek]}}
  - id: bob-no-chatgpt
    action: block
    match: {{apps: [chatgpt]}}
    when: {{users: [bob]}}
exceptions:
  - rule: deepseek
    users: [alice]
    until: {NEXT_YEAR}-03-31
    ticket: SEC-9
    reason: Research
default: allow
"""


def htpasswd_line(user: str, password: str) -> str:
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()  # noqa: S324  (the {SHA} scheme)
    return f"{user}:{{SHA}}{digest}\n"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, http_upstream: Upstream, https_upstream: Upstream) -> Iterator[Proxy]:  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("htpasswd")
    shutil.copy(FIXTURES / "catalog.yaml", workdir / "catalog.yaml")
    shutil.copy(FIXTURES / "providers.yaml", workdir / "providers.yaml")
    (workdir / "policy.yaml").write_text(POLICY)
    (workdir / "htpasswd").write_text("".join(htpasswd_line(u, p) for u, p in PASSWORDS.items()))
    extra = ["--set", f"proxyauth=@{workdir / 'htpasswd'}"]
    running = start_proxy(workdir, workdir / "policy.yaml", routes(http_upstream, https_upstream), extra=extra)
    yield running
    running.stop()


def client_for(proxy: Proxy, user: str, upstream_ca: Path) -> httpx.Client:
    url = f"http://{user}:{PASSWORDS[user]}@127.0.0.1:{proxy.port}"
    return httpx.Client(proxy=url, verify=client_context(proxy.ca, upstream_ca), trust_env=False, timeout=10)


def test_exception_applies_to_its_user_only(proxy: Proxy, http_upstream: Upstream, upstream_cert) -> None:  # type: ignore[no-untyped-def]
    mark = "h" + uuid.uuid4().hex[:8]
    with client_for(proxy, "alice", upstream_cert[0]) as alice, client_for(proxy, "bob", upstream_cert[0]) as bob:
        assert alice.get(f"http://deepseek.example/{mark}/alice").status_code == 200
        assert bob.get(f"http://deepseek.example/{mark}/bob").status_code == 403
    assert [h["path"] for h in http_upstream.hits(mark)] == [f"/{mark}/alice"]
    events = {e["user"]: e for e in proxy.events_for(mark)}
    assert (events["alice"]["action"], events["alice"]["exception"]["ticket"]) == ("allow", "SEC-9")
    assert (events["bob"]["action"], events["bob"]["rule"]) == ("block", "deepseek")
    assert "alice-pw-1" not in proxy.log.read_text() and "bob-pw-2" not in proxy.log.read_text()


def test_user_scoped_rule_over_plain_http_and_connect(proxy: Proxy, upstream_cert) -> None:  # type: ignore[no-untyped-def]
    mark = "s" + uuid.uuid4().hex[:8]
    with client_for(proxy, "alice", upstream_cert[0]) as alice, client_for(proxy, "bob", upstream_cert[0]) as bob:
        assert alice.get(f"http://api.openai.com/{mark}").status_code == 200
        assert bob.get(f"http://api.openai.com/{mark}").status_code == 403
        assert alice.get(f"https://chatgpt.com/{mark}").status_code == 200  # tunnelled for alice
        with pytest.raises(httpx.ProxyError, match="403"):
            bob.get(f"https://chatgpt.com/{mark}")  # the CONNECT is refused for bob
    events = proxy.events_for(mark)
    assert [(e["user"], e["rule"], e["stage"]) for e in events if e["path"]] == [("bob", "bob-no-chatgpt", "request")]
    connects = [e for e in proxy.events() if e.get("stage") == "connect" and e.get("user") == "bob"]
    assert connects and connects[-1]["rule"] == "bob-no-chatgpt"
