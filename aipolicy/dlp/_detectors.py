"""DLP detectors: secrets, personal data, classification markings, custom words.

A ``Scanner`` finds what a set of detectors names in a text, a JSON document
or a request body, and redacts it. Findings are only detector names and
counts: the matched text never leaves this module except as the span that
redaction replaces.

Speed: each built-in rule's regex runs only when one of its literal
triggers (like gitleaks' keywords: ``AKIA``, ``ghp_``, ``SECRET//`` …) is in
the text, a substring test far cheaper than a regex pass; the digit-based
rules (SSN, cards) begin with a digit class so the engine skips to digits. A
JSON body's strings are scanned as one text. (One combined alternation of all
rules was measured first: Python's ``re`` tries every alternative at every
position, and it was 5-10 times slower.) Of overlapping built-in matches the
leftmost is counted and all are redacted; custom keywords and regexes are
separate passes, so an overlap with a built-in match never hides a custom hit.
Redaction scans its result again, since a replacement can expose a match.

Limits: ``Scanner.scan`` refuses text over ``limit`` characters (default
``MAX_SCAN_CHARS``) with ``ScanLimitError``, so the caller can fail closed;
custom regexes are checked by ``check_custom_regex`` (compile, length, no
empty match, no nested unbounded repeats, no backreferences), because
Python's ``re`` has no timeout.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aipolicy._errors import AipolicyError

MAX_SCAN_CHARS = 8 * 1024 * 1024
MAX_CUSTOM_REGEX_CHARS = 1000
MAX_KEYWORD_CHARS = 200

Findings = dict[str, int]
"""Detector name -> number of matches. Never holds matched text."""


class DlpError(AipolicyError, ValueError):
    """A DLP configuration is invalid: unknown detector, bad keyword or custom regex."""


class ScanLimitError(AipolicyError, ValueError):
    """A text or body is larger than the scanner's limit; the caller decides (fail closed)."""


@dataclass(frozen=True)
class Detector:
    """One named detector: what it finds, and how its false positives are limited."""

    name: str
    finds: str
    limits: str
    default: bool = True


@dataclass(frozen=True)
class _Rule:
    detector: str
    pattern: str
    validate: Callable[[str], bool] | None = None
    split: Callable[[str], list[tuple[int, int]]] | None = None  # the parts of a match that count
    weak: bool = False  # counts only in a marking context (see _keep_weak)
    context: bool = False  # never reported: only evidence for weak rules
    # The regex runs only if one of these strings is in the text (casefolded
    # when ``fold``): a substring test is far cheaper than a regex pass.
    triggers: tuple[str, ...] = ()
    fold: bool = False
    left: str = ""  # characters a match extends over to its left (e-mail local part)


# ---------------------------------------------------------------- validators


