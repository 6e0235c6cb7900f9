"""Events as SIEM messages: syslog RFC 5424 and ArcSight CEF, and the framing
that carries them (RFC 6587 octet counting over TCP and TLS).

Pure functions: the transport lives in ``proxy_addons/sinks.py``. Every value
comes from an event, and events carry request data (hosts, paths, user agents),
so every value is treated as hostile: control characters never pass through as
such (a newline cannot start a forged message), and each format's delimiters
are escaped. Events never hold bodies or secrets, and only the fields mapped
here are sent.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aipolicy._errors import AipolicyError

SYSLOG_FORMATS = ("rfc5424", "cef")
SYSLOG_SCHEMES = ("udp", "tcp", "tls")
SYSLOG_DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514}
FACILITY_LOCAL0 = 16
# The private enterprise number RFC 5612 reserves for documentation: aipolicy has none of its own,
# and an SD-ID with "@number" is the form RFC 5424 gives to names that are not IANA-registered.
SD_ID = "aipolicy@32473"
APP_NAME = "aipolicy"
CEF_VENDOR = "aipolicy"
CEF_PRODUCT = "aipolicy"

# RFC 5424 severities
_SEVERITY = {"block": 4, "monitor": 5, "allow": 6, "redact": 5, "warn": 5}
_SYSTEM_SEVERITY = {"policy_rejected": 3, "sink_dropped": 4, "log_unavailable": 3}
# CEF severities, 0 (lowest) to 10
_CEF_SEVERITY = {"block": 7, "monitor": 3, "allow": 1, "redact": 5, "warn": 4}
_CEF_SYSTEM_SEVERITY = {"policy_rejected": 8, "sink_dropped": 6, "evasion": 6}

# Event fields carried as RFC 5424 structured data, in this order. Names are PARAM-NAMEs (<= 32 ASCII).
SD_FIELDS = (
    "id",
    "event",
    "action",
    "rule",
    "app",
    "vendor",
    "category",
    "host",
    "sni",
    "method",
    "scheme",
    "port",
    "path",
    "client_ip",
    "user",
    "user_agent",
    "model",
    "directive",
    "policy",
    "stage",
    "evasion",
    "reason",
)

# Event field -> CEF extension key (ArcSight "Common Event Format" key names), in this order.
CEF_FIELDS = (
    ("ts", "rt"),
    ("action", "act"),
    ("client_ip", "src"),
    ("user", "suser"),
    ("host", "dhost"),
    ("port", "dpt"),
    ("method", "requestMethod"),
    ("url", "request"),
    ("user_agent", "requestClientApplication"),
    ("proxy", "dvchost"),
    ("id", "externalId"),
    ("reason", "reason"),
)
# Event fields without a CEF key of their own: custom strings with their labels.
CEF_CUSTOM = (
    ("rule", "cs1"),
    ("app", "cs2"),
    ("vendor", "cs3"),
    ("policy", "cs4"),
    ("category", "cs5"),
    ("directive", "cs6"),
)

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_UDP_LIMIT = 8192  # bytes per datagram: loopback and most networks carry it; longer messages are cut


class SinkConfigError(AipolicyError):
    """A sink address or format that cannot be used."""


def parse_syslog_url(url: str) -> tuple[str, str, int]:
    """``udp://host:514`` -> ("udp", "host", 514), or a SinkConfigError saying what is valid."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SYSLOG_SCHEMES:
        raise SinkConfigError(
            f"syslog address {url!r}: scheme must be one of {', '.join(s + '://' for s in SYSLOG_SCHEMES)} "
            "(e.g. udp://siem.example:514)"
        )
    try:
        port = parts.port or SYSLOG_DEFAULT_PORTS[scheme]
    except ValueError:
        raise SinkConfigError(f"syslog address {url!r}: the port is not a number from 1 to 65535") from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        raise SinkConfigError(f"syslog address {url!r}: expected {scheme}://HOST[:PORT] and nothing else")
    return scheme, parts.hostname, port


