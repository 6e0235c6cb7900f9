"""The shared case table through the real proxy, and `aipolicy policy test` agreeing."""

from __future__ import annotations

import uuid

import pytest
from aipolicy.cli import main
from click.testing import CliRunner

from tests.cases import CASES, Case

from .clients import send
from .conftest import FIXTURES

pytestmark = pytest.mark.integration


def cli_decision(case: Case, tmp_path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    import gzip
    import json

    args = ["policy", "test", case.url, "--policy", str(FIXTURES / "policy.yaml"), "--json"]
    if case.body:
        body = case.body.encode()
        if case.encoding == "gzip":
            body = gzip.compress(body)
            args += ["--header", "content-encoding:gzip"]
        (tmp_path / "body").write_bytes(body)
        args += ["--method", "POST", "--body-file", str(tmp_path / "body"), "--header", "content-type:application/json"]
    if case.header:
        args += ["--header", case.header]
    if case.sni:
        args += ["--sni", case.sni]
    if case.host_header:
        args += ["--header", f"Host:{case.host_header}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("template", CASES, ids=[c.name for c in CASES])
def test_proxy_and_cli_agree(template: Case, proxy, http_upstream, https_upstream, upstream_cert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = "m" + uuid.uuid4().hex[:10]
    case = template.render(marker, http_upstream.port, https_upstream.port)

    predicted = cli_decision(case, tmp_path)
    outcome = send(proxy, case, upstream_cert[0], marker=marker)
    events = proxy.events_for(marker, timeout=5 if case.action != "allow" else 1)
    reached = http_upstream.hits(marker) + https_upstream.hits(marker)

    assert (predicted["action"], predicted["rule"]) == (case.action, case.rule)
    if case.action == "block":
        assert outcome.status == 403, outcome
        assert reached == [], "a blocked request reached the upstream"
        assert len(events) == 1, events
        assert (events[0]["action"], events[0]["rule"]) == (case.action, case.rule)
    elif case.action == "monitor":
        assert outcome.status == 200, outcome
        assert len(reached) == 1
        assert len(events) == 1, events
        assert (events[0]["action"], events[0]["rule"]) == ("monitor", case.rule)
    else:
        assert outcome.status == 200, outcome
        assert len(reached) == 1
        assert events == []
