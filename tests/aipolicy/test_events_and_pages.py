"""The event log contract and what a blocked client sees."""

from __future__ import annotations

import datetime
import html.parser
import io
import json
import re
import threading
from pathlib import Path

import pytest

from aipolicy import (
    Decision,
    EventLog,
    EventLogError,
    RequestFacts,
    block_page,
    decision_event,
    json_error,
    system_event,
    wants_html,
)

CONTRACT = ("ts", "action", "rule", "app", "host", "method", "path", "client_ip", "user", "reason", "policy")
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def blocked(**changes: object) -> Decision:
    fields: dict[str, object] = {
        "action": "block",
        "rule": "deepseek-any-capacity",
        "reason": "DeepSeek may not be used in any capacity.",
        "host": "chat.deepseek.com",
        "hosts": ("chat.deepseek.com",),
        "app": "deepseek",
        "app_name": "DeepSeek",
        "vendor": "deepseek",
        "vendor_name": "DeepSeek",
        "categories": ("genai", "genai-prc"),
        "country": "CN",
        "directive": {"id": "USN-1", "title": "Navy notice", "reference": "https://example.org/notice"},
        "contact": "security@example.org",
        "policy": "0123456789abcdef",
    }
    fields.update(changes)
    return Decision(**fields)  # type: ignore[arg-type]


def facts(**changes: object) -> RequestFacts:
    fields: dict[str, object] = {
        "hosts": ("chat.deepseek.com",),
        "path": "/api/chat?token=s3cr3t&q=1",
        "method": "POST",
        "scheme": "https",
        "port": 443,
        "client_ip": "192.0.2.10",
        "user": "alice",
        "groups": ("staff",),
        "headers": {"authorization": "Bearer sk-live-secret", "accept": "application/json"},
        "body": b"secret-body",
    }
    fields.update(changes)
    return RequestFacts(**fields)  # type: ignore[arg-type]


# --- decision_event -------------------------------------------------------------------------


def test_decision_event_has_every_contract_field() -> None:
    event = decision_event(blocked(), facts(), stage="request")
    assert set(CONTRACT) <= set(event)
    assert event["action"] == "block"
    assert event["rule"] == "deepseek-any-capacity"
    assert event["app"] == "deepseek"
    assert event["host"] == "chat.deepseek.com"
    assert event["method"] == "POST"
    assert event["path"] == "/api/chat"
    assert event["client_ip"] == "192.0.2.10"
    assert event["user"] == "alice"
    assert event["reason"] == "DeepSeek may not be used in any capacity."
    assert event["policy"] == "0123456789abcdef"
    assert event["directive"] == "USN-1"
    assert event["stage"] == "request"


def test_decision_event_timestamp_is_rfc3339_utc() -> None:
    before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    event = decision_event(blocked(), facts(), stage="request")
    assert RFC3339_UTC.fullmatch(event["ts"]), event["ts"]
    moment = datetime.datetime.fromisoformat(event["ts"])
    assert moment.utcoffset() == datetime.timedelta(0)
    assert before <= moment <= datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)


def test_decision_event_keeps_the_query_only_when_configured() -> None:
    assert decision_event(blocked(), facts(), stage="request", log_query=True)["path"] == "/api/chat?token=s3cr3t&q=1"
    event = decision_event(blocked(), facts(), stage="request")
    assert "s3cr3t" not in json.dumps(event)


def test_decision_event_never_contains_the_body_or_headers() -> None:
    text = json.dumps(decision_event(blocked(), facts(), stage="request", log_query=False))
    assert "secret-body" not in text
    assert "sk-live-secret" not in text


def test_decision_event_at_connection_level() -> None:
    event = decision_event(blocked(), facts(path=None, method="", user=""), stage="connect", sni="chat.deepseek.com")
    assert event["path"] == ""
    assert event["user"] is None
    assert event["sni"] == "chat.deepseek.com"


def test_decision_event_for_an_unmatched_app() -> None:
    decision = Decision("monitor", "default", "no rule matched", host="example.org", policy="p")
    event = decision_event(decision, facts(hosts=("example.org",)), stage="request")
    assert event["app"] is None
    assert event["directive"] is None
    assert event["categories"] == []


def test_decision_event_clips_long_values() -> None:
    event = decision_event(blocked(), facts(path="/" + "a" * 10_000), stage="request")
    assert len(event["path"]) < 2100
    assert event["path"].startswith("/aaa")


def test_events_have_unique_ids() -> None:
    ids = {decision_event(blocked(), facts(), stage="request")["id"] for _ in range(50)}
    assert len(ids) == 50


def test_system_event() -> None:
    event = system_event("policy-rejected", "bad policy", policy="abc", proxy_id="p1", problems=2)
    assert (event["event"], event["reason"], event["policy"], event["proxy"], event["problems"]) == (
        "policy-rejected", "bad policy", "abc", "p1", 2,
    )  # fmt: skip
    assert RFC3339_UTC.fullmatch(event["ts"])


# --- EventLog -------------------------------------------------------------------------------


def test_event_log_writes_one_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path))
    try:
        for number in range(3):
            log.write({"n": number, "reason": "line\nbreak"})
    finally:
        log.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["n"] for line in lines] == [0, 1, 2]
    assert json.loads(lines[0])["reason"] == "line\nbreak"


