"""Identity from an authenticating proxy in front (a header believed only from trusted addresses),
groups, and an exception that lets one group through a ban, through a real mitmdump."""

from __future__ import annotations

import datetime
import shutil
import uuid
from collections.abc import Iterator

import httpx
import pytest

from .conftest import FIXTURES, routes
from .harness import Proxy, Upstream, start_proxy

pytestmark = pytest.mark.integration
NEXT_YEAR = datetime.date.today().year + 1


def policy_text(trusted: str) -> str:
    return f"""\
version: 1
catalog: catalog.yaml
identity:
  user_header: X-Authenticated-User
  groups_header: X-Authenticated-Groups
  trusted_proxies: [{trusted}]
groups:
  research: [alice]
rules:
  - id: deepseek
    action: block
    match: {{vendors: [deepseek]}}
  - id: contractors-no-openai
    action: block
    match: {{apps: [chatgpt]}}
    when: {{groups: [contractors]}}
exceptions:
  - rule: deepseek
    groups: [research]
    until: {NEXT_YEAR}-01-31
    ticket: SEC-77
default: allow
"""


def start(tmp_path_factory, http_upstream, https_upstream, trusted: str) -> Proxy:  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("identity")
    shutil.copy(FIXTURES / "catalog.yaml", workdir / "catalog.yaml")
    shutil.copy(FIXTURES / "providers.yaml", workdir / "providers.yaml")
    (workdir / "policy.yaml").write_text(policy_text(trusted))
    return start_proxy(workdir, workdir / "policy.yaml", routes(http_upstream, https_upstream))


@pytest.fixture(scope="module")
def trusting(tmp_path_factory, http_upstream: Upstream, https_upstream: Upstream) -> Iterator[Proxy]:  # type: ignore[no-untyped-def]
    proxy = start(tmp_path_factory, http_upstream, https_upstream, "127.0.0.1")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def distrusting(tmp_path_factory, http_upstream: Upstream, https_upstream: Upstream) -> Iterator[Proxy]:  # type: ignore[no-untyped-def]
    proxy = start(tmp_path_factory, http_upstream, https_upstream, "192.0.2.10")
    yield proxy
    proxy.stop()


def get(proxy: Proxy, url: str, user: str = "", groups: str = "") -> httpx.Response:
    headers = {"x-authenticated-user": user} if user else {}
    if groups:
        headers["x-authenticated-groups"] = groups
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
        return client.get(url, headers=headers)


def test_exception_lets_its_group_through_and_is_logged(trusting: Proxy, http_upstream: Upstream) -> None:
    mark = "i" + uuid.uuid4().hex[:8]
    assert get(trusting, f"http://deepseek.example/{mark}/a", user="alice").status_code == 200
    assert get(trusting, f"http://deepseek.example/{mark}/b", user="mallory").status_code == 403
    hits = http_upstream.hits(mark)
    assert [h["path"] for h in hits] == [f"/{mark}/a"]
    assert "x-authenticated-user" not in hits[0]["header_names"]  # the identity header is not forwarded
    events = {str(e["path"]): e for e in trusting.events_for(mark)}
    allowed, blocked = events[f"/{mark}/a"], events[f"/{mark}/b"]
    assert (allowed["action"], allowed["user"], allowed["groups"]) == ("allow", "alice", ["research"])
    assert allowed["exception"]["ticket"] == "SEC-77" and allowed["exception"]["rule"] == "deepseek"
    assert (blocked["action"], blocked["rule"], blocked["user"]) == ("block", "deepseek", "mallory")


def test_groups_from_the_header_scope_a_rule(trusting: Proxy) -> None:
    mark = "g" + uuid.uuid4().hex[:8]
    assert get(trusting, f"http://api.openai.com/{mark}/x", user="dave", groups="Contractors, staff").status_code == 403
    assert get(trusting, f"http://api.openai.com/{mark}/y", user="erin", groups="staff").status_code == 200
    (event,) = trusting.events_for(mark)
    assert (event["rule"], event["user"], event["groups"]) == (
        "contractors-no-openai",
        "dave",
        ["contractors", "staff"],
    )


def test_header_from_an_untrusted_address_is_ignored_and_stripped(distrusting: Proxy, http_upstream: Upstream) -> None:
    mark = "u" + uuid.uuid4().hex[:8]
    assert get(distrusting, f"http://deepseek.example/{mark}", user="alice").status_code == 403
    (event,) = distrusting.events_for(mark)
    assert event["user"] is None and "exception" not in event
    assert get(distrusting, f"http://allowed.test/{mark}", user="alice").status_code == 200
    (hit,) = http_upstream.hits(mark)
    assert "x-authenticated-user" not in hit["header_names"]
