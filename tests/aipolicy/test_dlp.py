"""DLP detectors: what each finds, what it must not find, redaction, bodies, custom patterns."""

from __future__ import annotations

import base64
import json
import re
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aipolicy import DETECTORS, DlpError, ScanLimitError, build_detectors, check_custom_regex, detector_names
from aipolicy.dlp._detectors import luhn_valid

BOUNDED = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

ALL = build_detectors(["secret", "pii", "marking", "pii.email"])


def b64url(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


JWT = (
    b64url({"alg": "HS256", "typ": "JWT"}) + "." + b64url({"sub": "1234567890", "name": "Jo"}) + ".c2lnbmF0dXJlLXBhcnQ"
)
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCy1yG25m+cplha\n8h1Jmd9m15gGabp2Uk5B/lgHglYiE+TRH7Gv\n"
AZURE_KEY = "Zm9vYmFy" * 10 + "Zm9vYmFy"[:6] + "=="  # 88 base64 characters
PEM_PKCS8 = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}-----END PRIVATE KEY-----"
GCP_FILE = json.dumps({"type": "service_account", "private_key_id": "abc", "private_key": PEM_PKCS8 + "\n"})

# (detector, text containing exactly one finding of it)
TRUE_POSITIVES = [
    ("secret.aws-access-key", "key AKIAIOSFODNN7EXAMPLE here"),
    ("secret.aws-access-key", "temporary ASIAY34FZKBOKMUTVV7A,"),
    ("secret.aws-secret-key", f"aws_secret_access_key = {AWS_SECRET}"),
    ("secret.aws-secret-key", f'"AWS_SECRET_ACCESS_KEY": "{AWS_SECRET}"'),
    ("secret.aws-secret-key", f"export AWS_SECRET_KEY='{AWS_SECRET}'"),
    ("secret.gcp-service-account", GCP_FILE),
    ("secret.gcp-api-key", "key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY&x=1"),
    ("secret.azure-storage-key", f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={AZURE_KEY};"),
    ("secret.azure-storage-key", "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey=" + "A" * 43 + "="),
    ("secret.private-key", PEM_PKCS8),
    ("secret.private-key", f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----"),
    ("secret.private-key", f"-----BEGIN EC PRIVATE KEY-----\n{PEM_BODY}-----END EC PRIVATE KEY-----"),
    ("secret.private-key", f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}-----END OPENSSH PRIVATE KEY-----"),
    ("secret.private-key", f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{PEM_BODY}-----END ENCRYPTED PRIVATE KEY-----"),
    ("secret.private-key", f"truncated: -----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}"),
    (
        "secret.private-key",
        "escaped: -----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEF\\n-----END PRIVATE KEY-----\\n",
    ),
    ("secret.github-token", "token ghp_" + "aB3" * 12),
    ("secret.github-token", "gho_" + "Z9" * 18),
    ("secret.github-token", "ghs_" + "x1" * 18 + " ci"),
    ("secret.github-token", "github_pat_" + "A1b2C3d4E5f6G7h8I9j0K1" + "_" + "q" * 59),
    ("secret.slack-token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    ("secret.slack-token", "xoxp-41684372915-1320496754-45609968301-e708ba56e1517a99f6b5fb07349476ef"),
    ("secret.slack-token", "xapp-1-A052FGTS2DL-5171572773297-610b6a11f4b7eb819e87b767d80e6575"),
    ("secret.slack-token", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
    ("secret.anthropic-key", "sk-ant-api03-" + "abcDEF123_-" * 8 + "xyzAA"),
    ("secret.openai-key", "OPENAI_API_KEY=sk-proj-" + "Ab1_" * 30),
    ("secret.openai-key", "sk-" + "a1B2c3D4e5F6g7H8i9J0" + "T3BlbkFJ" + "k1L2m3N4o5P6q7R8s9T0"),
    ("secret.openai-key", "sk-" + "Ab12" * 12),
    ("secret.stripe-key", "stripe: sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"),
    ("secret.stripe-key", "rk_test_" + "51H8x" * 5),
    ("secret.jwt", f"Authorization: Bearer {JWT}"),
    ("pii.us-ssn", "SSN 123-45-6789."),
    ("pii.us-ssn", "ssn: 234 56 7890"),
    ("pii.us-ssn", "123-45-6789 1234"),
    ("pii.payment-card", "card 4111 1111 1111 1111 exp"),
    ("pii.payment-card", "4111-1111-1111-1111"),
    ("pii.payment-card", "5555555555554444"),
    ("pii.payment-card", "amex 3782 822463 10005"),
    ("pii.payment-card", "2223000048400011"),
    ("pii.payment-card", "6011111111111117"),
    ("pii.payment-card", "4111 1111 1111 1111 0"),  # a digit added after does not hide it
    ("pii.email", "mail bob.smith+tag@example.co.uk now"),
    ("marking.classification", "TOP SECRET//NOFORN"),
    ("marking.classification", "TOP SECRET//SI-G/TK//NOFORN\ntext"),
    ("marking.classification", "SECRET//REL TO USA, GBR, FVEY"),
    ("marking.classification", "CONFIDENTIAL//ORCON"),
    ("marking.classification", "intro\n  SECRET  \nbody"),
    ("marking.classification", "(TS//NF) The plan."),
    ("marking.classification", "(S//REL TO USA, FVEY) The plan."),
    ("marking.classification", "(C//NF) The plan."),
    ("marking.classification", "shared under NOFORN rules"),
    ("marking.classification", "(S) First paragraph.\n(U) Second paragraph.\n"),
    ("marking.classification", "Classified By: J. Smith, Director"),
    ("marking.cui", "CUI//SP-PRVCY"),
    ("marking.cui", "CUI//SP-EXPT/SP-CTI"),
    ("marking.cui", "header\nCUI\nbody"),
    ("marking.cui", "(CUI//SP-PRVCY) Names and addresses."),
    ("marking.cui", "UNCLASSIFIED//FOUO"),
    ("marking.cui", "(U//FOUO) Travel plans."),
    ("marking.cui", "FOR OFFICIAL USE ONLY"),
]

# Text that looks close to a detector's finding but must not be one, with every detector on.
FALSE_POSITIVES = [
    ("secret.aws-access-key", "AKIAIOSFODNN7EXAMPL is one short"),
    ("secret.aws-access-key", "akiaiosfodnn7example in lower case"),
    ("secret.aws-access-key", "XAKIAIOSFODNN7EXAMPLEX inside a word"),
    ("secret.aws-secret-key", AWS_SECRET + " with no name next to it"),
    ("secret.aws-secret-key", "aws_secret_access_key = tooShort"),
    ("secret.gcp-service-account", '{"type": "service_account", "private_key_id": "abc123", "private_key": ""}'),
    ("secret.gcp-api-key", "AIzaShort"),
    ("secret.azure-storage-key", "AccountKey=short=="),
    ("secret.private-key", "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----"),
    ("secret.private-key", "-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END CERTIFICATE-----"),
    ("secret.private-key", "a private key starts with BEGIN PRIVATE KEY"),
    ("secret.github-token", "ghp_short"),
    ("secret.github-token", "see github_pat_ docs"),
    ("secret.slack-token", "xoxb-xxxxxxxxx-xxxxxxxxxx-xxxx"),
    ("secret.slack-token", "xoxo hugs and kisses"),
    ("secret.anthropic-key", "sk-ant-api03-short"),
    ("secret.openai-key", "sk-learn is a library; task-1234; disk-abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv"),
    ("secret.openai-key", "sk-proj-short"),
    ("secret.stripe-key", "pk_live_4eC39HqLyjWDarjtT1zdp7dc is publishable"),
    ("secret.stripe-key", "sk_live_short"),
    ("secret.jwt", b64url({"typ": "JWT"}) + "." + b64url({"sub": "1"}) + ".c2ln"),  # no alg in the header
    ("secret.jwt", "eyJnotbase64!!.eyJx.y"),
    ("pii.us-ssn", "666-12-3456"),
    ("pii.us-ssn", "000-12-3456"),
    ("pii.us-ssn", "912-45-6789"),
    ("pii.us-ssn", "123-00-4567"),
    ("pii.us-ssn", "123-45-0000"),
    ("pii.us-ssn", "078-05-1120"),
    ("pii.us-ssn", "123456789 has no separators"),
    ("pii.us-ssn", "call 555-123-4567"),
    ("pii.us-ssn", "on 2024-01-15"),
    ("pii.us-ssn", "123-45-67890"),
    ("pii.payment-card", "4111 1111 1111 1112"),  # Luhn-invalid
    ("pii.payment-card", "0000 0000 0000 0000"),
    ("pii.payment-card", "1234 5678 9012 3452"),  # Luhn-valid, no network starts with 1
    ("pii.payment-card", "ts 1700000000000"),
    ("pii.payment-card", "4111 1111-1111 1111"),  # mixed separators
    ("pii.payment-card", "41111111111111111111111111111111 hex-like id"),
    ("pii.email", "user@localhost"),
    ("pii.email", "follow @handle"),
    ("marking.classification", "keep it secret, keep it safe"),
    ("marking.classification", "Top Secret plans for the party"),
    ("marking.classification", "THE SECRET OF NIMH is a film"),
    ("marking.classification", "the secret//sauce"),
    ("marking.classification", "API_SECRET//config"),
    ("marking.classification", "Secret\n"),
    ("marking.classification", "(C) 2024 Acme Corp. All rights reserved."),
    ("marking.classification", "TypeScript (TS) is typed"),
    ("marking.classification", "sign with (S/MIME)"),
    ("marking.classification", "(A) apples\n(B) bananas\n(C) cherries\n(S) stuff\n"),
    ("marking.classification", "(S) on its own line once\n"),
    ("marking.classification", "confidential\nCONFIDENTIAL information in prose"),
    ("marking.cui", "cui bono?"),
    ("marking.cui", "Controlled Unclassified Information (CUI) is a programme"),
    ("marking.cui", "The CUI programme"),
    ("marking.cui", "for official use only"),
    ("marking.cui", "FOUO is an old marking"),
]


@pytest.mark.parametrize(
    ("detector", "text"), TRUE_POSITIVES, ids=[f"{d}-{i}" for i, (d, _) in enumerate(TRUE_POSITIVES)]
)
def test_true_positive(detector: str, text: str) -> None:
    assert ALL.scan(text) == {detector: 1}


@pytest.mark.parametrize(
    ("detector", "text"), FALSE_POSITIVES, ids=[f"{d}-{i}" for i, (d, _) in enumerate(FALSE_POSITIVES)]
)
def test_not_flagged(detector: str, text: str) -> None:
    assert detector not in ALL.scan(text)


@pytest.mark.parametrize(
    ("detector", "text"), TRUE_POSITIVES, ids=[f"{d}-{i}" for i, (d, _) in enumerate(TRUE_POSITIVES)]
)
def test_each_detector_alone_finds_its_own(detector: str, text: str) -> None:
    assert build_detectors([detector]).scan(text) == {detector: 1}


def test_every_detector_has_true_and_false_cases() -> None:
    names = set(detector_names())
    assert {d for d, _ in TRUE_POSITIVES} == names
    assert {d for d, _ in FALSE_POSITIVES} == names


@pytest.mark.parametrize(
    ("detector", "text"), TRUE_POSITIVES, ids=[f"{d}-{i}" for i, (d, _) in enumerate(TRUE_POSITIVES)]
)
def test_redaction_replaces_the_match_and_leaves_nothing_to_find(detector: str, text: str) -> None:
    redacted, findings = ALL.redact_text(text)
    assert findings == {detector: 1}
    assert f"[REDACTED:{detector}]" in redacted
    assert ALL.scan(redacted) == {}


def test_findings_hold_names_and_counts_only() -> None:
    text = " ".join(t for _, t in TRUE_POSITIVES)
    findings = ALL.scan(text)
    assert set(findings) <= set(detector_names())
    assert all(type(count) is int and count > 0 for count in findings.values())
    assert sum(findings.values()) >= len({d for d, _ in TRUE_POSITIVES})
    dumped = json.dumps(findings)
    for secret in ("AKIAIOSFODNN7EXAMPLE", "123-45-6789", "4111", AWS_SECRET, "NOFORN", "ghp_"):
        assert secret not in dumped


def test_several_findings_are_counted() -> None:
    text = "a 123-45-6789 b 234-56-7890 c AKIAIOSFODNN7EXAMPLE 4111111111111111, 5555555555554444"
    assert ALL.scan(text) == {"pii.us-ssn": 2, "secret.aws-access-key": 1, "pii.payment-card": 2}


def test_email_is_off_unless_named() -> None:
    assert build_detectors(["pii"]).scan("bob@example.com") == {}
    assert build_detectors(["pii", "pii.email"]).scan("bob@example.com") == {"pii.email": 1}


def test_groups_expand_to_their_detectors() -> None:
    assert build_detectors(["secret"]).names == {n for n in detector_names() if n.startswith("secret.")}
    assert build_detectors(["marking"]).names == {"marking.classification", "marking.cui"}


def test_only_the_named_detectors_run() -> None:
    scanner = build_detectors(["pii.us-ssn"])
    assert scanner.scan("AKIAIOSFODNN7EXAMPLE 123-45-6789 TOP SECRET//NOFORN") == {"pii.us-ssn": 1}


def test_weak_portion_marks_count_next_to_a_real_marking() -> None:
    text = "SECRET//NOFORN\n(S) The plan.\n(C) The cost.\n"
    assert ALL.scan(text) == {"marking.classification": 3}


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_detectors_table_is_complete() -> None:
    assert [d.name for d in DETECTORS] == list(detector_names())
    assert all(d.finds and d.limits for d in DETECTORS)


# ---------------------------------------------------------------- custom


def test_custom_keywords_are_case_insensitive_and_word_bounded() -> None:
    scanner = build_detectors([], keywords={"falcon": ["Project Falcon", "FLN-7"]})
    assert scanner.scan("project falcon and PROJECT FALCON and fln-7") == {"custom.falcon": 3}
    assert scanner.scan("projectfalcon, Project Falcons, xFLN-7") == {}
    assert scanner.redact_text("about Project Falcon.")[0] == "about [REDACTED:custom.falcon]."


def test_custom_regex() -> None:
    scanner = build_detectors(["pii.us-ssn"], regexes={"account": r"ACCT-\d{6}"})
    assert scanner.scan("ACCT-123456 and 123-45-6789") == {"custom.account": 1, "pii.us-ssn": 1}


def test_custom_hit_inside_a_builtin_match_still_counts() -> None:
    scanner = build_detectors(["pii.email"], keywords={"acme": ["acme"]})
    assert scanner.scan("write to bob@acme.com") == {"pii.email": 1, "custom.acme": 1}
    assert scanner.redact_text("write to bob@acme.com")[0] == "write to [REDACTED:pii.email]"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("[", r"does not compile: unterminated character set"),
        ("a*", r"matches the empty string"),
        ("x?|y", r"matches the empty string"),
        ("(a+)+b", r"nests a repeat inside another repeat"),
        (r"(\d+\.)+", r"nests a repeat inside another repeat"),
        ("(a|ab)+c", r"alternation whose branches can start alike"),
        (r"(a)\1", r"backreference"),
        ("a" * 1001, r"at most 1000"),
        ("", r"non-empty"),
    ],
)
def test_custom_regex_problems(pattern: str, message: str) -> None:
    problems = check_custom_regex(pattern)
    assert len(problems) == 1
    assert re.search(message, problems[0])


@pytest.mark.parametrize(
    "pattern", [r"ACCT-\d{6}", r"(?:foo|bar)+x", r"(\d++\.)+\d", r"[A-Z]{3}-\d{4}", r"(?i)secret\s+plan"]
)
def test_custom_regex_accepted(pattern: str) -> None:
    assert check_custom_regex(pattern) == []


def test_build_reports_every_problem_with_names() -> None:
    with pytest.raises(DlpError) as raised:
        build_detectors(
            ["secret.nope", "custom.missing"],
            keywords={"Bad Name": ["x"], "empty": [], "number": 7, "long": ["x" * 201]},  # type: ignore[dict-item]
            regexes={"loop": "(a+)+", "broken": "("},
        )
    message = str(raised.value)
    assert "unknown DLP detector 'secret.nope'; valid: secret, pii, marking, secret.aws-access-key" in message
    assert "DLP detector 'custom.missing' is not defined under keywords or regexes" in message
    assert "custom detector name 'Bad Name' must be lower-case letters" in message
    assert "custom keywords 'empty' has no keywords" in message
    assert "custom keywords 'number' must be a list of strings" in message
    assert (
        "custom keyword 'xxxxxxxx" in message and "in 'long' is 201 characters long; at most 200 are allowed" in message
    )
    assert "custom regex 'loop' ('(a+)+') nests a repeat inside another repeat" in message
    assert "custom regex 'broken' ('(') does not compile: missing ), unterminated subpattern at position 0" in message


def test_custom_name_in_names_must_be_defined() -> None:
    scanner = build_detectors(["custom.falcon"], keywords={"falcon": ["falcon"]})
    assert scanner.names == {"custom.falcon"}


# ---------------------------------------------------------------- JSON and bodies


def test_redact_json_keeps_keys_and_structure() -> None:
    document = {
        "model": "gpt-4o",
        "AKIAIOSFODNN7EXAMPLE": 1,
        "messages": [{"role": "user", "content": "my ssn is 123-45-6789"}, {"n": 4111111111111111}],
        "aws_secret_access_key": AWS_SECRET,
        "nested": {"list": ["ok", "TOP SECRET//NOFORN", None, True, 1.5]},
    }
    redacted, findings = ALL.redact_json(document)
    assert findings == {"pii.us-ssn": 1, "secret.aws-secret-key": 1, "marking.classification": 1}
    assert redacted == {
        "model": "gpt-4o",
        "AKIAIOSFODNN7EXAMPLE": 1,
        "messages": [{"role": "user", "content": "my ssn is [REDACTED:pii.us-ssn]"}, {"n": 4111111111111111}],
        "aws_secret_access_key": "[REDACTED:secret.aws-secret-key]",
        "nested": {"list": ["ok", "[REDACTED:marking.classification]", None, True, 1.5]},
    }
    assert document["messages"][0]["content"] == "my ssn is 123-45-6789"  # the input is not changed


def test_redact_json_handles_deep_nesting_without_recursion() -> None:
    document: object = "123-45-6789"
    for _ in range(5000):
        document = [document]
    redacted, findings = ALL.redact_json(document)
    assert findings == {"pii.us-ssn": 1}
    for _ in range(5000):
        assert isinstance(redacted, list)
        redacted = redacted[0]
    assert redacted == "[REDACTED:pii.us-ssn]"


def test_scan_body_json_sees_through_escapes() -> None:
    body = b'{"prompt": "\\u0041KIAIOSFODNN7EXAMPLE and \\u0031\\u0032\\u0033-45-6789"}'
    assert ALL.scan_body(body, "application/json") == {"secret.aws-access-key": 1, "pii.us-ssn": 1}


def test_scan_body_json_counts_keys_and_keyed_values() -> None:
    body = json.dumps({"AKIAIOSFODNN7EXAMPLE": "x", "private_key": PEM_PKCS8, "AccountKey": AZURE_KEY}).encode()
    assert ALL.scan_body(body, "application/json; charset=utf-8") == {
        "secret.aws-access-key": 1,
        "secret.gcp-service-account": 1,
        "secret.azure-storage-key": 1,
    }


def test_scan_body_broken_json_falls_back_to_text() -> None:
    assert ALL.scan_body(b'{"a": "123-45-6789"', "application/json") == {"pii.us-ssn": 1}
    deep = b"[" * 100_000 + b'"123-45-6789"' + b"]" * 100_000
    assert ALL.scan_body(deep, "application/json") == {"pii.us-ssn": 1}


def test_scan_body_form_and_text() -> None:
    form = urllib.parse.urlencode({"q": "ssn 123-45-6789", "aws_secret_access_key": AWS_SECRET}).encode()
    assert ALL.scan_body(form, "application/x-www-form-urlencoded") == {"pii.us-ssn": 1, "secret.aws-secret-key": 1}
    assert ALL.scan_body(b"plain AKIAIOSFODNN7EXAMPLE \xff\xfe", "text/plain") == {"secret.aws-access-key": 1}
    assert ALL.scan_body(b'{"x": "123-45-6789"}', "") == {"pii.us-ssn": 1}


def test_redact_body_keeps_json_and_forms_valid() -> None:
    body = json.dumps({"messages": [{"content": "ssn 123-45-6789, café"}]}).encode()
    redacted, findings = ALL.redact_body(body, "application/json")
    assert findings == {"pii.us-ssn": 1}
    assert json.loads(redacted) == {"messages": [{"content": "ssn [REDACTED:pii.us-ssn], café"}]}
    form, findings = ALL.redact_body(b"a=123-45-6789&b=%C3%A9", "application/x-www-form-urlencoded")
    assert findings == {"pii.us-ssn": 1}
    assert urllib.parse.parse_qsl(form.decode()) == [("a", "[REDACTED:pii.us-ssn]"), ("b", "é")]


def test_redact_body_keeps_undecodable_bytes() -> None:
    body = b"\xff\x00 AKIAIOSFODNN7EXAMPLE \xfe"
    redacted, findings = ALL.redact_body(body, "application/octet-stream")
    assert findings == {"secret.aws-access-key": 1}
    assert redacted == b"\xff\x00 [REDACTED:secret.aws-access-key] \xfe"


def test_redact_body_without_findings_returns_the_same_bytes() -> None:
    body = b'{"a":  "fine"}'
    assert ALL.redact_body(body, "application/json") == (body, {})


def test_redact_body_with_lone_surrogate_stays_valid_json() -> None:
    body = b'{"a": "\\ud800 123-45-6789"}'
    redacted, findings = ALL.redact_body(body, "application/json")
    assert findings == {"pii.us-ssn": 1}
    assert json.loads(redacted) == {"a": "\ud800 [REDACTED:pii.us-ssn]"}


def test_scan_limit_fails_closed_with_a_clear_error() -> None:
    scanner = build_detectors(["pii"], limit=100)
    with pytest.raises(ScanLimitError, match="text of 101 characters is over the DLP scan limit of 100"):
        scanner.scan("x" * 101)
    with pytest.raises(ScanLimitError, match="body of 101 bytes is over the DLP scan limit of 100"):
        scanner.scan_body(b"x" * 101, "text/plain")


# ---------------------------------------------------------------- properties

SAMPLES = [text for _, text in TRUE_POSITIVES]
json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=30), st.sampled_from(SAMPLES), st.sampled_from(SAMPLES)
)
json_documents = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@BOUNDED
@given(json_documents)
def test_redact_json_output_is_json_with_nothing_left_to_find(document: object) -> None:
    redacted, findings = ALL.redact_json(document)
    text = json.dumps(redacted)
    again, more = ALL.redact_json(json.loads(text))
    assert more == {}
    assert again == redacted
    assert ALL.scan_json(redacted) == {} or any(ALL.scan(k) for k in _keys(redacted))


def _keys(document: object) -> list[str]:
    if isinstance(document, dict):
        return [*document, *[k for v in document.values() for k in _keys(v)]]
    if isinstance(document, list):
        return [k for v in document for k in _keys(v)]
    return []


@BOUNDED
@given(st.lists(st.one_of(st.text(max_size=20), st.sampled_from(SAMPLES)), max_size=6))
def test_redact_text_leaves_nothing_to_find(parts: list[str]) -> None:
    text = " ".join(parts)
    redacted, findings = ALL.redact_text(text)
    assert ALL.scan(redacted) == {}
    assert (redacted == text) == (findings == {})


@BOUNDED
@given(
    st.binary(max_size=300),
    st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", ""]),
)
def test_bodies_never_raise(data: bytes, content_type: str) -> None:
    findings = ALL.scan_body(data, content_type)
    redacted, redaction_findings = ALL.redact_body(data, content_type)
    assert isinstance(redacted, bytes)
    assert set(findings) | set(redaction_findings) <= set(detector_names())


@BOUNDED
@given(
    st.sampled_from(TRUE_POSITIVES),
    st.text(alphabet=st.characters(categories=["L", "Zs", "Po"]), max_size=30),
    st.text(alphabet=st.characters(categories=["L", "Zs", "Po"]), max_size=30),
)
def test_a_finding_is_still_found_among_other_lines(case: tuple[str, str], before: str, after: str) -> None:
    detector, text = case
    assert ALL.scan(f"{before}\n{text}\n{after}").get(detector, 0) >= 1
