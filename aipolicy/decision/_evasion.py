"""Signs that a client is hiding where it goes. Recorded as ``evasion`` events,
whatever the decision was, so that compliance sees the attempt itself."""

from __future__ import annotations

from aipolicy.matching import normalise_host, parse_ip
from aipolicy.policy import Policy

IP_TARGET_WITH_AI_SNI = "ip-target-with-ai-sni"
SNI_HOST_MISMATCH = "sni-host-mismatch"
DNS_OVER_HTTPS = "dns-over-https"
DOH_CATEGORY = "dns-over-https"


def evasion_signals(
    policy: Policy, target: str, sni: str, host_header: str, doh_names: tuple[str, ...] = ()
) -> list[str]:
    """The evasion kinds these names show (CONNECT or server target, TLS SNI, Host header).

    ``doh_names`` are checked against the catalogue's DNS-over-HTTPS resolvers: the caller
    passes them at the first stage that sees a connection, so that it is reported once."""
    catalog = policy.catalog
    signals = []
    for name in doh_names:
        app = catalog.app_for_name(name) if name else None
        if app is not None and DOH_CATEGORY in app.categories:
            signals.append(DNS_OVER_HTTPS)
            break
    sni_name = normalise_host(sni) if sni else ""
    sni_app = catalog.app_for_host(sni_name) if sni_name else None
    if sni_app and parse_ip(normalise_host(target)) is not None:
        signals.append(IP_TARGET_WITH_AI_SNI)
    if sni_name and host_header:
        host_name = normalise_host(host_header)
        if host_name != sni_name and parse_ip(host_name) is None:
            host_app = catalog.app_for_host(host_name)
            if (sni_app or host_app) and sni_app != host_app:
                signals.append(SNI_HOST_MISMATCH)
    return signals
