"""The shared case table through `aipolicy policy test` and the real proxy: every row gets the
answer the table gives from both faces, and the proxy acts on it (answer, upstream, event log)."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from pathlib import Path

import httpx
import pytest
from aipolicy.cli import main
from click.testing import CliRunner

from tests.cases import CASES, Case

from .clients import Outcome, send
from .conftest import FIXTURES
from .harness import Proxy, Upstream, wait_until

pytestmark = pytest.mark.integration

SENTINEL = "/sentinel"


def cli_decision(case: Case, tmp_path: Path) -> dict[str, object]:
    args = ["policy", "test", case.url, "--policy", str(FIXTURES / "policy.yaml"), "--json"]
    if case.body:
        (tmp_path / "body").write_bytes(case.content())
        args += ["--method", "POST", "--body-file", str(tmp_path / "body"), "--header", "content-type:application/json"]
        if case.encoding:
            args += ["--header", f"content-encoding:{case.encoding}"]
    if case.header:
        args += ["--header", case.header]
    if case.sni:
        args += ["--sni", case.sni]
    if case.host_header:
        args += ["--header", f"Host:{case.host_header}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def settled_events(proxy: Proxy, marker: str) -> list[dict[str, object]]:
    """The case's decision events, read once a monitored request sent after it is in the log: the
    proxy writes a request's event before it answers, so none of the case's can still be on its way."""
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client:
        assert client.get(f"http://api.openai.com/{marker}{SENTINEL}").status_code == 200

    def decisions() -> list[dict[str, object]]:
        return [e for e in proxy.events() if e.get("event") == "decision" and marker in json.dumps(e)]

    assert wait_until(lambda: any(str(e["path"]).endswith(SENTINEL) for e in decisions())), (
        "the sentinel was not logged"
    )
    return [e for e in decisions() if not str(e["path"]).endswith(SENTINEL)]


def received(hit: dict[str, str]) -> str:
    """The body an upstream received, decoded as its Content-Encoding says."""
    decode = {"": bytes, "gzip": gzip.decompress, "deflate": zlib.decompress}[hit["content_encoding"]]
    return decode(hit["raw"].encode("latin-1")).decode()


def error_code(outcome: Outcome) -> str:
    return str(json.loads(outcome.body)["error"]["code"])


def event_view(event: dict[str, object]) -> tuple[object, ...]:
    return (event["action"], event["rule"], event.get("control"), event.get("dlp"), event["reason"], event["model"])


@pytest.mark.parametrize("template", CASES, ids=[c.name for c in CASES])
def test_proxy_and_cli_agree(  # type: ignore[no-untyped-def]
    template: Case, proxy: Proxy, http_upstream: Upstream, https_upstream: Upstream, upstream_cert, tmp_path: Path
) -> None:
    marker = "m" + uuid.uuid4().hex[:10]
    case = template.render(marker, http_upstream.port, https_upstream.port)

    predicted = cli_decision(case, tmp_path)
    outcome = send(proxy, case, upstream_cert[0], marker=marker)
    again = send(proxy, case, upstream_cert[0], marker=marker) if case.counted else None
    events = settled_events(proxy, marker)
    reached = [h for h in http_upstream.hits(marker) + https_upstream.hits(marker) if SENTINEL not in h["path"]]

    # policy test gives the table's answer ...
    assert (predicted["action"], predicted["rule"], predicted["control"] or "") == (
        case.action,
        case.rule,
        case.control,
    )
    # ... and the proxy acts on the same decision
    assert outcome.status == case.status, outcome
    if case.code:
        assert error_code(outcome) == case.code, outcome
    assert len(reached) == (0 if case.status == 403 else 1), reached
    expected = [
        (case.action, case.rule, predicted["control"], predicted["dlp"], predicted["reason"], predicted["model"])
    ]
    logged = [event_view(e) for e in events]
    if case.counted:  # the first request was counted against the budget of one: the same again is refused
        assert again is not None and again.status == 429 and error_code(again) == "aipolicy_quota", again
        assert [(e["action"], e["rule"]) for e in events] == [("quota", case.rule)]
    else:
        assert logged == (expected if case.logged else []), events
    if case.forwarded:
        assert case.forwarded in received(reached[0])
    if case.withheld:
        assert all(case.withheld not in received(hit) for hit in reached)
        assert case.withheld not in proxy.log.read_text()