_LUHN_DOUBLE = str.maketrans("0123456789", "0246813579")  # 2d, digits of the product summed


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of ISO/IEC 7812-1 on a string of ASCII digits."""
    kept = sum(map(int, digits[-1::-2]))
    doubled = sum(map(int, digits[-2::-2].translate(_LUHN_DOUBLE)))
    return (kept + doubled) % 10 == 0


# Issuer identification number ranges and lengths of the major networks
# (ISO/IEC 7812; network ranges as published by Visa, Mastercard's 2-series
# bulletin, American Express, Discover Global Network IIN ranges, JCB, UnionPay).
_CARD_RANGES: tuple[tuple[int, int, int, tuple[int, ...]], ...] = (
    # (prefix length, low, high, allowed lengths)
    (1, 4, 4, (13, 16, 19)),  # Visa
    (2, 51, 55, (16,)),  # Mastercard
    (4, 2221, 2720, (16,)),  # Mastercard 2-series
    (2, 34, 34, (15,)),  # American Express
    (2, 37, 37, (15,)),
    (4, 6011, 6011, (16, 17, 18, 19)),  # Discover
    (3, 644, 649, (16, 17, 18, 19)),
    (2, 65, 65, (16, 17, 18, 19)),
    (2, 62, 62, (16, 17, 18, 19)),  # UnionPay (and Discover 622126-622925)
    (4, 3528, 3589, (16, 17, 18, 19)),  # JCB
    (2, 36, 36, (14, 15, 16, 17, 18, 19)),  # Diners Club International
    (3, 300, 305, (14, 15, 16, 17, 18, 19)),
    (2, 38, 39, (14, 15, 16, 17, 18, 19)),
)


def _card_valid(match: str) -> bool:
    digits = match.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or not luhn_valid(digits) or len(set(digits)) < 2:
        return False
    return any(
        low <= int(digits[:size]) <= high and len(digits) in lengths for size, low, high, lengths in _CARD_RANGES
    )


_DIGIT_GROUP = re.compile(r"[0-9]+")


def _card_spans(run: str) -> list[tuple[int, int]]:
    """Valid card numbers in a run of digit groups ("4111 1111 1111 1111 0", a list of
    cards): windows of whole groups with 13-19 digits. A window starts at most once per
    group and spans at most 7 groups (3+ digits each), so a long run costs linear time."""
    groups = [(m.start(), m.end()) for m in _DIGIT_GROUP.finditer(run)]
    found: list[tuple[int, int]] = []
    group = 0
    while group < len(groups):
        start = groups[group][0]
        hit = None
        if run[start] in "23456":  # no network's numbers start 0, 1, 7, 8 or 9
            count = 0
            for last in range(group, len(groups)):
                count += groups[last][1] - groups[last][0]
                if count > 19:
                    break
                candidate = run[start : groups[last][1]]
                if count >= 13 and _card_separators_consistent(candidate) and _card_valid(candidate):
                    found.append((start, groups[last][1]))
                    hit = last
                    break
        group = hit + 1 if hit is not None else group + 1
    return found


def _card_separators_consistent(match: str) -> bool:
    # "4111 1111-1111 1111" mixes separators; real cards are written with one kind.
    return not (" " in match and "-" in match)


# SSNs the SSA never issues: area 000, 666 and 900-999, group 00, serial 0000
# (SSA, "Social Security Number Randomization", 2011; POMS RM 10201.060), and
# two numbers famously printed in advertising and voided (SSA, "Social
# Security Cards Issued by Woolworth").
_SSN_VOID = frozenset({"078051120", "219099999"})


def _ssn_valid(match: str) -> bool:
    digits = match.replace("-", "").replace(" ", "")
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return digits not in _SSN_VOID


def _jwt_valid(match: str) -> bool:
    # RFC 7519 section 7.2: the JOSE header must decode to a JSON object.
    header = match.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        value = json.loads(decoded)
    except (binascii.Error, ValueError):
        return False
    return isinstance(value, dict) and "alg" in value


# ---------------------------------------------------------------- built-in rules

_B64 = r"[A-Za-z0-9+/]"
# PEM body: base64, whitespace, encrypted-key headers, and "\n" escapes as
# pasted from a JSON file.
_PEM_BODY = r"[A-Za-z0-9+/=\s\\:,.-]"
_PEM = (
    r"-----BEGIN (?:[A-Z0-9]+ ){0,2}PRIVATE KEY(?: BLOCK)?-----"
    rf"(?:{_PEM_BODY}{{0,20000}}?-----END (?:[A-Z0-9]+ ){{0,2}}PRIVATE KEY(?: BLOCK)?-----|{_PEM_BODY}{{0,20000}})"
)
_CLASSIFICATION = r"(?:TOP SECRET|SECRET|CONFIDENTIAL)"
# Caveats after "//": upper-case tokens such as NOFORN, REL TO USA, GBR, SI-G/TK.
_CAVEATS = r"(?://[A-Z0-9][A-Z0-9-]*(?:(?:, ?| |/)[A-Z0-9][A-Z0-9-]*){0,30}){1,10}"
_LINE_START = r"(?<![^\n])[ \t]{0,8}"
_LINE_END = r"[ \t]*(?=\r?\n|\Z)"

_CLASSIFICATION_TRIGGERS = ("SECRET", "CONFIDENTIAL")

_RULES: tuple[_Rule, ...] = (
    # AWS: access key ids start AKIA (long-term) or ASIA (temporary, STS), 20
    # upper-case alphanumerics (AWS IAM User Guide, "Unique identifiers";
    # gitleaks rule aws-access-token adds ABIA and ACCA).
    _Rule(
        "secret.aws-access-key",
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
        triggers=("AKIA", "ASIA", "ABIA", "ACCA"),
    ),
    # Secret access keys are 40 base64 characters with no prefix, so only an
    # assignment to a recognisable name counts (gitleaks aws-secret-key shape).
    _Rule(
        "secret.aws-secret-key",
        r"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?\s{0,4}[:=]{1,2}>?\s{0,4}[\"']?"
        rf"{_B64}{{40}}(?!{_B64})",
        triggers=("secret_access", "secretaccess", "secret_key", "secretkey"),
        fold=True,
    ),
    # GCP service-account key file: "private_key" holding a PKCS#8 PEM
    # (Google Cloud IAM, "Create and delete service account keys"; gitleaks
    # gcp-service-account-key). Listed before the PEM rule so it wins.
    _Rule("secret.gcp-service-account", r"\"private_key\"\s{0,4}:\s{0,4}\"" + _PEM, triggers=('"private_key"',)),
    # Google API keys: "AIza" and 35 more URL-safe characters (gitleaks gcp-api-key).
    _Rule("secret.gcp-api-key", r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])", triggers=("AIza",)),
    # Azure Storage account keys are 64 bytes, 88 base64 characters, written as
    # AccountKey=... in connection strings (Microsoft Learn, "Configure Azure
    # Storage connection strings"); Service Bus / Event Hubs use SharedAccessKey=.
    _Rule(
        "secret.azure-storage-key",
        rf"\bAccountKey={_B64}{{86}}==|\bSharedAccessKey={_B64}{{43}}=",
        triggers=("AccountKey=", "SharedAccessKey="),
    ),
    # PEM private keys: RSA, EC, DSA, OPENSSH, ENCRYPTED and PKCS#8 (RFC 7468).
    _Rule("secret.private-key", _PEM, triggers=("PRIVATE KEY",)),
    # GitHub: ghp_ (personal), gho_ (OAuth), ghu_/ghs_ (GitHub App), ghr_
    # (refresh), 36 characters after the prefix; github_pat_ fine-grained
    # tokens (GitHub changelog 2021-03-31 "Authentication token format updates").
    _Rule(
        "secret.github-token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{82,255})\b",
        triggers=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    # Slack: xoxb- bot, xoxp- user, xoxa-/xoxr- workspace, xoxe- refresh,
    # xoxs-/xoxo- legacy, xapp- app-level tokens (Slack API "Token types";
    # shapes as in gitleaks slack rules), and incoming-webhook URLs.
    _Rule(
        "secret.slack-token",
        r"\bxox[bpaersoc]-(?:[0-9]{1,2}-)?[0-9]{6,14}-[0-9A-Za-z-]{6,250}"
        r"|\bxapp-[0-9]-[A-Z0-9]{6,}-[0-9]{6,}-[a-z0-9]{20,}"
        r"|https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{20,200}",
        triggers=("xox", "xapp-", "hooks.slack.com"),
    ),
    # Anthropic: sk-ant-api03-, sk-ant-admin01-, OAuth sk-ant-oat01-/ort01-
    # (gitleaks anthropic rules).
    _Rule(
        "secret.anthropic-key", r"\bsk-ant-(?:api|admin|oat|ort)[0-9]{2}-[A-Za-z0-9_-]{32,300}", triggers=("sk-ant-",)
    ),
    # OpenAI: project, service-account and admin keys, and legacy keys with
    # the "T3BlbkFJ" marker (gitleaks openai-api-key); legacy sk- + 48.
    _Rule(
        "secret.openai-key",
        r"\bsk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{40,300}"
        r"|\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}\b|\bsk-[A-Za-z0-9]{48}\b",
        triggers=("sk-",),
    ),
    # Stripe secret (sk_) and restricted (rk_) keys, live or test; publishable
    # pk_ keys are public by design (Stripe API reference, "Authentication").
    _Rule("secret.stripe-key", r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{10,247}\b", triggers=("k_live_", "k_test_")),
    # JWT (RFC 7519): three base64url parts; header and claims are JSON objects,
    # so both start "eyJ" ('{"'); the header must decode to JSON with "alg".
    _Rule(
        "secret.jwt",
        r"\beyJ[A-Za-z0-9_-]{8,4000}\.eyJ[A-Za-z0-9_-]{2,8000}\.[A-Za-z0-9_-]{0,1000}",
        _jwt_valid,
        triggers=("eyJ",),
    ),
    # US SSN written AAA-GG-SSSS or AAA GG SSSS; nine bare digits are too
    # common (ids, phone numbers) to flag. The pattern starts with a digit
    # class (the look-behind comes after it) so the engine skips to digits.
    _Rule(
        "pii.us-ssn",
        r"[0-9](?<![0-9-].)[0-9]{2}(?:-[0-9]{2}-|[ ][0-9]{2}[ ])[0-9]{4}(?![0-9]|-[0-9])",
        _ssn_valid,
    ),
    # Payment cards: 13-19 digits with optional single spaces or dashes, Luhn
    # valid, in a major network's IIN range with a length it issues. The regex
    # takes a whole run of groups of 3+ digits (cards are written 4-4-4-4,
    # 4-6-5 or unbroken); _card_spans finds the cards in it.
    _Rule("pii.payment-card", r"[0-9]{3,}(?:[ -][0-9]{3,})*", split=_card_spans),
    # E-mail address (RFC 5321 lengths); off unless named. The regex starts at
    # "@"; the local part is added by walking left over ``left`` characters.
    _Rule(
        "pii.email",
        r"(?<=[A-Za-z0-9._%+-])@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,63}\b",
        triggers=("@",),
        left="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-",
    ),
    # Classification markings (ISOO Marking Classified National Security
    # Information; DoD Manual 5200.01 Vol. 2): upper case only, and only with
    # marking structure: caveats after "//", or a banner line of its own.
    _Rule("marking.classification", rf"\b{_CLASSIFICATION}{_CAVEATS}", triggers=("SECRET//", "CONFIDENTIAL//")),
    _Rule("marking.classification", rf"{_LINE_START}{_CLASSIFICATION}{_LINE_END}", triggers=_CLASSIFICATION_TRIGGERS),
    _Rule("marking.classification", r"\((?:TS|S|C)//[A-Z0-9][A-Z0-9 ,/-]{0,80}\)", triggers=("(TS//", "(S//", "(C//")),
    _Rule("marking.classification", r"\bNOFORN\b", triggers=("NOFORN",)),
    _Rule(
        "marking.classification",
        r"(?<![^\n])(?:Classified By|Declassify On): ",
        triggers=("Classified By: ", "Declassify On: "),
    ),
    # CUI (32 CFR 2002; DoD Instruction 5200.48) and the legacy FOUO marking.
    _Rule(
        "marking.cui",
        r"\bCUI(?://[A-Z0-9][A-Z0-9 ,/-]{0,80}[A-Z0-9])+|\(CUI//[A-Z0-9][A-Z0-9 ,/-]{0,80}\)",
        triggers=("CUI//",),
    ),
    _Rule(
        "marking.cui",
        rf"{_LINE_START}(?:CUI|FOUO|FOR OFFICIAL USE ONLY){_LINE_END}",
        triggers=("CUI", "FOUO", "FOR OFFICIAL USE ONLY"),
    ),
    _Rule(
        "marking.cui",
        r"//FOUO\b|\((?:U//)?FOUO\)|\bFOR OFFICIAL USE ONLY\b",
        triggers=("FOUO", "FOR OFFICIAL USE ONLY"),
    ),
    # Bare portion marks "(TS) ", "(S) ", "(C) " at the start of a line: weak,
    # kept only in a marking context (see _keep_weak). "(U)" and lettered-list
    # items are context evidence only, looked for only when a weak mark is found.
    _Rule(
        "marking.classification",
        rf"{_LINE_START}\((?:TS|S|C)\)(?=[ \t]+\S)",
        weak=True,
        triggers=("(TS)", "(S)", "(C)"),
    ),
    _Rule("marking.unclassified-portion", rf"{_LINE_START}\(U\)(?=[ \t]+\S)", context=True, triggers=("(U)",)),
    _Rule("marking.lettered-list", rf"{_LINE_START}\((?![SCU]\))[A-Z]\)(?=[ \t]+\S)", context=True),
)

DETECTORS: tuple[Detector, ...] = (
    Detector("secret.aws-access-key", "AWS access key ids (AKIA…, ASIA…)", "prefix, exact length, upper case"),
    Detector(
        "secret.aws-secret-key",
        "AWS secret access keys assigned to a name like aws_secret_access_key",
        "only next to a recognisable name",
    ),
    Detector(
        "secret.gcp-service-account",
        'GCP service-account key files ("private_key": "-----BEGIN PRIVATE KEY…")',
        "JSON field name and PEM structure",
    ),
    Detector("secret.gcp-api-key", "Google API keys (AIza…)", "prefix, exact length"),
    Detector(
        "secret.azure-storage-key",
        "Azure Storage AccountKey= and SharedAccessKey= values",
        "field name and exact base64 length",
    ),
    Detector(
        "secret.private-key", "PEM private keys (RSA, EC, DSA, OPENSSH, PKCS#8, encrypted)", "PEM BEGIN line required"
    ),
    Detector("secret.github-token", "GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)", "prefix, length"),
    Detector(
        "secret.slack-token", "Slack tokens (xoxb-, xoxp-, xoxa-, xoxe-, xapp-) and webhook URLs", "prefix, shape"
    ),
    Detector("secret.anthropic-key", "Anthropic API keys (sk-ant-api03-…)", "prefix, minimum length"),
    Detector(
        "secret.openai-key", "OpenAI API keys (sk-proj-…, sk-svcacct-…, legacy sk-…)", "prefix, length or T3BlbkFJ"
    ),
    Detector("secret.stripe-key", "Stripe secret and restricted keys (sk_live_, rk_live_, …_test_)", "prefix"),
    Detector("secret.jwt", "JSON Web Tokens", "header must decode to JSON with alg"),
    Detector("pii.us-ssn", "US Social Security numbers (AAA-GG-SSSS)", "separators required; SSA invalid ranges out"),
    Detector("pii.payment-card", "payment card numbers (13-19 digits)", "Luhn, network IIN range and length"),
    Detector("pii.email", "e-mail addresses", "off unless named", default=False),
    Detector(
        "marking.classification",
        "TOP SECRET / SECRET / CONFIDENTIAL markings: //caveats, banner lines, (TS//NF) portions, NOFORN",
        "upper case and marking structure; bare (S)/(C) only with other markings",
    ),
    Detector(
        "marking.cui", "CUI markings (CUI//SP-…), FOUO, FOR OFFICIAL USE ONLY", "upper case and marking structure"
    ),
)

_BY_NAME = {d.name: d for d in DETECTORS}
GROUPS = ("secret", "pii", "marking")

# JSON fields and form fields whose whole value is a secret of a given kind,
# when the value has the right shape; text assignments are matched by _RULES.
_KEYED: tuple[tuple[str, re.Pattern[str], re.Pattern[str]], ...] = (
    (
        "secret.aws-secret-key",
        re.compile(r"(?i)aws_?secret_?(?:access_?)?key|secret_?access_?key"),
        re.compile(rf"{_B64}{{40}}"),
    ),
    ("secret.gcp-service-account", re.compile(r"private_key"), re.compile(r"\s*-----BEGIN PRIVATE KEY-----[\s\S]*")),
    ("secret.azure-storage-key", re.compile(r"(?i)account_?key"), re.compile(rf"{_B64}{{86}}==")),
)


# ---------------------------------------------------------------- custom regexes

_parser: Any = importlib.import_module("re._parser")
_constants: Any = importlib.import_module("re._constants")


def check_custom_regex(pattern: str) -> list[str]:
    """Problems with a custom DLP regex, as messages; an empty list means usable.

    Python's ``re`` backtracks and has no timeout, so patterns that can take
    exponential time are refused: a repeat (unbounded or over 100) nested in
    another, like ``(a+)+`` or ``(\\d+\\.)+`` (write ``(\\d++\\.)+``: a
    possessive repeat never backtracks), an alternation under a repeat whose
    branches can start alike, like ``(a|ab)+``, and backreferences. Patterns
    that match the empty string are refused too. The rules are conservative:
    they refuse some safe patterns, never a known exponential shape."""
    if not isinstance(pattern, str) or not pattern:
        return ["must be a non-empty string"]
    if len(pattern) > MAX_CUSTOM_REGEX_CHARS:
        return [f"is {len(pattern)} characters long; at most {MAX_CUSTOM_REGEX_CHARS} are allowed"]
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        return [f"does not compile: {error}"]
    except (OverflowError, RecursionError, ValueError) as error:
        return [f"does not compile: {error}"]
    problems: list[str] = []
    if compiled.search("") is not None or any(m.end() == m.start() for m in compiled.finditer(_ZERO_WIDTH_PROBE)):
        problems.append("matches the empty string; make it match at least one character")
    try:
        problems.extend(_risky(_parser.parse(pattern), pattern, inside_repeat=False))
    except RecursionError:
        problems.append("is nested too deeply")
    return problems


_ZERO_WIDTH_PROBE = "aZ0 _.-@/\n"


def _risky(parsed: Any, pattern: str, inside_repeat: bool) -> list[str]:
    problems: list[str] = []
    for op, av in parsed:
        if op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT):
            low, high, sub = av
            unbounded = high == _constants.MAXREPEAT or high > 100
            if unbounded and inside_repeat:
                return [
                    "nests a repeat inside another repeat (like (a+)+), which can take exponential time; "
                    "make the inner repeat possessive (a++) or write it without the nesting"
                ]
            problems.extend(_risky(sub, pattern, inside_repeat or unbounded))
        elif op in (_constants.GROUPREF, _constants.GROUPREF_EXISTS):
            return ["uses a backreference, which is not allowed in DLP patterns"]
        elif op == _constants.SUBPATTERN:
            problems.extend(_risky(av[-1], pattern, inside_repeat))
        elif op == _constants.BRANCH:
            if inside_repeat and not _distinct_first_literals(av[1]):
                return [
                    "repeats an alternation whose branches can start alike (like (a|ab)+), which can take "
                    "exponential time; use a character class or branches that start with different characters"
                ]
            for branch in av[1]:
                problems.extend(_risky(branch, pattern, inside_repeat))
        elif op in (_constants.ASSERT, _constants.ASSERT_NOT):
            problems.extend(_risky(av[1], pattern, inside_repeat))
        elif op == _constants.ATOMIC_GROUP:
            problems.extend(_risky(av, pattern, inside_repeat))
        elif op == _constants.POSSESSIVE_REPEAT:
            # never gives back what it matched, so nesting it is safe
            problems.extend(_risky(av[2], pattern, inside_repeat))
        if problems:
            return problems[:1]
    return problems


def _distinct_first_literals(branches: Any) -> bool:
    firsts = []
    for branch in branches:
        items = list(branch)
        if not items or items[0][0] != _constants.LITERAL:
            return False
        firsts.append(items[0][1])
    return len(set(firsts)) == len(firsts)


def check_keyword(keyword: str) -> list[str]:
    """Problems with a custom keyword, as messages."""
    if not isinstance(keyword, str) or not keyword.strip():
        return ["must be a non-empty string"]
    if len(keyword) > MAX_KEYWORD_CHARS:
        return [f"is {len(keyword)} characters long; at most {MAX_KEYWORD_CHARS} are allowed"]
    return []


_CUSTOM_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def _check_custom_name(name: str) -> list[str]:
    if not isinstance(name, str) or not _CUSTOM_NAME.fullmatch(name):
        return [
            f"custom detector name {name!r} must be lower-case letters, digits, '-' or '_' (up to 63), "
            "e.g. 'project-x'; it is reported as custom.<name>"
        ]
    return []


# ---------------------------------------------------------------- scanner


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    detector: str
    weak: bool = False
    context: bool = False
    counted: bool = True  # False: overlaps a match found first; only redacted


@dataclass(frozen=True)
class _Custom:
    name: str
    regex: re.Pattern[str]
    triggers: tuple[str, ...] = ()  # casefolded


class Scanner:
    """Scans and redacts text, JSON documents and request bodies for a fixed set of detectors."""

    def __init__(self, rules: Sequence[_Rule], custom: Sequence[_Custom], limit: int) -> None:
        self._custom = tuple(custom)
        self.limit = limit
        self.names = frozenset(r.detector for r in rules if not r.context) | frozenset(c.name for c in custom)
        self._keyed = tuple(k for k in _KEYED if k[0] in self.names)
        compiled = [(rule, re.compile(rule.pattern)) for rule in rules]
        self._main = tuple((i, rule, regex) for i, (rule, regex) in enumerate(compiled) if not rule.context)
        self._context = tuple((i, rule, regex) for i, (rule, regex) in enumerate(compiled) if rule.context)
        self._fold = any(rule.fold for rule in rules)

    def __repr__(self) -> str:
        return f"Scanner(names={sorted(self.names)!r})"

    # -- text

    def scan(self, text: str) -> Findings:
        """Count what each detector finds in ``text``."""
        return _count(self._spans(text))

    def redact_text(self, text: str) -> tuple[str, Findings]:
        """``text`` with every match replaced by ``[REDACTED:<detector>]``, and the findings.

        A replacement can expose a match that was not one before ("9CUI//X" has no word
        boundary before CUI; "]CUI//X" has), so the redacted text is scanned again, up to
        ``_REDACTION_ROUNDS`` times, and what is found then is redacted and counted too."""
        findings: Findings = {}
        for _ in range(_REDACTION_ROUNDS):
            spans = self._spans(text)
            if not spans:
                break
            text = _replace(text, spans)
            _merge(findings, _count(spans))
        return text, findings

    def _spans(self, text: str) -> list[_Span]:
        if len(text) > self.limit:
            raise ScanLimitError(f"text of {len(text)} characters is over the DLP scan limit of {self.limit}")
        return self._find(text)

    def _find(self, text: str) -> list[_Span]:
        folded = text.casefold() if self._fold or self._custom else text
        spans = _leftmost(self._rule_spans(self._main, text, folded))
        if any(s.weak and s.counted for s in spans):
            spans = _keep_weak(spans + [span for _, span in self._rule_spans(self._context, text, folded)])
        for custom in self._custom:
            if not custom.triggers or any(t in folded for t in custom.triggers):
                spans.extend(
                    _Span(m.start(), m.end(), custom.name) for m in custom.regex.finditer(text) if m.end() > m.start()
                )
        return spans

    @staticmethod
    def _rule_spans(
        rules: Iterable[tuple[int, _Rule, re.Pattern[str]]], text: str, folded: str
    ) -> Iterable[tuple[int, _Span]]:
        """(rule index, span) for every accepted match of each rule whose trigger is in the text."""
        for index, rule, regex in rules:
            if rule.triggers and not any(t in (folded if rule.fold else text) for t in rule.triggers):
                continue
            position = 0
            while (match := regex.search(text, position)) is not None:
                found = _apply(rule, text, match.start(), match.end(), position)
                yield from ((index, span) for span in found)
                if rule.split is not None:
                    # the split looked at every window of the run: starting again inside it
                    # would only repeat that work (quadratic on "1 1 1 1 ...")
                    position = match.end()
                else:
                    position = max(found[-1].end if found else 0, match.start() + 1)

    # -- JSON

    def redact_json(self, document: Any) -> tuple[Any, Findings]:
        """A parsed JSON document with matches redacted inside string values (keys untouched), and the
        findings. The result is a copy when anything was redacted, else ``document`` itself."""
        if not self.scan_json(document):
            return document, {}
        findings: Findings = {}
        root: list[Any] = [None]
        stack: list[tuple[Any, Any, Any]] = [(document, root, 0)]
        while stack:
            value, parent, key = stack.pop()
            if isinstance(value, str):
                parent[key] = self._redact_value(key if isinstance(key, str) else None, value, findings)
            elif isinstance(value, dict):
                copy: dict[Any, Any] = dict.fromkeys(value)
                parent[key] = copy
                stack.extend((item, copy, name) for name, item in value.items())
            elif isinstance(value, list):
                items: list[Any] = [None] * len(value)
                parent[key] = items
                stack.extend((item, items, position) for position, item in enumerate(value))
            else:
                parent[key] = value
        return root[0], findings

    def scan_json(self, document: Any) -> Findings:
        """Findings in a parsed JSON document: its string values and keys, scanned as one text."""
        findings: Findings = {}
        strings: list[str] = []
        stack: list[Any] = [document]
        while stack:
            value = stack.pop()
            if isinstance(value, str):
                strings.append(value)
            elif isinstance(value, dict):
                for name, item in value.items():
                    strings.append(str(name))
                    detector = self._keyed_detector(name, item) if isinstance(item, str) else None
                    if detector is not None:
                        _add(findings, detector)
                    else:
                        stack.append(item)
            elif isinstance(value, list):
                stack.extend(value)
        # One pass over all strings: the separator matches no detector's
        # characters, so nothing is found across two strings.
        _merge(findings, _count(self._find(_SEPARATOR.join(strings))))
        return findings

    def _keyed_detector(self, key: str | None, value: str) -> str | None:
        if key is None:
            return None
        for detector, key_pattern, value_pattern in self._keyed:
            if key_pattern.fullmatch(key) and value_pattern.fullmatch(value):
                return detector
        return None

    def _redact_value(self, key: str | None, value: str, findings: Findings) -> str:
        detector = self._keyed_detector(key, value)
        if detector is not None:
            _add(findings, detector)
            return f"[REDACTED:{detector}]"
        redacted, found = self.redact_text(value)
        _merge(findings, found)
        return redacted

    # -- bodies

    def scan_body(self, data: bytes, content_type: str = "") -> Findings:
        """Findings in a (decoded) request body: JSON walked, forms by field, anything else as text."""
        self._check_size(data)
        kind = _body_kind(data, content_type)
        if kind == "json":
            document = _load_json(data)
            if document is not _NOT_JSON:
                return self.scan_json(document)
        elif kind == "form":
            findings: Findings = {}
            for name, value in _parse_form(data):
                _merge(findings, self.scan(name))
                detector = self._keyed_detector(name, value)
                if detector is not None:
                    _add(findings, detector)
                else:
                    _merge(findings, self.scan(value))
            return findings
        return self.scan(data.decode("utf-8", "surrogateescape"))

    def redact_body(self, data: bytes, content_type: str = "") -> tuple[bytes, Findings]:
        """A request body with matches redacted, still valid JSON or form data, and the findings."""
        self._check_size(data)
        kind = _body_kind(data, content_type)
        if kind == "json":
            document = _load_json(data)
            if document is not _NOT_JSON:
                redacted, findings = self.redact_json(document)
                if not findings:
                    return data, findings
                return _dump_json(redacted), findings
        elif kind == "form":
            findings = {}
            fields = [(name, self._redact_value(name, value, findings)) for name, value in _parse_form(data)]
            if not findings:
                return data, findings
            return urllib.parse.urlencode(fields, errors="surrogateescape").encode("ascii"), findings
        text, findings = self.redact_text(data.decode("utf-8", "surrogateescape"))
        if not findings:
            return data, findings
        return text.encode("utf-8", "surrogateescape"), findings

    def _check_size(self, data: bytes) -> None:
        if len(data) > self.limit:
            raise ScanLimitError(f"body of {len(data)} bytes is over the DLP scan limit of {self.limit}")


_REDACTION_ROUNDS = 3


def _replace(text: str, spans: list[_Span]) -> str:
    parts: list[str] = []
    position = 0
    for span in _non_overlapping(spans):
        parts.append(text[position : span.start])
        parts.append(f"[REDACTED:{span.detector}]")
        position = span.end
    parts.append(text[position:])
    return "".join(parts)


def _apply(rule: _Rule, text: str, start: int, end: int, floor: int) -> list[_Span]:
    if rule.left:  # not back into this rule's previous match, which ends at or before floor
        limit = max(floor, start - 64)
        while start > limit and text[start - 1] in rule.left:
            start -= 1
    if rule.split is not None:
        return [_Span(start + a, start + b, rule.detector) for a, b in rule.split(text[start:end])]
    if rule.validate is not None and not rule.validate(text[start:end]):
        return []
    return [_Span(start, end, rule.detector, rule.weak, rule.context)]


def _leftmost(found: Iterable[tuple[int, _Span]]) -> list[_Span]:
    """All spans; of overlapping ones only the leftmost (then the rule listed first) is
    counted. The others stay for redaction, so no part of any match survives it."""
    spans: list[_Span] = []
    end = 0
    for _, span in sorted(found, key=lambda pair: (pair[1].start, pair[0])):
        if span.start >= end:
            spans.append(span)
            end = span.end
        else:
            spans.append(replace(span, counted=False))
    return spans


def _keep_weak(spans: list[_Span]) -> list[_Span]:
    """Bare (TS)/(S)/(C) portion marks count only with a real marking, or with two or
    more line-start portion marks including (U), and never in a lettered list."""
    strong = any(s.detector.startswith("marking.") and s.counted and not (s.weak or s.context) for s in spans)
    weak = sum(1 for s in spans if s.weak and s.counted)
    unclassified = sum(1 for s in spans if s.detector == "marking.unclassified-portion")
    listed = any(s.detector == "marking.lettered-list" for s in spans)
    keep = strong or (not listed and weak and weak + unclassified >= 2)
    return [s for s in spans if not s.context and (keep or not s.weak)]


def _count(spans: Iterable[_Span]) -> Findings:
    findings: Findings = {}
    for span in spans:
        if span.counted:
            _add(findings, span.detector)
    return findings


def _add(findings: Findings, detector: str, count: int = 1) -> None:
    findings[detector] = findings.get(detector, 0) + count


def _merge(findings: Findings, more: Mapping[str, int]) -> None:
    for detector, count in more.items():
        _add(findings, detector, count)


def _non_overlapping(spans: list[_Span]) -> list[_Span]:
    """Spans in order, an overlapping span merged into the one before it."""
    ordered = sorted(spans, key=lambda s: (s.start, -s.end))
    kept: list[_Span] = []
    for span in ordered:
        if kept and span.start < kept[-1].end:
            if span.end > kept[-1].end:
                last = kept[-1]
                kept[-1] = _Span(last.start, span.end, last.detector)
            continue
        kept.append(span)
    return kept


_NOT_JSON = object()
_SEPARATOR = "\n\x00\n"


def _body_kind(data: bytes, content_type: str) -> str:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        return "form"
    if "json" in media or (not media and data.lstrip()[:1] in (b"{", b"[")):
        return "json"
    return "text"


def _load_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _dump_json(document: Any) -> bytes:
    try:
        return json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a "\\ud800" escape
        return json.dumps(document).encode("ascii")


def _parse_form(data: bytes) -> list[tuple[str, str]]:
    text = data.decode("utf-8", "surrogateescape")
    return urllib.parse.parse_qsl(text, keep_blank_values=True, errors="surrogateescape", max_num_fields=None)


# ---------------------------------------------------------------- building


def detector_names() -> tuple[str, ...]:
    """Names of the built-in detectors, in scanning order."""
    return tuple(d.name for d in DETECTORS)


def resolve_names(names: Iterable[str]) -> list[str]:
    """Built-in detector names for ``names``: exact names, or a group (secret, pii, marking)
    meaning its default detectors. ``custom.*`` names are skipped. Raises DlpError."""
    resolved: list[str] = []
    for name in names:
        if name in _BY_NAME:
            found = [name]
        elif name in GROUPS:
            found = [d.name for d in DETECTORS if d.name.startswith(name + ".") and d.default]
        elif isinstance(name, str) and name.startswith("custom."):
            continue
        else:
            raise DlpError(
                f"unknown DLP detector {name!r}; valid: {', '.join(GROUPS)}, {', '.join(_BY_NAME)}, or custom.<name>"
            )
        resolved.extend(n for n in found if n not in resolved)
    return resolved


def build_detectors(
    names: Iterable[str],
    keywords: Mapping[str, Iterable[str]] | None = None,
    regexes: Mapping[str, str] | None = None,
    *,
    limit: int = MAX_SCAN_CHARS,
) -> Scanner:
    """A Scanner for the named built-in detectors plus every custom keyword set and regex.

    ``keywords`` maps a name to words found case-insensitively as whole words;
    ``regexes`` maps a name to a pattern (see ``check_custom_regex``). Each is
    reported as ``custom.<name>``. A ``custom.<name>`` in ``names`` must be
    defined in one of them. Raises DlpError listing every problem."""
    names = list(names)
    keywords = dict(keywords or {})
    regexes = dict(regexes or {})
    problems: list[str] = []
    try:
        wanted = set(resolve_names(names))
    except DlpError as error:
        problems.append(str(error))
        wanted = set()
    defined = {f"custom.{n}" for n in [*keywords, *regexes] if isinstance(n, str)}
    for name in names:
        if isinstance(name, str) and name.startswith("custom.") and name not in defined:
            problems.append(f"DLP detector {name!r} is not defined under keywords or regexes")
    custom: list[_Custom] = []
    for name, words in keywords.items():
        problems.extend(_check_custom_name(name))
        if isinstance(words, str):
            word_list = [words]
        elif isinstance(words, list | tuple | set | frozenset):
            word_list = list(words)
        else:
            problems.append(f"custom keywords {name!r} must be a list of strings")
            continue
        if not word_list:
            problems.append(f"custom keywords {name!r} has no keywords")
        bad = [(word, message) for word in word_list for message in check_keyword(word)]
        problems.extend(f"custom keyword {word!r} in {name!r} {message}" for word, message in bad)
        if not bad and word_list:
            triggers = tuple(sorted({w.strip().casefold() for w in word_list}))
            custom.append(_Custom(f"custom.{name}", _keyword_regex(word_list), triggers))
    for name, pattern in regexes.items():
        problems.extend(_check_custom_name(name))
        messages = check_custom_regex(pattern)
        problems.extend(f"custom regex {name!r} ({pattern!r}) {message}" for message in messages)
        if not messages:
            custom.append(_Custom(f"custom.{name}", re.compile(pattern)))
    if problems:
        raise DlpError("; ".join(problems))
    rules = [r for r in _RULES if r.detector in wanted or (r.context and r.detector.startswith("marking."))]
    if not any(r.detector.startswith("marking.") and not r.context for r in rules):
        rules = [r for r in rules if not r.context]
    return Scanner(rules, custom, limit)


def _keyword_regex(words: Sequence[str]) -> re.Pattern[str]:
    ordered = sorted({w.strip() for w in words}, key=lambda w: (-len(w), w))
    alternatives = "|".join(re.escape(w) for w in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


__all__ = [
    "DETECTORS",
    "MAX_SCAN_CHARS",
    "Detector",
    "DlpError",
    "Findings",
    "ScanLimitError",
    "Scanner",
    "build_detectors",
    "check_custom_regex",
    "check_keyword",
    "detector_names",
    "luhn_valid",
    "resolve_names",
]
