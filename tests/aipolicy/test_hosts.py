"""Host, path and target normalisation: every spelling a client may use meets one index entry."""

from __future__ import annotations

import ipaddress

import pytest

from aipolicy import normalise_host, normalise_path, parse_target, split_url

# --- normalise_host -------------------------------------------------------------------------

HOSTS = [
    # (raw, expected, id)
    ("deepseek.com", "deepseek.com", "canonical-unchanged"),
    ("DeepSeek.COM", "deepseek.com", "upper-case"),
    ("deepseek.com.", "deepseek.com", "trailing-dot"),
    ("DeepSeek.COM.", "deepseek.com", "upper-case-and-trailing-dot"),
    ("deepseek.com..", "deepseek.com", "two-trailing-dots"),
    ("  chat.deepseek.com  ", "chat.deepseek.com", "surrounding-whitespace"),
    ("deepseek.com:443", "deepseek.com", "port"),
    ("deepseek.com:", "deepseek.com", "empty-port"),
    ("user@deepseek.com", "deepseek.com", "userinfo"),
    ("user:pw@deepseek.com:8443", "deepseek.com", "userinfo-with-password-and-port"),
    ("a@b@deepseek.com", "deepseek.com", "several-at-signs-last-wins"),
    ("deep%73eek.com", "deepseek.com", "percent-encoded-letter"),
    ("deepseek%2Ecom", "deepseek.com", "percent-encoded-dot"),
    ("%C3%BC.example", "xn--tda.example", "percent-encoded-utf8"),
    ("bücher.example", "xn--bcher-kva.example", "unicode-to-punycode"),
    ("BÜCHER.example", "xn--bcher-kva.example", "unicode-upper-case"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example", "punycode-unchanged"),
    ("XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example", "punycode-upper-case"),
    ("faß.de", "xn--fa-hia.de", "nontransitional-sharp-s"),
    ("ｄｅｅｐｓｅｅｋ.ｃｏｍ", "deepseek.com", "fullwidth-letters"),
    ("deepseek\uff0ecom", "deepseek.com", "fullwidth-full-stop"),
    ("DEEPSEEK\u3002COM", "deepseek.com", "ideographic-full-stop"),
    ("deep\u00adseek.com", "deepseek.com", "soft-hyphen-ignored"),
    ("d\u0435epseek.com", "xn--depseek-7gg.com", "cyrillic-homoglyph-stays-distinct"),
    ("[::1]", "::1", "ipv6-brackets"),
    ("[::1]:8443", "::1", "ipv6-brackets-and-port"),
    ("[2001:DB8::0:1]", "2001:db8::1", "ipv6-canonical-form"),
    ("2001:db8:0:0::1", "2001:db8::1", "bare-ipv6"),
    ("[fe80::1%25eth0]", "fe80::1", "ipv6-zone-id-dropped"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1", "ipv4-mapped-ipv6"),
    ("127.0.0.1", "127.0.0.1", "dotted-quad"),
    ("127.0.0.1.", "127.0.0.1", "dotted-quad-trailing-dot"),
    ("127.0.0.1:8080", "127.0.0.1", "dotted-quad-port"),
    ("0x7f.1", "127.0.0.1", "whatwg-hex-and-short"),
    ("0X7F.0.0.1", "127.0.0.1", "whatwg-upper-hex"),
    ("0177.0.0.1", "127.0.0.1", "whatwg-octal"),
    ("2130706433", "127.0.0.1", "whatwg-single-number"),
    ("127.1", "127.0.0.1", "whatwg-two-parts"),
    ("127.0.1", "127.0.0.1", "whatwg-three-parts"),
    ("1.0", "1.0.0.0", "whatwg-last-part-fills-the-rest"),
    ("4294967295", "255.255.255.255", "whatwg-largest-number"),
    ("0x7f000001", "127.0.0.1", "whatwg-single-hex-number"),
    # A hex IPv4 spelling that ends in a hex letter is still an address (WHATWG URL
    # "ends in a number"; inet_aton agrees), so the proxy connects to 203.0.113.10.
    ("0xcb00710a", "203.0.113.10", "whatwg-single-hex-ending-in-letter"),
    ("0x7f.0x0.0x0.0xa", "127.0.0.10", "whatwg-hex-parts-ending-in-letter"),
    ("0x", "0.0.0.0", "whatwg-bare-0x-is-zero"),
    ("deepseek.com\u3002", "deepseek.com", "ideographic-trailing-dot"),
]


@pytest.mark.parametrize(("raw", "expected"), [h[:2] for h in HOSTS], ids=[h[2] for h in HOSTS])
def test_normalise_host(raw: str, expected: str) -> None:
    assert normalise_host(raw) == expected


def test_normalise_host_hex_spelling_does_not_depend_on_case() -> None:
    assert normalise_host("0xcb00710a") == normalise_host("0XCB00710A")


NOT_ADDRESSES = [
    ("256.1.1.1", "part-too-large"),
    ("1.2.3.4.5", "five-parts"),
    ("4294967296", "number-too-large"),
    ("255.255.65536", "last-part-too-large"),
    ("08.1", "invalid-octal"),
    ("1e100.net", "domain-that-looks-numeric"),
]


@pytest.mark.parametrize("raw", [n[0] for n in NOT_ADDRESSES], ids=[n[1] for n in NOT_ADDRESSES])
def test_normalise_host_leaves_non_addresses_as_names(raw: str) -> None:
    result = normalise_host(raw)
    assert result == raw.lower()
    with pytest.raises(ValueError):
        ipaddress.ip_address(result)


INVALID_HOSTS = [
    ("", "empty"),
    (".", "only-a-dot"),
    ("...", "only-dots"),
    (":", "only-a-colon"),
    ("[", "open-bracket"),
    ("[]", "empty-brackets"),
    ("[::1", "unclosed-bracket"),
    ("@", "only-at"),
    ("%", "lone-percent"),
    ("%zz", "bad-percent-escape"),
    ("%ff.com", "percent-encoded-non-utf8"),
    ("a..b", "empty-label"),
    ("xn--", "empty-punycode"),
    ("xn--zz-\u00fc", "broken-punycode"),
    ("deep\u200dseek.com", "joiner-not-allowed"),
    ("\x00", "nul"),
    ("\ud800.com", "lone-surrogate"),
    ("a b", "space-inside"),
    ("x" * 300, "too-long"),
    ("a:b:c", "not-an-ipv6-address"),
    ("[::1]x", "text-after-bracket"),
]


@pytest.mark.parametrize("raw", [i[0] for i in INVALID_HOSTS], ids=[i[1] for i in INVALID_HOSTS])
def test_normalise_host_never_raises_on_invalid_input(raw: str) -> None:
    result = normalise_host(raw)
    assert isinstance(result, str)
    assert result == result.lower()


# --- normalise_path -------------------------------------------------------------------------

PATHS = [
    ("/", "/", "root"),
    ("", "/", "empty"),
    ("relative/x", "/relative/x", "missing-leading-slash"),
    ("/A/B", "/a/b", "lower-cased"),
    ("/a/b/", "/a/b/", "trailing-slash-kept"),
    ("/a?b=1", "/a", "query-dropped"),
    ("/a#frag", "/a", "fragment-dropped"),
    ("?q", "/", "only-a-query"),
    ("//a//b", "/a/b", "repeated-slashes"),
    ("/a/./b", "/a/b", "dot-segment"),
    ("/a/b/../c", "/a/c", "dot-dot-segment"),
    ("/a/b/..", "/a", "dot-dot-at-end"),
    ("/..", "/", "dot-dot-above-root"),
    ("/../../x", "/x", "many-dot-dots-above-root"),
    ("/.../x", "/.../x", "three-dots-is-a-name"),
    ("/%2e%2e/x", "/x", "encoded-dot-dot"),
    ("/a/%2E%2E/b", "/b", "encoded-upper-dot-dot"),
    ("/deepseek%2Dai", "/deepseek-ai", "encoded-hyphen"),
    ("/%2564eepseek-ai", "/deepseek-ai", "double-encoded-letter"),
    ("/%252e%252e/x", "/x", "double-encoded-dot-dot"),
    ("/%25252e%25252e/x", "/x", "triple-encoded-dot-dot"),
    ("/a%2fb", "/a/b", "encoded-slash"),
    ("/a%2F%2Fb", "/a/b", "encoded-double-slash"),
    ("\\a\\b", "/a/b", "backslashes"),
    ("/a\\..\\b", "/b", "backslash-dot-dot"),
    ("/a%5c..%5cb", "/b", "encoded-backslash-dot-dot"),
    ("/%", "/%", "lone-percent"),
    ("/a%zzb", "/a%zzb", "bad-escape-kept"),
    ("/DeepSeek-AI/R1?download=true", "/deepseek-ai/r1", "realistic"),
]


@pytest.mark.parametrize(("raw", "expected"), [p[:2] for p in PATHS], ids=[p[2] for p in PATHS])
def test_normalise_path(raw: str, expected: str) -> None:
    assert normalise_path(raw) == expected


# --- split_url ------------------------------------------------------------------------------

URLS = [
    ("https://chat.deepseek.com/", ("https", "chat.deepseek.com", 443, "/"), "https-default-port"),
    ("http://chat.deepseek.com/", ("http", "chat.deepseek.com", 80, "/"), "http-default-port"),
    ("chat.deepseek.com", ("http", "chat.deepseek.com", 80, "/"), "no-scheme-no-path"),
    ("HTTPS://Chat.DeepSeek.COM./a", ("https", "chat.deepseek.com", 443, "/a"), "case-and-trailing-dot"),
    (
        "https://user:pw@Chat.DeepSeek.com:8443/a/B?x=1#frag",
        ("https", "chat.deepseek.com", 8443, "/a/B?x=1"),
        "userinfo-port-query-fragment",
    ),
    ("http://[::1]:8080/x", ("http", "::1", 8080, "/x"), "ipv6-with-port"),
    ("http://[2001:db8::1]/", ("http", "2001:db8::1", 80, "/"), "ipv6-default-port"),
    ("wss://x.example", ("wss", "x.example", 443, "/"), "wss-default-port"),
    ("ws://x.example", ("ws", "x.example", 80, "/"), "ws-default-port"),
    ("http://x.example?q=1", ("http", "x.example", 80, "/?q=1"), "query-without-path"),
    ("http://x.example:/", ("http", "x.example", 80, "/"), "empty-port"),
    ("http://bücher.example/", ("http", "xn--bcher-kva.example", 80, "/"), "unicode-host"),
    ("http://0x7f.1/", ("http", "127.0.0.1", 80, "/"), "whatwg-ipv4"),
]


@pytest.mark.parametrize(("url", "expected"), [u[:2] for u in URLS], ids=[u[2] for u in URLS])
def test_split_url(url: str, expected: tuple[str, str, int, str]) -> None:
    assert split_url(url) == expected


def test_split_url_rejects_a_port_that_is_not_a_number() -> None:
    with pytest.raises(ValueError, match=r"invalid port 'abc' in URL 'http://x\.example:abc/'"):
        split_url("http://x.example:abc/")


@pytest.mark.parametrize(
    "url",
    ["http://x.example:99999/", "http://x.example:65536/", "http://x.example:-1/"],
    ids=["99999", "65536", "negative"],
)
def test_split_url_rejects_a_port_out_of_range(url: str) -> None:
    # No client can send these; `aipolicy policy test` should refuse them as it refuses 'abc'.
    with pytest.raises(ValueError, match="port"):
        split_url(url)


# --- parse_target ---------------------------------------------------------------------------

TARGETS = [
    ("example.com", "domain", "example.com", "plain-domain"),
    ("Example.COM.", "domain", "example.com", "domain-normalised"),
    ("*.example.com", "domain", "*.example.com", "subdomains-only"),
    ("=api.example.com", "domain", "=api.example.com", "exact-host"),
    ("bücher.example", "domain", "xn--bcher-kva.example", "unicode-domain"),
    ("192.0.2.7", "network", "192.0.2.7/32", "ipv4-address"),
    ("192.0.2.0/24", "network", "192.0.2.0/24", "ipv4-network"),
    ("2001:db8::1", "network", "2001:db8::1/128", "ipv6-address"),
    ("[2001:db8::1]", "network", "2001:db8::1/128", "ipv6-in-brackets"),
    ("2001:db8::/32", "network", "2001:db8::/32", "ipv6-network"),
    ("example.com/Org", "url", "example.com/org", "url-prefix-lower-cased"),
    ("example.com/org/", "url", "example.com/org", "url-prefix-trailing-slash"),
    ("example.com/org/*", "url", "example.com/org", "url-trailing-star-is-prefix"),
    ("example.com/a/*/b", "url", "example.com/a/*/b", "url-glob"),
    ("https://example.com/x", "url", "example.com/x", "scheme-dropped"),
    ("  example.com  ", "domain", "example.com", "whitespace-stripped"),
]


@pytest.mark.parametrize(("text", "kind", "shown"), [t[:3] for t in TARGETS], ids=[t[3] for t in TARGETS])
def test_parse_target(text: str, kind: str, shown: str) -> None:
    target = parse_target(text)
    assert target.kind == kind
    assert str(target) == shown


TARGET_ERRORS = [
    ("192.0.2.1/24", r"^'192\.0\.2\.1/24' has host bits set; did you mean '192\.0\.2\.0/24'\?$", "ipv4-host-bits"),
    ("2001:db8::1/32", r"^'2001:db8::1/32' has host bits set; did you mean '2001:db8::/32'\?$", "ipv6-host-bits"),
    (
        "a.*.com",
        r"^'a\.\*\.com': a wildcard is only allowed as a leading '\*\.' \(subdomains only\)$",
        "wildcard-in-the-middle",
    ),
    ("*example.com", r"a wildcard is only allowed as a leading '\*\.'", "wildcard-without-dot"),
    ("*.*.example.com", r"a wildcard is only allowed as a leading '\*\.'", "two-wildcards"),
    ("=*.example.com", r"a wildcard is only allowed as a leading '\*\.'", "exact-and-wildcard"),
    ("example.com:443", r"^'example\.com:443': ports are not matched; write the host without ':port'$", "port"),
    (
        "not a domain",
        r"^'not a domain' is not a valid domain, IP address, network or host/path \(expected e\.g\. ",
        "space",
    ),
    ("bad..example", r"^'bad\.\.example' is not a valid domain", "empty-label"),
    ("-bad.example", r"^'-bad\.example' is not a valid domain", "leading-hyphen"),
    ("", r"^empty target$", "empty"),
    ("   ", r"^empty target$", "blank"),
]


@pytest.mark.parametrize(("text", "message"), [e[:2] for e in TARGET_ERRORS], ids=[e[2] for e in TARGET_ERRORS])
def test_parse_target_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_target(text)


@pytest.mark.parametrize(
    "text", ["127.1", "0x7f.0.0.1", "2130706433", "192.0.2.7."], ids=["short", "hex", "number", "trailing-dot"]
)
def test_parse_target_does_not_turn_an_address_into_a_domain(text: str) -> None:
    # A request to an IP address is looked up in the network index only, so a
    # domain target spelled as an address would load fine and never match.
    try:
        target = parse_target(text)
    except ValueError:
        return
    assert target.kind == "network", f"{text!r} parsed as a {target.kind} target {str(target)!r}"
