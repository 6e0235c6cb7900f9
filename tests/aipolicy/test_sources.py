"""Reading community lists: formats, detection, and fetching with limits."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aipolicy import SourceError, detect_format, parse_source, read_source

IMPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "imports"


def reasons(lines: list) -> dict[int, str]:  # type: ignore[type-arg]
    return {item.line: item.reason for item in lines}


# --- formats ----------------------------------------------------------------------------------


def test_hosts_file_names_local_names_and_bad_lines() -> None:
    parsed = parse_source((IMPORTS / "hosts.txt").read_text(), "hosts")
    assert parsed.entries == [
        ("ads.example", 4),
        ("tracker.example", 4),
        ("shared.example", 5),  # normalised: case and trailing dot
        ("ads.example", 6),
        ("xn--bcher-kva.example", 9),
    ]
    assert reasons(parsed.skipped) == {2: "local", 3: "local"}
    invalid = reasons(parsed.invalid)
    assert set(invalid) == {7, 8}
    assert "not a valid domain" in invalid[7]
    assert "expected 'ADDRESS NAME…'" in invalid[8]


def test_adblock_domain_rules_and_what_it_skips() -> None:
    parsed = parse_source((IMPORTS / "adblock.txt").read_text(), "adblock")
    assert parsed.entries == [("ads.example", 3), ("cdn.example", 9), ("shared.example", 10)]
    assert reasons(parsed.skipped) == {4: "options", 5: "exception", 6: "cosmetic", 7: "wildcard", 8: "not-domain"}
    assert parsed.skipped_counts() == {"options": 1, "exception": 1, "cosmetic": 1, "wildcard": 1, "not-domain": 1}
    assert list(reasons(parsed.invalid)) == [11]


def test_v2fly_domain_full_regexp_keyword_include_and_attributes() -> None:
    parsed = parse_source((IMPORTS / "v2fly.txt").read_text(), "v2fly")
    assert parsed.entries == [
        ("deepseek.com", 2),
        ("deepseek.example", 3),
        ("=api.example.net", 4),  # full: is that host only
        ("=x.example", 8),
    ]
    assert reasons(parsed.skipped) == {5: "regexp", 6: "keyword", 7: "include"}
    assert parsed.attributes == {"ads": 2, "cn": 1}
    assert "unknown v2fly rule type 'weird'" in reasons(parsed.invalid)[9]


def test_plain_list_takes_every_target_syntax() -> None:
    parsed = parse_source((IMPORTS / "plain.txt").read_text(), "plain")
    assert [entry for entry, _ in parsed.entries] == [
        "new-one.example",
        "*.sub.example",
        "=exact.example",
        "198.51.100.0/24",
        "new-one.example",
    ]
    assert list(reasons(parsed.invalid)) == [6]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("hosts.txt", "hosts"), ("adblock.txt", "adblock"), ("v2fly.txt", "v2fly"), ("plain.txt", "plain")],
)
def test_detect_format(name: str, expected: str) -> None:
    assert detect_format((IMPORTS / name).read_text()) == expected
    assert parse_source((IMPORTS / name).read_text()).format == expected


def test_detect_format_of_an_empty_list_is_plain() -> None:
    assert detect_format("# nothing\n\n") == "plain"


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown list format 'csv'"):
        parse_source("a.example", "csv")


def test_windows_line_endings_and_bom_are_read() -> None:
    text = read_source_bytes(b"\xef\xbb\xbfone.example\r\ntwo.example\r\n")
    assert [entry for entry, _ in parse_source(text, "plain").entries] == ["one.example", "two.example"]


def read_source_bytes(data: bytes) -> str:
    return read_source("https://lists.example/l.txt", transport=respond(200, data, "text/plain"))


# --- fetching ---------------------------------------------------------------------------------


def respond(status: int, body: bytes, content_type: str = "text/plain", **headers: str) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": content_type, **headers})

    return httpx.MockTransport(handler)


def test_fetch_a_text_list() -> None:
    text = read_source("https://lists.example/hosts.txt", transport=respond(200, b"0.0.0.0 ads.example\n"))
    assert text == "0.0.0.0 ads.example\n"


def test_fetch_follows_a_redirect() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(301, headers={"location": "https://lists.example/new"})
        return httpx.Response(200, text="moved.example\n")

    assert read_source("https://lists.example/old", transport=httpx.MockTransport(handler)) == "moved.example\n"


@pytest.mark.parametrize(
    ("transport", "message"),
    [
        (respond(404, b"missing"), "the server answered 404 Not Found"),
        (respond(200, b"<html>login</html>", "text/html"), "sent 'text/html', not a text list"),
        (respond(200, b"{}", "application/json"), "sent 'application/json'"),
        (respond(200, b"<!DOCTYPE html><p>hi", "text/plain"), "an HTML or XML document"),
        (respond(200, b"a.example\n\x00\x01\x02", "application/octet-stream"), "binary data"),
        (respond(200, b"caf\xe9.example\n"), r"not UTF-8 text \(byte 3\)"),
        (
            respond(200, b"a.example\n", **{"content-length": "999999999"}),
            "serves 999,999,999 bytes, over the limit of 33,554,432 bytes",
        ),
    ],
)
def test_fetch_errors_say_what_is_wrong(transport: httpx.MockTransport, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        read_source("https://lists.example/list.txt", transport=transport)


def test_fetch_stops_at_the_size_cap_without_a_content_length() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        chunks = (b"x.example\n" * 100 for _ in range(100))  # 100 kB, streamed without a length
        return httpx.Response(200, content=chunks, headers={"content-type": "text/plain"})

    with pytest.raises(SourceError, match="big.txt serves more than the limit of 10,000 bytes"):
        read_source("https://lists.example/big.txt", transport=httpx.MockTransport(handler), max_bytes=10_000)


def test_fetch_timeout_is_reported() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(SourceError, match="no answer within 30 s"):
        read_source("https://lists.example/slow.txt", transport=httpx.MockTransport(handler))


def test_connection_errors_are_reported() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(SourceError, match="ConnectError: connection refused"):
        read_source("https://lists.example/l.txt", transport=httpx.MockTransport(handler))


def test_other_schemes_are_refused() -> None:
    with pytest.raises(SourceError, match="only http:// and https:// URLs and local files"):
        read_source("ftp://lists.example/l.txt")


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read .*nope.txt.*No such file"):
        read_source(str(tmp_path / "nope.txt"))


def test_file_over_the_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"a.example\n" * 200)
    with pytest.raises(SourceError, match="larger than 1,000 bytes"):
        read_source(str(path), max_bytes=1000)


class _ListHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b"||served.example^\n||other.example^\n" if self.path == "/adblock.txt" else b"nope"
        self.send_response(200 if self.path == "/adblock.txt" else 404)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def list_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ListHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_fetch_from_a_real_loopback_server(list_server: str) -> None:
    text = read_source(f"{list_server}/adblock.txt")
    parsed = parse_source(text)
    assert parsed.format == "adblock"
    assert [entry for entry, _ in parsed.entries] == ["served.example", "other.example"]
    with pytest.raises(SourceError, match="answered 404"):
        read_source(f"{list_server}/missing.txt")
