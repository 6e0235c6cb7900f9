"""Host and path normalisation: done once, in the core, for proxy and CLI alike.

Every name a client presents (CONNECT target, TLS SNI, Host header, a URL typed
into ``aipolicy policy test``) goes through :func:`normalise_host` before it is
looked up, so ``DeepSeek.COM.``, ``user@deepseek.com:443``, ``[::1]`` and
``xn--...`` spellings all meet the same index entry.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse

import idna

_PLAIN_HOST = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_IPV4_PART = re.compile(r"(0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def normalise_host(raw: str) -> str:
    """Return the canonical form of a host as a client may spell it.

    Strips userinfo, port, IPv6 brackets and trailing dots; percent-decodes;
    lower-cases; converts Unicode labels to punycode; writes IP addresses in
    their canonical form (including WHATWG IPv4 spellings such as ``0x7f.1``).
    Never raises: a name that cannot be made canonical is returned lower-cased
    so that it still matches nothing it should not.
    """
    if _PLAIN_HOST.fullmatch(raw) and not raw[-1].isdigit() and "0x" not in raw:
        return raw  # fast path: already canonical, and its last label is no number (so no IPv4 address)
    if _CANONICAL_IPV4.fullmatch(raw):
        return raw  # fast path: an IPv4 address in its canonical spelling
    name, colon, port = raw.partition(":")
    if colon and port.isdigit():  # fast paths: a Host header with a port
        if _PLAIN_HOST.fullmatch(name) and not name[-1].isdigit() and "0x" not in name:
            return name  # the usual one, checked as above (cheaper than _ends_in_number)
        if _CANONICAL_IPV4.fullmatch(name) or _PLAIN_HOST.fullmatch(name) and not _ends_in_number(name):
            return name
    return _normalise_slowly(raw)


def _normalise_slowly(raw: str) -> str:
    """normalise_host without its fast paths."""
    host = raw
    for _ in range(_MAX_PASSES):  # until stable: decoding and Unicode mapping can reveal more to normalise
        again = _normalise_once(host)
        if again == host:
            break
        host = again
    return host


_MAX_PASSES = 6
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")


def _normalise_once(raw: str) -> str:
    host = raw.strip(_TRIM)
    if "@" in host:
        host = host.rsplit("@", 1)[1]
    for _ in range(_MAX_DECODES):  # decode until stable: %252e is a dot too, to a resolver that decodes twice
        if "%" not in host:
            break
        host = urllib.parse.unquote(host)
    while host.startswith("["):  # a loop, not one layer per pass: "[.[.[.[…" must not outlast _MAX_PASSES
        end = host.find("]")
        inner = host[1:end] if end != -1 else host[1:]
        ip = _canonical_ip(inner)
        if ip:
            return ip
        host = inner.strip("[] " + _TRIM)  # not an address: normalise what is inside as a name
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    elif host.count(":") > 1:  # bare IPv6 address
        return _canonical_ip(host) or host.lower()
    host = host.lower()
    if not host.isascii():
        try:  # map first (full-width dots become dots), then strip the trailing ones
            host = idna.uts46_remap(host, std3_rules=False, transitional=False)
        except (idna.IDNAError, ValueError):
            pass
    host = host.strip(_TRIM)
    ip = _canonical_ip(host)
    if ip:
        return ip
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=False).decode("ascii")
        except (idna.IDNAError, ValueError):
            return host
    return host


_MAX_DECODES = 8
_TRIM = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0."  # whitespace and dots at either end
_KEEP_ENCODED = re.compile(r"(%3[fF]|%23)")
_HEX_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")


def _ends_in_number(host: str) -> bool:
    """WHATWG URL: a host whose last label is a number is an IPv4 address (or invalid)."""
    last = host.rstrip(".").rpartition(".")[2]
    return bool(_HEX_NUMBER.fullmatch(last))


def _canonical_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        pass
    if host and _ends_in_number(host):
        v4 = _parse_whatwg_ipv4(host)
        if v4 is not None:
            return str(ipaddress.IPv4Address(v4))
    return None


def _parse_whatwg_ipv4(host: str) -> int | None:
    """Parse the IPv4 spellings browsers accept: 127.1, 0x7f.0.0.1, 2130706433."""
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        if not _IPV4_PART.fullmatch(part):
            return None
        if part.startswith("0x"):
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return value


def parse_ip(host: str) -> IPAddress | None:
    """The address if a normalised host is an IP literal; IPv4-mapped IPv6 unwrapped."""
    if not host or not (host[-1].isdigit() or ":" in host):
        return None
    if _CANONICAL_IPV4.fullmatch(host):  # what normalise_host makes of every IPv4 spelling: skip the parser
        a, b, c, d = host.split(".")
        return ipaddress.IPv4Address(int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def is_valid_domain(host: str) -> bool:
    """True for a syntactically valid, already-normalised DNS name."""
    if not host or len(host) > 253:
        return False
    return all(_LABEL.fullmatch(label) for label in host.split("."))


def normalise_path(raw: str) -> str:
    """Canonical path for matching: query dropped, percent-decoded until stable,
    dot segments resolved, repeated slashes collapsed, lower-cased.

    Decoding repeatedly and folding case fail closed: a rule for
    ``/deepseek-ai/`` also catches ``/DeepSeek%2Dai/`` and ``/%2564eepseek-ai``.
    """
    path = raw
    if "?" in path or "#" in path:
        path = path.split("?", 1)[0].split("#", 1)[0]
    if path[:1] == "/" and "%" not in path and "\\" not in path and "//" not in path and "/." not in path:
        # fast path: nothing to decode; every segment starts after a slash, so no segment is
        # empty, "." or ".." (not even ".well-known": that one takes the long way). Cheaper than a regex.
        return path.lower()
    return _decode_and_resolve(path)


def _decode_and_resolve(path: str) -> str:
    """normalise_path's long way, for a path without its query: percent-decoded until stable,
    backslashes as slashes, empty and dot segments resolved, lower-cased."""
    for _ in range(_MAX_DECODES):
        if "%" not in path:
            break
        # "?" and "#" stay encoded: decoded, they would end the path on a second pass
        decoded = "".join(
            urllib.parse.unquote(piece) if i % 2 == 0 else piece.lower()
            for i, piece in enumerate(_KEEP_ENCODED.split(path))
        )
        if decoded == path:
            break
        path = decoded
    path = path.replace("\\", "/")
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    trailing = "/" if path.endswith("/") and segments else ""
    return ("/" + "/".join(segments) + trailing).lower()


def split_url(url: str) -> tuple[str, str, int, str]:
    """Split a URL as a client would send it into (scheme, host, port, path?query)."""
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower() or "http"
    netloc = parts.netloc
    port = None
    hostport = netloc.rsplit("@", 1)[-1]
    if hostport.startswith("["):
        end = hostport.find("]")
        if hostport[end + 1 : end + 2] == ":":
            port = hostport[end + 2 :]
    elif hostport.count(":") == 1:
        port = hostport.split(":", 1)[1]
    default = 443 if scheme in ("https", "wss") else 80
    try:
        port_number = int(port) if port else default
    except ValueError:
        port_number = -1
    if not 0 < port_number < 65536 or (port and not port.isdigit()):
        raise ValueError(f"invalid port {port!r} in URL {url!r} (valid: 1-65535)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, normalise_host(netloc), port_number, path
