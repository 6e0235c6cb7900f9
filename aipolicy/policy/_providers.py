"""Model-serving providers, and reading the model id out of a request.

A ban "in any capacity" covers a vendor's models wherever they are served. For
each provider API host, ``providers.yaml`` records where the model id lives:
top-level JSON body fields (a string, or an array of fallbacks), a path regex
with a ``model`` group, or a header. Only that field is read, never the prompt:
a prompt that mentions a banned model, sent to another model, is no violation.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import translate
from pathlib import Path
from typing import Any

from aipolicy._errors import PolicyError
from aipolicy.matching import Target, parse_target

from ._checker import Checker, read_yaml_file

PROVIDER_KEYS = ("id", "name", "source", "hosts", "model", "note")
MODEL_KEYS = ("json", "path", "header")


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    targets: tuple[Target, ...]
    json_fields: tuple[str, ...] = ()
    path_patterns: tuple[re.Pattern[str], ...] = ()
    headers: tuple[str, ...] = ()
    source: str = ""

    @property
    def needs_body(self) -> bool:
        return bool(self.json_fields)


@dataclass(frozen=True)
class ModelCondition:
    """Matches a request whose model id, read where ``provider`` keeps it, fits a pattern.

    ``patterns`` pairs each case-insensitive glob with the catalogue app it
    came from (or None for a pattern written in the rule)."""

    provider: Provider
    patterns: tuple[tuple[str, str | None], ...]
    regex: re.Pattern[str] = field(init=False, compare=False, repr=False)
    # the model id is only ever in the body: until the body is read, nothing else can tell
    body_only: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        combined = "|".join(f"(?:{translate(p)})" for p, _ in self.patterns) or "(?!)"
        object.__setattr__(self, "regex", re.compile(combined, re.IGNORECASE))
        provider = self.provider
        body_only = bool(provider.json_fields) and not provider.path_patterns and not provider.headers
        object.__setattr__(self, "body_only", body_only)

    def match(self, models: list[str]) -> tuple[str, str | None] | None:
        """(model id, app id) of the first model id that fits, else None."""
        for model in models:
            if self.regex.match(model):
                for pattern, app in self.patterns:
                    if re.match(translate(pattern), model, re.IGNORECASE):
                        return model, app
        return None


class ModelReader:
    """Reads model ids from one request, parsing the body at most once."""

    __slots__ = ("path", "headers", "body", "_json", "_cache")

    def __init__(self, path: str | None, headers: Mapping[str, str], body: bytes | None) -> None:
        self.path = path
        self.headers = headers
        self.body = body
        self._json: Any = _UNSET
        self._cache: dict[str, list[str] | None] = {}

    def models(self, provider: Provider) -> list[str] | None:
        """Model ids in this request for ``provider``; None if the body is needed but not yet read."""
        if provider.id not in self._cache:
            self._cache[provider.id] = self._read(provider)
        return self._cache[provider.id]

    def _read(self, provider: Provider) -> list[str] | None:
        found: list[str] = []
        if provider.path_patterns and self.path is not None:
            path = urllib.parse.unquote(self.path.split("?", 1)[0])
            for pattern in provider.path_patterns:
                hit = pattern.search(path)
                if hit and hit.group("model"):
                    found.append(hit.group("model"))
        for name in provider.headers:
            value = self.headers.get(name, "")
            if value:
                found.append(value)
        if provider.json_fields:
            if self.body is None:
                return None if not found else found
            document = self._document()
            if isinstance(document, dict):
                for name in provider.json_fields:
                    found.extend(_strings(document.get(name)))
        return found

    def _document(self) -> Any:
        if self._json is _UNSET:
            self._json = None
            content_type = self.headers.get("content-type", "")
            lowered = content_type.lower()
            if self.body and ("json" in lowered or not lowered):
                try:
                    self._json = json.loads(self.body)
                except (ValueError, UnicodeDecodeError, RecursionError):
                    self._json = None
            elif self.body and lowered.startswith("multipart/form-data"):
                self._json = multipart_fields(content_type, self.body)  # uploads: audio, files
            elif self.body and lowered.startswith("application/x-www-form-urlencoded"):
                fields = urllib.parse.parse_qs(self.body.decode("utf-8", "replace"), max_num_fields=256)
                self._json = {name: values[0] for name, values in fields.items()}
        return self._json


MAX_FORM_PARTS = 64
MAX_FIELD_BYTES = 64 * 1024


def multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The text fields of a multipart/form-data body (file parts and large parts skipped)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    if not message.is_multipart():
        return fields
    for part in list(message.iter_parts())[:MAX_FORM_PARTS]:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None or name in fields:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and len(payload) <= MAX_FIELD_BYTES:
            fields[name] = payload.decode("utf-8", "replace")
    return fields


_UNSET = object()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value[:64] if isinstance(v, str)]
    return []


def load_providers(path: str | Path) -> tuple[dict[str, Provider], str]:
    """Load and validate a providers file: ({id: Provider}, sha256 of its bytes)."""
    raw, data, check = read_yaml_file(path, "providers file")
    providers: dict[str, Provider] = {}
    root = check.mapping(data, (1, 1), "the providers file") if data is not None else None
    if root is not None:
        check.keys(root, "the providers file", ("version", "providers"), ("version", "providers"))
        for body, position in check.items(root, "providers", "the providers file"):
            entry = check.mapping(body, position, "a provider")
            if entry is not None:
                provider = _read_provider(check, entry)
                if provider is not None:
                    if provider.id in providers:
                        check.error(
                            entry.value_positions["id"], "duplicate-id", f"provider id {provider.id!r} is used twice"
                        )
                    providers[provider.id] = provider
    if check.failed:
        raise PolicyError(check.problems)
    return providers, hashlib.sha256(raw).hexdigest()


def _read_provider(check: Checker, entry: Any) -> Provider | None:
    check.keys(entry, "a provider", PROVIDER_KEYS, ("id", "name", "source", "hosts", "model"))
    provider_id = check.identifier(entry, "id", "provider")
    what = f"provider {provider_id!r}"
    source = check.string(entry, "source", what, required=True) or ""
    if source and not source.startswith("https://"):
        check.error(entry.value_positions["source"], "bad-source", f"{what} source {source!r} must be an https:// URL")
    targets = []
    for text, position in check.strings(entry, "hosts", what):
        try:
            target = parse_target(text)
        except ValueError as error:
            check.error(position, "bad-host", f"{what}: {error}")
            continue
        if target.kind != "domain":
            check.error(position, "bad-host", f"{what}: {text!r} must be a host or domain")
            continue
        targets.append(target)
    model = check.mapping(entry.get("model"), entry.value_positions.get("model", entry.position), f"{what}.model")
    if model is None:
        return None
    check.keys(model, f"{what}.model", MODEL_KEYS)
    json_fields = tuple(f for f, _ in check.strings(model, "json", f"{what}.model"))
    headers = tuple(h.lower() for h, _ in check.strings(model, "header", f"{what}.model"))
    patterns = []
    for text, position in check.strings(model, "path", f"{what}.model"):
        try:
            pattern = re.compile(text)
        except re.error as error:
            check.error(position, "bad-regex", f"{what}: path regex {text!r} does not compile: {error}")
            continue
        if "model" not in pattern.groupindex:
            check.error(position, "bad-regex", f"{what}: path regex {text!r} has no (?P<model>…) group")
            continue
        patterns.append(pattern)
    if not (json_fields or headers or patterns):
        check.error(
            model.position, "empty-model", f"{what}.model says nowhere to read the model id (use json, path or header)"
        )
    if not provider_id:
        return None
    return Provider(
        provider_id, str(entry.get("name", provider_id)), tuple(targets), json_fields, tuple(patterns), headers, source
    )
