"""Community block lists: fetch them and parse their formats into targets.

Formats understood (``detect_format`` picks one by looking at the lines):

hosts    ``0.0.0.0 ads.example.com other.example`` — every name after the address
adblock  ``||example.com^`` — domain rules only; exceptions (``@@``), cosmetic
         rules (``##``), rules with ``$options``, paths and wildcards are skipped
         and counted, as a list of targets cannot represent them
plain    one target per line (see ``parse_target``), ``#`` comments
v2fly    v2fly/domain-list-community: ``domain:`` (it and subdomains), ``full:``
         (that host only), bare names; ``regexp:`` and ``keyword:`` are skipped
         and counted, ``include:`` is reported as unsupported; ``@attributes``
         are read and dropped

Every entry goes through the core's target parser, so an imported name is
normalised exactly as the proxy normalises the names clients send. Nothing here
writes files; see ``_imports``.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aipolicy._errors import AipolicyError
from aipolicy._fetch import FetchError, fetch_capped, public_url
from aipolicy.matching import parse_ip, parse_target

if TYPE_CHECKING:  # httpx imports click and rich when they are installed: the core imports it only to fetch
    import httpx

FORMATS = ("hosts", "adblock", "plain", "v2fly")
MAX_SOURCE_BYTES = 32 * 1024 * 1024  # the largest public lists are a few MB
_TEXT_TYPES = ("text/", "application/octet-stream", "application/x-", "binary/octet-stream")
_LOCAL_NAMES = frozenset(
    ("localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost", "ip6-loopback", "0.0.0.0")
)
_CLIP = 120
_PLAIN_DOMAIN = re.compile(r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z_][a-z0-9_-]{0,62}")

# Why a line of a source was skipped (the format allows it; a list of targets cannot hold it).
SKIP_REASONS = {
    "exception": "adblock exception rule (@@)",
    "cosmetic": "adblock cosmetic rule (##, #@#, #?#)",
    "options": "adblock rule with $options",
    "not-domain": "adblock rule that is not ||domain^ (a URL pattern or path)",
    "wildcard": "rule with a wildcard inside the name",
    "regexp": "v2fly regexp: rule",
    "keyword": "v2fly keyword: rule",
    "include": "v2fly include: (unsupported: import the included list on its own)",
    "local": "hosts-file local name (localhost …)",
}


class SourceError(AipolicyError):
    """An import source cannot be read: missing file, HTTP error, too large, not a text list."""


@dataclass(frozen=True)
class SourceLine:
    """One line of a source that is not imported as it stands, and why."""

    line: int
    text: str
    reason: str  # a SKIP_REASONS key, or the target parser's message for an invalid entry

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "text": self.text, "reason": self.reason}


@dataclass
class ParsedSource:
    """What a source holds: targets in canonical form, with the line each came from."""

    format: str
    entries: list[tuple[str, int]] = field(default_factory=list)
    invalid: list[SourceLine] = field(default_factory=list)
    skipped: list[SourceLine] = field(default_factory=list)
    attributes: Counter[str] = field(default_factory=Counter)  # v2fly @attributes seen, dropped

    def skipped_counts(self) -> dict[str, int]:
        return dict(Counter(item.reason for item in self.skipped))


def read_source(source: str, *, transport: httpx.BaseTransport | None = None, max_bytes: int = MAX_SOURCE_BYTES) -> str:
    """The text of a file or an http(s) URL; raise SourceError saying what is wrong."""
    if source.startswith(("http://", "https://")):
        raw = _fetch(source, transport, max_bytes)
    elif "://" in source:
        raise SourceError(f"{source!r}: only http:// and https:// URLs and local files can be imported")
    else:
        try:
            with open(source, "rb") as stream:
                raw = stream.read(max_bytes + 1)
        except OSError as error:
            raise SourceError(f"cannot read {source!r}: {error.strerror or error}") from None
        if len(raw) > max_bytes:
            raise SourceError(f"{source!r} is larger than {max_bytes:,} bytes; is it really a block list?")
    return _as_text(raw, source)


def _fetch(url: str, transport: httpx.BaseTransport | None, max_bytes: int) -> bytes:
    try:
        fetched = fetch_capped(
            url,
            max_bytes=max_bytes,
            accept="text/plain, */*;q=0.5",
            check_headers=functools.partial(_check_type, url),
            transport=transport,
        )
    except FetchError as error:
        raise SourceError(str(error)) from None
    return fetched.body


def _check_type(url: str, headers: Mapping[str, str]) -> None:
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type and not content_type.startswith(_TEXT_TYPES) or content_type == "text/html":
        raise SourceError(
            f"{public_url(url)}: the server sent {content_type!r}, not a text list (is the URL a web page?)"
        )


def _as_text(raw: bytes, source: str) -> str:
    if b"\x00" in raw[:65536]:
        raise SourceError(f"{source}: binary data, not a text list")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SourceError(f"{source}: not UTF-8 text (byte {error.start})") from None
    head = text.lstrip()[:256].lower()
    if head.startswith(("<!doctype html", "<html", "<?xml")):
        raise SourceError(f"{source}: an HTML or XML document, not a list (is the URL a web page?)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def detect_format(text: str) -> str:
    """The likeliest format of a list, by a vote over its first thousand meaningful lines."""
    votes: Counter[str] = Counter()
    seen = 0
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(("[Adblock", "!")):
            votes["adblock"] += 1 if line.startswith("!") else 100
            continue
        if line.startswith("#"):
            continue
        seen += 1
        if line.startswith(("||", "@@", "|http")) or "##" in line or "^" in line:
            votes["adblock"] += 1
        elif re.match(r"(domain|full|regexp|keyword|include):", line):
            votes["v2fly"] += 1
        elif len(line.split()) >= 2 and parse_ip(line.split()[0]) is not None:
            votes["hosts"] += 1
        else:
            votes["plain"] += 1
        if seen >= 1000:
            break
    if not votes:
        return "plain"
    return max(FORMATS, key=lambda name: votes[name])


def parse_source(text: str, list_format: str = "auto") -> ParsedSource:
    """Parse a list in one of FORMATS (or "auto"); never raises on bad lines."""
    if list_format == "auto":
        list_format = detect_format(text)
    if list_format not in FORMATS:
        raise ValueError(f"unknown list format {list_format!r} (valid: auto, {', '.join(FORMATS)})")
    parsed = ParsedSource(list_format)
    reader = {"hosts": _hosts_line, "adblock": _adblock_line, "plain": _plain_line, "v2fly": _v2fly_line}[list_format]
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if line:
            reader(parsed, number, line)
    return parsed


def _add(parsed: ParsedSource, number: int, name: str, original: str) -> None:
    if _PLAIN_DOMAIN.fullmatch(name):
        parsed.entries.append((name, number))  # already canonical: most lines of a large list
        return
    try:
        parsed.entries.append((str(parse_target(name)), number))
    except ValueError as error:
        parsed.invalid.append(SourceLine(number, original[:_CLIP], str(error)))


def _skip(parsed: ParsedSource, number: int, line: str, reason: str) -> None:
    parsed.skipped.append(SourceLine(number, line[:_CLIP], reason))


def _plain_line(parsed: ParsedSource, number: int, line: str) -> None:
    item = line.split("#", 1)[0].strip()
    if item:
        _add(parsed, number, item, line)


def _hosts_line(parsed: ParsedSource, number: int, line: str) -> None:
    fields = line.split("#", 1)[0].split()
    if not fields:
        return
    if len(fields) < 2 or not _is_address(fields[0]):
        parsed.invalid.append(SourceLine(number, line[:_CLIP], f"expected 'ADDRESS NAME…', got {line[:80]!r}"))
        return
    for name in fields[1:]:
        if name.lower() in _LOCAL_NAMES:
            _skip(parsed, number, line, "local")
        else:
            _add(parsed, number, name, line)


@functools.lru_cache(maxsize=64)
def _is_address(text: str) -> bool:
    """Hosts files repeat one or two addresses (0.0.0.0, 127.0.0.1) on every line."""
    return parse_ip(text) is not None


_ADBLOCK_DOMAIN = re.compile(r"\|\|([^/^$|*]+)\^?\|?")


def _adblock_line(parsed: ParsedSource, number: int, line: str) -> None:
    if line.startswith(("!", "[")) or (line.startswith("#") and not line.startswith("##")):
        return  # comments, the [Adblock Plus 2.0] header
    if line.startswith("@@"):
        return _skip(parsed, number, line, "exception")
    if "##" in line or "#@#" in line or "#?#" in line or "#$#" in line:
        return _skip(parsed, number, line, "cosmetic")
    if "$" in line:
        return _skip(parsed, number, line, "options")
    hit = _ADBLOCK_DOMAIN.fullmatch(line)
    if hit is None:
        reason = "wildcard" if line.startswith("||") and "*" in line else "not-domain"
        return _skip(parsed, number, line, reason)
    _add(parsed, number, hit.group(1), line)


def _v2fly_line(parsed: ParsedSource, number: int, line: str) -> None:
    item = line.split("#", 1)[0].strip()
    if not item:
        return
    words = item.split()
    rule, attributes = words[0], [w for w in words[1:] if w.startswith("@")]
    parsed.attributes.update(a[1:] for a in attributes)
    kind, colon, value = rule.partition(":")
    if not colon:
        kind, value = "domain", rule
    if kind in ("regexp", "keyword", "include"):
        return _skip(parsed, number, line, kind)
    if kind == "domain":
        _add(parsed, number, value, line)
    elif kind == "full":
        _add(parsed, number, "=" + value, line)
    else:
        parsed.invalid.append(SourceLine(number, line[:_CLIP], f"unknown v2fly rule type {kind!r}"))