def test_event_log_appends_and_never_truncates(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"old":true}\n', encoding="utf-8")
    for number in range(2):
        log = EventLog(str(path))
        log.write({"n": number})
        log.close()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [{k: v for k, v in line.items() if k != "prev"} for line in lines] == [
        {"old": True},
        {"n": 0, "seq": 0},
        {"n": 1, "seq": 1},
    ]


def test_event_log_is_ascii_with_no_raw_line_separators(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path))
    reason = "a\u2028b\u2029c — ünïcode 深度求索"
    log.write(decision_event(blocked(reason=reason), facts(user="zoë"), stage="request"))
    log.close()
    raw = path.read_bytes()
    assert raw.isascii()
    assert raw.count(b"\n") == 1
    event = json.loads(raw)
    assert event["reason"] == reason
    assert event["user"] == "zoë"


def test_two_event_logs_on_one_file_interleave_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    logs = [EventLog(str(path)), EventLog(str(path))]
    padding = "x" * 5000  # larger than a small buffer, so torn writes would show

    def writer(index: int) -> None:
        for number in range(200):
            logs[index].write({"writer": index, "n": number, "pad": padding})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in logs:
        log.close()
    events = [json.loads(line) for line in path.read_text(encoding="ascii").splitlines()]
    assert len(events) == 400
    for index in range(2):
        assert [e["n"] for e in events if e["writer"] == index] == list(range(200))


def test_event_log_to_a_stream() -> None:
    stream = io.StringIO()
    log = EventLog(None, stream=stream)
    log.write({"a": "é"})
    log.close()
    assert stream.getvalue() == '{"a":"\\u00e9"}\n'


def test_event_log_that_cannot_be_opened(tmp_path: Path) -> None:
    path = tmp_path / "missing-directory" / "events.jsonl"
    with pytest.raises(
        EventLogError, match=r"^cannot open event log '.*missing-directory/events\.jsonl': No such file or directory$"
    ):
        EventLog(str(path))


def test_event_log_close_is_idempotent(tmp_path: Path) -> None:
    log = EventLog(str(tmp_path / "e.jsonl"))
    log.write({"n": 1})
    log.close()
    log.close()
    assert (tmp_path / "e.jsonl").read_text(encoding="ascii") == '{"n":1,"seq":0,"prev":"%s"}\n' % ("0" * 64)


# --- block page and JSON error --------------------------------------------------------------

HOSTILE = '<script>alert("x")</script>\'"&'


class _Collector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs.extend(value or "" for name, value in attrs if name == "href")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    collector.close()
    return collector


def test_block_page_escapes_hostile_input() -> None:
    decision = blocked(
        reason=HOSTILE,
        rule="r<b>",
        app_name=HOSTILE,
        vendor_name=HOSTILE,
        contact=HOSTILE,
        directive={"id": HOSTILE, "title": HOSTILE, "reference": 'https://example.org/"onmouseover="alert(1)'},
        policy=HOSTILE,
    )
    page = block_page(decision, 'http://chat.deepseek.com/"><script>alert(2)</script>', HOSTILE)
    assert "<script>" not in page
    assert "<b>" not in page
    assert "&lt;script&gt;" in page
    parsed = parse(page)
    assert "script" not in parsed.tags and "b" not in parsed.tags
    assert parsed.hrefs == ['https://example.org/"onmouseover="alert(1)']
    text = "".join(parsed.text)
    assert HOSTILE in text  # shown to the reader verbatim, as text
    assert 'http://chat.deepseek.com/"><script>alert(2)</script>' in text


def test_block_page_shows_what_the_user_needs() -> None:
    page = block_page(blocked(), "https://chat.deepseek.com/", "Blocked by policy")
    text = "".join(parse(page).text)
    for expected in ("Blocked by policy", "https://chat.deepseek.com/", "deepseek-any-capacity", "DeepSeek (DeepSeek)",
                     "DeepSeek may not be used in any capacity.", "USN-1 — Navy notice", "security@example.org"):  # fmt: skip
        assert expected in text


@pytest.mark.parametrize("reference", ["javascript:alert(1)", "data:text/html,x", "//evil.example/"])
def test_block_page_links_only_web_references(reference: str) -> None:
    page = block_page(blocked(directive={"id": "D", "reference": reference}), "https://x/", "Blocked")
    assert parse(page).hrefs == []


def test_json_error_is_valid_json_naming_the_rule() -> None:
    decision = blocked(reason='He said "no" <b>\u2028', contact="")
    body = json_error(decision)
    assert body.isascii()
    data = json.loads(body)
    assert data["type"] == "error"
    error = data["error"]
    assert "deepseek-any-capacity" in error["message"]
    assert error["message"] == (
        'Blocked by your organisation\'s AI policy (aipolicy rule deepseek-any-capacity): He said "no" <b>\u2028'
    )
    assert error["rule"] == "deepseek-any-capacity"
    assert error["type"] == "permission_error"
    assert error["code"] == "aipolicy_blocked"
    assert error["directive"] == "USN-1"
    assert error["policy"] == "0123456789abcdef"


def test_json_error_mentions_the_contact() -> None:
    message = json.loads(json_error(blocked()))["error"]["message"]
    assert message.endswith(" Contact: security@example.org.")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, True),
        ({"accept": "TEXT/HTML"}, True),
        ({"accept": "application/json"}, False),
        ({"accept": "*/*"}, False),
        ({}, False),
    ],
    ids=["browser", "upper-case", "json", "anything", "no-accept"],
)
def test_wants_html(headers: dict[str, str], expected: bool) -> None:
    assert wants_html(headers) is expected
