"""Syslog RFC 5424 and CEF formatting: fields, escaping, hostile values, framing."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aipolicy
from aipolicy import SinkConfigError, format_message, frame, parse_syslog_url, to_cef, to_rfc5424
from aipolicy.formats._siem import SD_ID
from tests.siem import parse_cef, parse_rfc5424, split_octet_counted


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "id": "0123abcd",
        "ts": "2026-11-30T02:25:15.123Z",
        "event": "decision",
        "action": "block",
        "rule": "deepseek-any-capacity",
        "app": "deepseek-chat",
        "vendor": "deepseek",
        "category": "genai",
        "host": "chat.deepseek.com",
        "method": "GET",
        "scheme": "https",
        "port": 443,
        "path": "/a/chat",
        "client_ip": "10.1.2.3",
        "user": "alice",
        "user_agent": "Mozilla/5.0",
        "reason": "DeepSeek is banned in any capacity",
        "policy": "sha256:0011",
        "proxy": "gw-1",
        "stage": "request",
        "directive": "NAVY-1",
    }
    base.update(fields)
    return base


HOSTILE = [
    'x" injected="1',
    "a]b",
    "back\\slash",
    "line\nbreak<13>1 2026-01-01T00:00:00Z evil app - - - forged",
    "cr\rhere",
    "pipe|and=equals",
    "CEF:0|evil|x|1|sig|name|10|act=allow",
    "tab\there\x00nul\x7fdel\u2028ls",
    "uniçødé ✓",
]


def test_rfc5424_header_and_structured_data() -> None:
    message = to_rfc5424(event())
    record = parse_rfc5424(message)
    assert record.priority == 16 * 8 + 4  # local0.warning for a block
    assert (record.timestamp, record.hostname, record.app, record.msgid) == (
        "2026-11-30T02:25:15.123Z",
        "gw-1",
        "aipolicy",
        "decision",
    )
    data = record.data[SD_ID]
    assert data["action"] == "block" and data["rule"] == "deepseek-any-capacity"
    assert data["host"] == "chat.deepseek.com" and data["client_ip"] == "10.1.2.3" and data["user"] == "alice"
    assert data["policy"] == "sha256:0011" and data["port"] == "443" and data["directive"] == "NAVY-1"
    assert record.message.startswith("block chat.deepseek.com rule=deepseek-any-capacity")


@pytest.mark.parametrize(("action", "severity"), [("block", 4), ("monitor", 5), ("allow", 6)])
def test_rfc5424_severity_follows_the_action(action: str, severity: int) -> None:
    assert parse_rfc5424(to_rfc5424(event(action=action))).priority == 128 + severity


def test_rfc5424_system_event_has_no_action_and_error_severity() -> None:
    system = aipolicy.system_event("policy_rejected", "bad\nfile", policy="sha256:1", proxy_id="gw")
    record = parse_rfc5424(to_rfc5424(system))
    assert record.priority == 128 + 3 and record.msgid == "policy_rejected"
    assert "action" not in record.data[SD_ID] and record.data[SD_ID]["reason"] == "bad\\x0afile"


@pytest.mark.parametrize("value", HOSTILE)
def test_rfc5424_hostile_values_stay_inside_their_parameter(value: str) -> None:
    message = to_rfc5424(event(path=value, user=value, reason=value, rule=value))
    assert "\n" not in message and "\r" not in message and "\x00" not in message and "\u2028" not in message
    record = parse_rfc5424(message)
    data = record.data[SD_ID]
    assert set(data) >= {"path", "user", "reason", "rule", "action"} and "injected" not in data
    assert data["action"] == "block"
    if not any(c in value for c in "\n\r\t\x00\x7f\u2028"):
        assert data["path"] == value  # unescaped, the value is exactly what was sent


def test_rfc5424_hostile_hostname_and_msgid_cannot_break_the_header() -> None:
    message = to_rfc5424(event(proxy="gw 1\nx", event="dec ision"))
    record = parse_rfc5424(message)
    assert record.hostname == "gw_1_x" and record.msgid == "dec_ision"


def test_cef_header_and_extension() -> None:
    record = parse_cef(to_cef(event(), version="0.1.0"))
    assert record.header == [
        "CEF:0",
        "aipolicy",
        "aipolicy",
        "0.1.0",
        "decision:block",
        "AI app request block (deepseek-chat)",
        "7",
    ]
    ext = record.extension
    assert ext["act"] == "block" and ext["src"] == "10.1.2.3" and ext["suser"] == "alice"
    assert ext["dhost"] == "chat.deepseek.com" and ext["dpt"] == "443" and ext["requestMethod"] == "GET"
    assert ext["request"] == "https://chat.deepseek.com/a/chat" and ext["dvchost"] == "gw-1"
    assert ext["cs1Label"] == "rule" and ext["cs1"] == "deepseek-any-capacity"
    assert ext["cs4Label"] == "policy" and ext["cs4"] == "sha256:0011" and ext["externalId"] == "0123abcd"
    moment = datetime.datetime.fromtimestamp(int(ext["rt"]) / 1000, datetime.UTC)
    assert moment.isoformat(timespec="milliseconds") == "2026-11-30T02:25:15.123+00:00"


@pytest.mark.parametrize("value", HOSTILE)
def test_cef_hostile_values_cannot_add_fields_or_lines(value: str) -> None:
    text = to_cef(event(user=value, reason=value, rule=value, app=value))
    assert "\n" not in text and "\r" not in text
    record = parse_cef(text)
    assert len(record.header) == 7 and record.header[6] in {str(n) for n in range(11)}
    assert record.extension["act"] == "block"  # "act=allow" inside a value stays inside it
    if not any(c in value for c in "\t\x00\x7f\u2028"):  # newlines travel escaped as \n and \r, and come back
        assert record.extension["suser"] == value and record.extension["cs1"] == value
    assert record.header[5].startswith("AI app request block (")


def test_cef_escapes_exactly_as_the_spec_says() -> None:
    text = to_cef(event(user="a=b\\c|d\ne"))
    assert "suser=a\\=b\\\\c|d\\ne " in text  # '=' and '\' escaped, '|' free in extensions, newline as \n
    text = to_cef(event(event="x|y\\z", action=None))
    assert "|x\\|y\\\\z|aipolicy x\\|y\\\\z|" in text  # '|' and '\' escaped in the header


def test_format_message_wraps_cef_in_a_syslog_header() -> None:
    message = format_message(event(), "cef", hostname="proxy-a", version="9")
    record = parse_rfc5424(message)
    assert record.hostname == "proxy-a" and record.data == {}
    assert parse_cef(record.message).header[3] == "9"
    with pytest.raises(SinkConfigError, match="must be one of rfc5424, cef"):
        format_message(event(), "leef")


def test_octet_counting_frames_whole_messages() -> None:
    first, second = to_rfc5424(event(reason="é\nx")), to_rfc5424(event(action="monitor"))
    stream = frame(first, "tcp") + frame(second, "tls")
    messages, rest = split_octet_counted(stream)
    assert [m.decode() for m in messages] == [first, second] and rest == b""
    assert frame(first, "udp") == first.encode()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("udp://siem.example", ("udp", "siem.example", 514)),
        ("tcp://10.0.0.5:1514", ("tcp", "10.0.0.5", 1514)),
        ("tls://siem.example", ("tls", "siem.example", 6514)),
        ("TLS://[::1]:6514", ("tls", "::1", 6514)),
    ],
)
def test_parse_syslog_url(url: str, expected: tuple[str, str, int]) -> None:
    assert parse_syslog_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://siem.example", "scheme must be one of udp://, tcp://, tls://"),
        ("siem.example:514", "scheme must be one of"),
        ("udp://siem.example:99999", "port is not a number"),
        ("tcp://user:pw@siem.example", "HOST\\[:PORT\\] and nothing else"),
        ("tcp://siem.example/path", "nothing else"),
    ],
)
def test_parse_syslog_url_errors(url: str, message: str) -> None:
    with pytest.raises(SinkConfigError, match=message):
        parse_syslog_url(url)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_any_text_round_trips_through_both_formats(user: str, path: str) -> None:
    record = parse_rfc5424(to_rfc5424(event(user=user, path=path)))
    assert record.data[SD_ID]["action"] == "block"
    cef = parse_cef(to_cef(event(user=user, path=path)))
    assert cef.extension["act"] == "block" and len(cef.header) == 7
    if user.isprintable() and user.strip() == user and user:
        assert record.data[SD_ID]["user"] == user and cef.extension["suser"] == user
