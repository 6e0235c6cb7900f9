"""Strict parsers for what the sinks send, written from the standards (not from aipolicy's code):
RFC 5424 (section 6 ABNF), RFC 6587 octet counting, and ArcSight CEF (header and extension escaping)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEADER = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>[!-~]{1,255}) (?P<app>[!-~]{1,48}) "
    r"(?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) "
)
_TIMESTAMP = re.compile(r"^(-|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d))$")
_SD_NAME = re.compile(r"[!#-<>-\\^-~]{1,32}")  # PRINTUSASCII except '=', ' ', ']' and '"'


@dataclass
class Syslog:
    priority: int
    timestamp: str
    hostname: str
    app: str
    procid: str
    msgid: str
    data: dict[str, dict[str, str]] = field(default_factory=dict)
    message: str = ""


def parse_rfc5424(text: str) -> Syslog:
    match = _HEADER.match(text)
    if not match:
        raise ValueError(f"not an RFC 5424 header: {text[:120]!r}")
    if not _TIMESTAMP.match(match["ts"]) or int(match["pri"]) > 191:
        raise ValueError(f"bad PRI or TIMESTAMP: {text[:60]!r}")
    rest = text[match.end() :]
    record = Syslog(int(match["pri"]), match["ts"], match["host"], match["app"], match["procid"], match["msgid"])
    if rest.startswith("-"):
        rest = rest[1:]
    else:
        while rest.startswith("["):
            rest = _parse_element(rest, record.data)
    if rest and not rest.startswith(" "):
        raise ValueError(f"junk after structured data: {rest[:60]!r}")
    record.message = rest[1:]
    return record


def _parse_element(text: str, data: dict[str, dict[str, str]]) -> str:
    name = _SD_NAME.match(text, 1)
    if not name:
        raise ValueError(f"bad SD-ID: {text[:40]!r}")
    params: dict[str, str] = {}
    position = name.end()
    while text[position] == " ":
        key = _SD_NAME.match(text, position + 1)
        if not key or text[key.end() : key.end() + 2] != '="':
            raise ValueError(f"bad SD-PARAM at {text[position : position + 40]!r}")
        position, value = key.end() + 2, []
        while text[position] != '"':
            if text[position] == "\\" and text[position + 1] in '"\\]':
                value.append(text[position + 1])
                position += 2
            else:
                if text[position] in '"]':
                    raise ValueError("unescaped delimiter in PARAM-VALUE")
                value.append(text[position])
                position += 1
        params[key.group()] = "".join(value)
        position += 1
    if text[position] != "]":
        raise ValueError(f"SD-ELEMENT not closed: {text[position : position + 40]!r}")
    data[name.group()] = params
    return text[position + 1 :]


def split_octet_counted(stream: bytes) -> tuple[list[bytes], bytes]:
    """RFC 6587 3.4.1 frames ``LEN SP MSG`` -> (messages, bytes left over)."""
    messages = []
    while True:
        length, space, rest = stream.partition(b" ")
        if not space:
            return messages, stream
        if not length.isdigit() or length.startswith(b"0"):
            raise ValueError(f"bad frame length {length[:20]!r}")
        if len(rest) < int(length):
            return messages, stream
        messages.append(rest[: int(length)])
        stream = rest[int(length) :]


@dataclass
class Cef:
    header: list[str]
    extension: dict[str, str]


def _split_unescaped(text: str, separator: str, limit: int) -> list[str]:
    parts, current, position = [], [], 0
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text):
            current.append(text[position + 1])
            position += 2
            continue
        if char == separator and len(parts) < limit:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        position += 1
    parts.append("".join(current))
    return parts


_EXTENSION_KEY = re.compile(r"(?:^| )([A-Za-z0-9_]+)=")


def parse_cef(text: str) -> Cef:
    """CEF:Version|Vendor|Product|Version|Signature|Name|Severity|Extension, unescaped."""
    if not text.startswith("CEF:"):
        raise ValueError(f"not CEF: {text[:40]!r}")
    # The header ends at the seventh unescaped '|'; escapes inside it are '\\|' and '\\\\'.
    raw, position, fields = text, 0, 0
    while fields < 7:
        if raw[position] == "\\":
            position += 2
            continue
        if raw[position] == "|":
            fields += 1
        position += 1
    header = _split_unescaped(raw[: position - 1], "|", 6)
    extension_text = raw[position:]
    if "\n" in extension_text or "\r" in extension_text:
        raise ValueError("raw newline in CEF extension")
    # Keys start where ' key=' appears with the '=' unescaped.
    keys = [m for m in _EXTENSION_KEY.finditer(extension_text) if _unescaped_at(extension_text, m.end() - 1)]
    extension = {}
    for index, key in enumerate(keys):
        end = keys[index + 1].start() if index + 1 < len(keys) else len(extension_text)
        extension[key.group(1)] = _unescape_value(extension_text[key.end() : end])
    return Cef(header, extension)


def _unescaped_at(text: str, position: int) -> bool:
    slashes = 0
    while position - 1 - slashes >= 0 and text[position - 1 - slashes] == "\\":
        slashes += 1
    return slashes % 2 == 0


def _unescape_value(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), value)