def _text(value: Any) -> str:
    """A value as one line of text: control characters become visible \\xNN escapes."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = ",".join(str(v) for v in value)
    text = str(value)
    if text.isprintable():  # the usual case: no control character to escape
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _ascii_token(value: str, limit: int) -> str:
    """A syslog header field: printable US-ASCII without spaces, or the nil value '-'."""
    token = "".join(c if "!" <= c <= "~" else "_" for c in value)[:limit]
    return token or "-"


def _severity(event: Mapping[str, Any]) -> int:
    if event.get("event") == "decision":
        return _SEVERITY.get(str(event.get("action")), 5)
    return _SYSTEM_SEVERITY.get(str(event.get("event")), 5)


def syslog_header(event: Mapping[str, Any], hostname: str = "", facility: int = FACILITY_LOCAL0) -> str:
    """``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID`` (RFC 5424 section 6.2)."""
    priority = facility * 8 + _severity(event)
    timestamp = _ascii_token(str(event.get("ts") or ""), 64)
    host = _ascii_token(hostname or str(event.get("proxy") or ""), 255)
    msgid = _ascii_token(str(event.get("event") or ""), 32)
    return f"<{priority}>1 {timestamp} {host} {APP_NAME} {os.getpid()} {msgid}"


def _sd_value(value: Any) -> str:
    # RFC 5424 section 6.3.3: '"', '\' and ']' are escaped with a backslash inside PARAM-VALUE.
    return _text(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _summary(event: Mapping[str, Any]) -> str:
    kind = event.get("event")
    if kind == "decision" or kind == "evasion":
        head = f"{event.get('action')} {event.get('host') or '-'} rule={event.get('rule')}"
        return f"{head}: {event.get('reason') or ''}".strip()
    return f"{kind}: {event.get('reason') or ''}"


def to_rfc5424(event: Mapping[str, Any], hostname: str = "", facility: int = FACILITY_LOCAL0) -> str:
    """One RFC 5424 message: the header, the event's fields as structured data, and a one-line summary."""
    params = " ".join(
        f'{name}="{_sd_value(event[name])}"' for name in SD_FIELDS if event.get(name) not in (None, "", [])
    )
    structured = f"[{SD_ID} {params}]" if params else "-"
    return f"{syslog_header(event, hostname, facility)} {structured} {_text(_summary(event))}"


def _cef_header(value: Any) -> str:
    return _text(value).replace("\\", "\\\\").replace("|", "\\|")


def _cef_value(value: Any) -> str:
    # CEF extension values: backslash and '=' escaped; newlines as \n and \r; other controls made visible.
    text = "" if value is None else str(value)
    if text.isprintable() and "\\" not in text and "=" not in text:
        return text  # the usual case: nothing to escape
    text = text.replace("\\", "\\\\").replace("=", "\\=").replace("\r\n", "\\n").replace("\n", "\\n")
    return _text(text.replace("\r", "\\r"))


def _cef_time(ts: Any) -> str:
    """RFC 3339 -> milliseconds since the epoch, the form CEF's ``rt`` takes."""
    try:
        moment = datetime.datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return ""
    return str(int(moment.timestamp() * 1000))


def to_cef(event: Mapping[str, Any], version: str = "") -> str:
    """One CEF:0 record (ArcSight Common Event Format) for an event."""
    kind = str(event.get("event") or "event")
    action = event.get("action")
    signature = f"{kind}:{action}" if action else kind
    if kind == "decision":
        name = f"AI app request {action}" + (f" ({event['app']})" if event.get("app") else "")
        severity = _CEF_SEVERITY.get(str(action), 3)
    else:
        name = f"aipolicy {kind}"
        severity = _CEF_SYSTEM_SEVERITY.get(kind, 3)
    header = "|".join(
        _cef_header(v) for v in ("CEF:0", CEF_VENDOR, CEF_PRODUCT, version or "-", signature, name, severity)
    )
    values = dict(event)
    values["ts"] = _cef_time(event.get("ts"))
    if event.get("host"):
        path = event.get("path") or ""
        values["url"] = f"{event.get('scheme') or 'http'}://{event['host']}{path if str(path).startswith('/') else ''}"
    pairs = [(key, values.get(name)) for name, key in CEF_FIELDS]
    for name, key in CEF_CUSTOM:
        if event.get(name) not in (None, ""):
            pairs += [(f"{key}Label", name), (key, event[name])]
    extension = " ".join(f"{key}={_cef_value(value)}" for key, value in pairs if value not in (None, "", []))
    return f"{header}|{extension}"


def format_message(event: Mapping[str, Any], syslog_format: str, hostname: str = "", version: str = "") -> str:
    """The message for one event: RFC 5424 with structured data, or CEF inside an RFC 5424 header."""
    if syslog_format == "cef":
        return f"{syslog_header(event, hostname)} - {to_cef(event, version)}"
    if syslog_format == "rfc5424":
        return to_rfc5424(event, hostname)
    raise SinkConfigError(f"syslog format {syslog_format!r}: must be one of {', '.join(SYSLOG_FORMATS)}")


def frame(message: str, transport: str) -> bytes:
    """Bytes on the wire: TCP and TLS use octet counting (RFC 6587 3.4.1, RFC 5425); UDP one datagram each."""
    data = message.encode("utf-8")
    if transport == "udp":
        return data[:_UDP_LIMIT]
    return b"%d %s" % (len(data), data)


def webhook_batch(events: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON body of one webhook POST: the events as written to the log, and how many."""
    return {"source": APP_NAME, "count": len(events), "events": list(events)}
