"""The one syntax for what a rule, list or catalogue entry matches.

example.com            example.com and every subdomain (label boundaries)
*.example.com          subdomains only
=example.com           that host only
192.0.2.7  2001:db8::1 an IP address
192.0.2.0/24           a network (CIDR)
example.com/some/path  a path on a host: a segment-aligned prefix, or a
example.com/org/*      glob where * matches anything (case-insensitive,
                       percent-decoded before matching)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ._hosts import is_valid_domain, normalise_host, parse_ip
from ._index import PathPattern

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # "domain", "network" or "url"
    host: str = ""  # host pattern: "example.com", "*.example.com" or "=example.com"
    network: Network | None = None
    path: PathPattern | None = None

    def __str__(self) -> str:
        if self.network is not None:
            return str(self.network)
        return self.host + (self.path.text if self.path else "")


def parse_target(text: str) -> Target:
    """Parse one target; raise ValueError with a message a person can act on."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty target")
    if "://" in raw:
        raw = raw.split("://", 1)[1]
    network = _parse_network(raw)
    if network is not None:
        return Target("network", network=network)
    if "/" not in raw and not raw.startswith(("*.", "=")):
        address = parse_ip(normalise_host(raw))
        if address is not None:  # 127.1, 0x7f.0.0.1, 2130706433, 192.0.2.7. are addresses, not names
            return Target("network", network=ipaddress.ip_network(address))
    host_part, slash, path = raw.partition("/")
    host = _parse_host_pattern(host_part, text)
    if slash:
        return Target("url", host=host, path=PathPattern.parse("/" + path))
    return Target("domain", host=host)


def _parse_network(raw: str) -> Network | None:
    candidate = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    try:
        return _unmap(ipaddress.ip_network(candidate, strict=True))
    except ValueError as error:
        if "has host bits set" in str(error):
            fixed = ipaddress.ip_network(candidate, strict=False)
            raise ValueError(f"{raw!r} has host bits set; did you mean {str(fixed)!r}?") from None
        return None


def _unmap(network: Network) -> Network:
    """::ffff:192.0.2.0/120 is 192.0.2.0/24: requests from mapped addresses are matched as IPv4."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def _parse_host_pattern(host_part: str, original: str) -> str:
    prefix = ""
    if host_part.startswith("*."):
        prefix, host_part = "*.", host_part[2:]
    elif host_part.startswith("="):
        prefix, host_part = "=", host_part[1:]
    if "*" in host_part:
        raise ValueError(f"{original!r}: a wildcard is only allowed as a leading '*.' (subdomains only)")
    if ":" in host_part.strip("[]") and host_part.count(":") == 1:
        raise ValueError(f"{original!r}: ports are not matched; write the host without ':port'")
    host = normalise_host(host_part)
    if not is_valid_domain(host):
        raise ValueError(
            f"{original!r} is not a valid domain, IP address, network or host/path "
            "(expected e.g. example.com, *.example.com, =api.example.com, 192.0.2.0/24, example.com/path)"
        )
    return prefix + host
