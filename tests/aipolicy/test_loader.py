"""The policy loader: every problem at once, each as FILE:LINE:COL with a message people can act on."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aipolicy import Policy, PolicyError, Problem, RequestFacts, decide, load_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LOADER = FIXTURES / "loader"
FIXTURE_CATALOG = FIXTURES / "catalog.yaml"
VALID_RULE_KEYS = "id, description, action, match, reason, directive, owner, review, expires, enabled, contact, warn, quota, when, dlp"
BAD_DOMAIN_HINT = "(expected e.g. example.com, *.example.com, =api.example.com, 192.0.2.0/24, example.com/path)"


def write(directory: Path, body: str, name: str = "policy.yaml", catalog: bool = True) -> Path:
    """A policy file; line 1 is `version: 1`, line 2 the test catalogue, the body starts on line 3."""
    head = f"version: 1\ncatalog: {FIXTURE_CATALOG}\n" if catalog else ""
    path = directory / name
    path.write_text(head + textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    return [str(problem) for problem in caught.value.problems]


# --- one kind of problem at a time -----------------------------------------------------------


def test_yaml_syntax_error() -> None:
    path = LOADER / "syntax_error.yaml"
    assert problems_of(path) == [
        f"{path}:7:3: error: not valid YAML: did not find expected ',' or '}}' (while parsing a flow mapping) [yaml-syntax]"
    ]


def test_duplicate_key() -> None:
    path = LOADER / "duplicate_key.yaml"
    assert problems_of(path) == [
        f"{path}:5:5: error: duplicate key 'action'; the later value would silently win [duplicate-key]"
    ]


def test_unknown_key_is_a_typo_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rules:
          - id: typo
            acton: block
            match: {domains: [x.example]}
        """,
    )
    assert problems_of(path) == [
        f"{path}:4:5: error: a rule has no 'action' (required) [missing-key]",
        f"{path}:5:5: warning: unknown key 'acton' in a rule may be a typo; did you mean 'action'? (valid keys: {VALID_RULE_KEYS}) [unknown-key]",
    ]


def test_unknown_key_alone_loads_with_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rules:
          - id: typo
            action: block
            reson: not approved
            match: {domains: [x.example]}
        """,
    )
    policy = load_policy(path)
    assert [str(w) for w in policy.warnings] == [
        f"{path}:6:5: warning: unknown key 'reson' in a rule may be a typo; did you mean 'reason'? (valid keys: {VALID_RULE_KEYS}) [unknown-key]"
    ]
    assert [rule.id for rule in policy.rules] == ["typo"]


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "rules: []\ndefualt: block\n")
    policy = load_policy(path)
    assert [w.message for w in policy.warnings] == [
        "unknown key 'defualt' in the policy may be a typo; did you mean 'default'? "
        "(valid keys: version, name, description, default, catalog, settings, lists, groups, networks, identity, rules, exceptions)"
    ]
    assert policy.default == "allow"


def test_missing_version(tmp_path: Path) -> None:
    path = write(tmp_path, "rules: []\n", catalog=False)
    assert problems_of(path) == [f"{path}:1:1: error: the policy has no 'version' (required) [missing-key]"]


def test_missing_match_is_reported_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rules:
          - id: nomatch
            action: block
        """,
    )
    assert problems_of(path) == [f"{path}:4:5: error: a rule has no 'match' (required) [missing-key]"]


def test_bad_action_suggests_the_closest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rules:
          - id: r
            action: blok
            match: {domains: [x.example]}
        """,
    )
    assert problems_of(path) == [
        f"{path}:5:13: error: rule 'r'.action is 'blok'; did you mean 'block'? (valid: block, warn, read-only, quota, redact, monitor, allow) [bad-value]"
    ]


def test_redact_needs_dlp(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rules:
          - id: r
            action: redact
            match: {domains: [x.example]}
        """,
    )
    assert problems_of(path) == [
        f"{path}:4:5: error: rule 'r' has action redact but no dlp: (what to redact, e.g. dlp: {{detectors: [secret, pii]}}) [missing-key]"
    ]


def test_bad_default(tmp_path: Path) -> None:
    path = write(tmp_path, "rules: []\ndefault: alow\n")
    assert problems_of(path) == [
        f"{path}:4:10: error: policy.default is 'alow'; did you mean 'allow'? (valid: block, monitor, allow) [bad-value]"
    ]


def test_duplicate_rule_id(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rules:
          - id: same
            action: block
            match: {domains: [x.example]}
          - id: same
            action: monitor
            match: {domains: [y.example]}
        """,
    )
    assert problems_of(path) == [f"{path}:7:9: error: rule id 'same' is already used on line 4 [duplicate-id]"]


def test_unknown_catalogue_references_and_list(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        lists:
          mine: [mine.example]
        rules:
          - id: refs
            action: block
            match:
              vendors: [deepsek]
              apps: [chatgtp]
              categories: [gen-ai]
              lists: [mien]
        """,
    )
    assert problems_of(path) == [
        f"{path}:9:17: error: rule 'refs'.match.vendors: 'deepsek' is not in the catalogue (known: deepseek, doh-vendor, openai) [unknown-vendor]",
        f"{path}:10:14: error: rule 'refs'.match.apps: 'chatgtp' is not in the catalogue (known: chatgpt, deepseek, doh-resolver) [unknown-app]",
        f"{path}:11:20: error: rule 'refs'.match.categories: 'gen-ai' is not in the catalogue (known: dns-over-https, genai, genai-prc) [unknown-category]",
        f"{path}:12:15: error: rule 'refs' refers to list 'mien', which is not defined under 'lists' (defined: mine) [unknown-list]",
    ]


def test_bad_targets_in_an_inline_list(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        lists:
          extra: ["ok.example", "bad..example", "x.example:443", 7]
        rules: []
        """,
    )
    assert problems_of(path) == [
        f"{path}:4:25: error: list 'extra': 'bad..example' is not a valid domain, IP address, network or host/path {BAD_DOMAIN_HINT} [bad-target]",
        f"{path}:4:41: error: list 'extra': 'x.example:443': ports are not matched; write the host without ':port' [bad-target]",
        f"{path}:4:58: error: each entry of list 'extra' must be a string, got 7 [wrong-type]",
    ]


def test_bad_targets_in_a_rule(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rules:
          - id: r
            action: block
            match:
              domains: ["a.*.example", 192.0.2.0/24]
              ips: [example.org, 192.0.2.1/24]
        """,
    )
    assert problems_of(path) == [
        f"{path}:7:17: error: rule 'r'.match.domains: 'a.*.example': a wildcard is only allowed as a leading '*.' (subdomains only) [bad-target]",
        f"{path}:7:32: error: rule 'r'.match.domains: '192.0.2.0/24' is a network; put it under ips [wrong-kind]",
        f"{path}:8:13: error: rule 'r'.match.ips: 'example.org' is a domain; put it under domains [wrong-kind]",
        f"{path}:8:26: error: rule 'r'.match.ips: '192.0.2.1/24' has host bits set; did you mean '192.0.2.0/24'? [bad-target]",
    ]


def test_bad_lines_in_a_list_file_are_located_in_that_file() -> None:
    path = LOADER / "bad_list.yaml"
    listing = LOADER / "bad_list.txt"
    assert problems_of(path) == [
        f"{listing}:5:1: error: 'bad..example' is not a valid domain, IP address, network or host/path {BAD_DOMAIN_HINT} [bad-target]",
        f"{listing}:7:1: error: '10.0.0.1/8' has host bits set; did you mean '10.0.0.0/8'? [bad-target]",
    ]


def test_bad_lines_in_a_hosts_format_list_file() -> None:
    listing = LOADER / "hosts_list.txt"
    assert problems_of(LOADER / "hosts_list.yaml") == [
        f"{listing}:4:1: error: expected 'ADDRESS NAME…', got '0.0.0.0' [bad-hosts-line]",
        f"{listing}:5:1: error: 'bad..example' is not a valid domain, IP address, network or host/path {BAD_DOMAIN_HINT} [bad-target]",
    ]


def test_hosts_format_list_file_matches_its_names(tmp_path: Path) -> None:
    (tmp_path / "hosts.txt").write_text(
        "127.0.0.1 localhost\n0.0.0.0 ads.example tracker.example  # two names\n", encoding="utf-8"
    )
    path = write(
        tmp_path,
        """
        lists:
          h: {file: hosts.txt, format: hosts}
        rules:
          - {id: h, action: block, match: {lists: [h]}}
        """,
    )
    policy = load_policy(path)
    assert decide(policy, RequestFacts(hosts=("tracker.example",), path="/")).rule == "h"
    assert decide(policy, RequestFacts(hosts=("ads.example",), path="/")).rule == "h"
    assert decide(policy, RequestFacts(hosts=("localhost",), path="/")).rule == "default"


def test_missing_list_file_and_bad_format(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        lists:
          gone:
            file: missing.txt
          odd:
            file: odd.txt
            format: csv
        rules: []
        """,
    )
    (tmp_path / "odd.txt").write_text("ok.example\n", encoding="utf-8")
    assert problems_of(path) == [
        f"{path}:5:11: error: list 'gone': cannot read {str(tmp_path / 'missing.txt')!r}: No such file or directory [unreadable]",
        f"{path}:8:13: error: list 'odd'.format is 'csv' (valid: plain, hosts) [bad-value]",
    ]


def test_review_date_in_the_past_is_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rules:
          - id: old
            action: block
            review: 2020-01-31
            match: {domains: [x.example]}
        """,
    )
    policy = load_policy(path)
    assert [str(w) for w in policy.warnings] == [
        f"{path}:6:13: warning: rule 'old' was due for review on 2020-01-31 [review-due]"
    ]
    assert policy.rules[0].review == "2020-01-31"


def test_review_date_in_the_future_is_quiet(tmp_path: Path) -> None:
    future = datetime.date.today() + datetime.timedelta(days=400)
    path = write(
        tmp_path,
        f"rules:\n  - {{id: r, action: block, review: {future.isoformat()}, match: {{domains: [x.example]}}}}\n",
    )
    assert load_policy(path).warnings == []


def test_review_that_is_not_a_date(tmp_path: Path) -> None:
    path = write(tmp_path, "rules:\n  - {id: r, action: block, review: soon, match: {domains: [x.example]}}\n")
    assert problems_of(path) == [
        f"{path}:4:36: error: rule 'r'.review must be a date like 2026-06-30, got 'soon' [bad-date]"
    ]


def test_review_with_a_time_of_day_does_not_crash_the_loader(tmp_path: Path) -> None:
    # YAML reads `2020-01-31 10:00:00` as a datetime; it must be judged, not compared to a date and crash.
    path = write(
        tmp_path,
        "rules:\n  - id: r\n    action: block\n    review: 2020-01-31 10:00:00\n    match: {domains: [x.example]}\n",
    )
    try:
        policy = load_policy(path)
    except PolicyError as error:
        assert error.problems
        assert all(p.line == 6 and p.column == 13 for p in error.problems), [str(p) for p in error.problems]
    else:
        assert [w.code for w in policy.warnings] == ["review-due"]


def test_bad_directive_reference(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rules:
          - id: r
            action: block
            directive:
              id: D-1
              reference: ftp://example.org/notice
              issuer: someone
            match: {domains: [x.example]}
        """,
    )
    assert problems_of(path) == [
        f"{path}:8:18: error: rule 'r'.directive.reference must be a URL, got 'ftp://example.org/notice' [bad-reference]",
        f"{path}:9:7: warning: unknown key 'issuer' in rule 'r'.directive may be a typo; did you mean 'issued'? (valid keys: id, title, reference, issued, authority) [unknown-key]",
    ]


def test_wrong_types(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        settings:
          log_query: "yes"
          contact: 5
        lists:
          broken: 5
        rules:
          - id: r
            action: block
            enabled: "no"
            match: [x.example]
          - just a string
          - id: s
            action: block
            match: {domains: [7], any: yes-please}
        """,
    )
    assert problems_of(path) == [
        f"{path}:4:14: error: settings.log_query must be true or false [wrong-type]",
        f"{path}:5:12: error: settings.contact must be a non-empty string, got int 5 [wrong-type]",
        f"{path}:7:11: error: list 'broken' must be a list of targets or a mapping with 'file' [wrong-type]",
        f"{path}:11:14: error: rule 'r'.enabled must be true or false [wrong-type]",
        f"{path}:12:12: error: rule 'r'.match must be a mapping (key: value), got a list [wrong-type]",
        f"{path}:13:5: error: a rule must be a mapping (key: value), got str 'just a string' [wrong-type]",
        f"{path}:16:23: error: each entry of rule 's'.match.domains must be a non-empty string, got int 7 [wrong-type]",
        f"{path}:16:32: error: rule 's'.match.any must be true (or left out) [wrong-type]",
    ]


def test_rules_must_be_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, "rules: {id: x}\n")
    assert problems_of(path) == [f"{path}:3:8: error: the policy.rules must be a list, got a mapping [wrong-type]"]


def test_policy_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- version: 1\n", encoding="utf-8")
    assert problems_of(path) == [
        f"{path}:1:1: error: the policy must be a mapping (key: value), got a list [wrong-type]"
    ]


def test_unsupported_version(tmp_path: Path) -> None:
    path = tmp_path / "v2.yaml"
    path.write_text(f"version: 2\ncatalog: {FIXTURE_CATALOG}\nrules: []\n", encoding="utf-8")
    assert problems_of(path) == [f"{path}:1:10: error: policy version 2 is not supported (valid: 1) [bad-version]"]


def test_empty_match(tmp_path: Path) -> None:
    path = write(tmp_path, "rules:\n  - id: r\n    action: block\n    match: {}\n")
    assert problems_of(path) == [
        f"{path}:6:12: error: rule 'r'.match matches nothing (use one of: domains, hosts, ips, urls, lists, vendors, apps, categories, models, any) [empty-match]"
    ]


def test_broken_catalogue_is_reported_with_its_own_problems(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(
        textwrap.dedent(
            """\
            version: 1
            categories: {genai: {name: G}}
            vendors:
              - id: v
                name: V
                country: cn
                source: https://v.example/
                apps:
                  - id: a
                    name: A
                    categories: [genai, nope]
                    source: http://insecure.example/
                    hosts:
                      - {host: x.example, role: web}
            """
        ),
        encoding="utf-8",
    )
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\ncatalog: catalog.yaml\nrules: []\n", encoding="utf-8")
    catalog = tmp_path / "catalog.yaml"
    assert problems_of(path) == [
        f"{catalog}:6:14: error: vendor 'v' country 'cn' must be an ISO 3166-1 alpha-2 code such as CN or US [bad-country]",
        f"{catalog}:11:29: error: app 'a' names category 'nope', which the catalogue does not define (defined: genai) [unknown-category]",
        f"{catalog}:12:17: error: app 'a' source 'http://insecure.example/' must be an https:// URL [bad-source]",
        f"{catalog}:14:13: error: host 'x.example' of app 'a' has no 'source': every catalogue entry must cite a public page [missing-source]",
        f"{path}:2:10: error: the catalogue {str(catalog)!r} does not load (details follow) [bad-catalog]",
    ]


# --- all at once ----------------------------------------------------------------------------


def test_three_errors_give_three_problems() -> None:
    path = LOADER / "three_errors.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    problems = caught.value.problems
    assert [(p.line, p.code) for p in problems] == [(5, "bad-value"), (11, "unknown-vendor"), (15, "bad-target")]
    assert all(p.severity == "error" and p.file == str(path) for p in problems)
    assert str(caught.value) == "\n".join(str(p) for p in problems)


def test_errors_and_warnings_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rules:
          - id: r
            action: blok
            colour: red
            match: {domains: [x.example]}
        """,
    )
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert [(p.severity, p.code) for p in caught.value.problems] == [("error", "bad-value"), ("warning", "unknown-key")]
    # The exception text lists the errors; the warnings stay available on .problems.
    assert "colour" not in str(caught.value)
    assert "blok" in str(caught.value)


def test_problem_as_dict() -> None:
    problem = Problem("p.yaml", 3, 7, "bad-value", "wrong", "warning")
    assert str(problem) == "p.yaml:3:7: warning: wrong [bad-value]"
    assert problem.as_dict() == {
        "file": "p.yaml",
        "line": 3,
        "column": 7,
        "code": "bad-value",
        "severity": "warning",
        "message": "wrong",
    }


# --- unreadable input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "# only a comment\n", "---\n", "null\n", "~\n"],
    ids=["empty", "blank-lines", "comment", "document-marker-only", "null", "tilde"],
)
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:1:1: error: ")


def test_empty_file_message(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_bytes(b"")
    assert problems_of(path) == [f"{path}:1:1: error: the file is empty [empty-file]"]


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("version: 1\nname: café\nrules: []\n".encode("latin-1"))
    assert problems_of(path) == [f"{path}:1:1: error: policy is not UTF-8 text (byte 20) [not-utf8]"]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert problems_of(path) == [f"{path}:1:1: error: cannot read policy: No such file or directory [unreadable]"]


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    problems = problems_of(tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path}:1:1: error: cannot read policy: ")


def test_deeply_nested_yaml_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("version: 1\nrules: " + "[" * 3000 + "]" * 3000 + "\n", encoding="utf-8")
    with pytest.raises(PolicyError):
        load_policy(path)


BOMB_SCRIPT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1024 * 1024 * 1024, 1024 * 1024 * 1024))
import aipolicy
aipolicy.load_policy(aipolicy.default_policy())  # the limit leaves room for a real policy
try:
    aipolicy.load_policy(sys.argv[1])
except aipolicy.PolicyError as error:
    print("REFUSED", [p.code for p in error.problems])
else:
    print("LOADED")
"""


def test_alias_bomb_is_refused_within_bounded_memory(tmp_path: Path) -> None:
    # A billion laughs: 9 levels of 9 aliases, ~400 million values from a 1 kB file.
    lines = ["version: 1", "a0: &a0 [" + ", ".join(['"lol"'] * 9) + "]"]
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    lines.append("rules: *a8")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert path.stat().st_size < 2048
    # In a child process with 1 GiB of address space, so a loader that expands the
    # aliases fails with MemoryError there instead of exhausting this machine.
    result = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("REFUSED"), result.stdout


# --- disabled rules -------------------------------------------------------------------------


def test_disabled_rules_are_skipped_but_still_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rules:
          - id: paused
            action: block
            enabled: false
            match: {domains: [x.example]}
          - id: active
            action: monitor
            enabled: true
            match: {domains: [y.example]}
        """,
    )
    policy = load_policy(path)
    assert [rule.id for rule in policy.rules] == ["active"]
    broken = write(
        tmp_path,
        "rules:\n  - {id: paused, action: block, enabled: false, match: {domains: [a.*.b]}}\n",
        name="broken.yaml",
    )
    assert [p.split(": error: ")[1] for p in problems_of(broken)] == [
        "rule 'paused'.match.domains: 'a.*.b': a wildcard is only allowed as a leading '*.' (subdomains only) [bad-target]"
    ]


# --- content hash ---------------------------------------------------------------------------


@pytest.fixture
def policy_set(tmp_path: Path) -> Path:
    """A policy with its own catalogue and list file, in a directory of its own."""
    directory = tmp_path / "set"
    directory.mkdir()
    shutil.copy(FIXTURE_CATALOG, directory / "catalog.yaml")
    shutil.copy(FIXTURES / "providers.yaml", directory / "providers.yaml")
    (directory / "extra.txt").write_text("one.example\ntwo.example\n", encoding="utf-8")
    (directory / "policy.yaml").write_text(
        textwrap.dedent(
            """\
            version: 1
            catalog: catalog.yaml
            lists:
              extra: {file: extra.txt}
            rules:
              - {id: extra, action: block, match: {lists: [extra]}}
              - {id: ai, action: monitor, match: {categories: [genai]}}
            """
        ),
        encoding="utf-8",
    )
    return directory


def load_hash(directory: Path) -> str:
    policy: Policy = load_policy(directory / "policy.yaml")
    return policy.hash


def test_hash_is_stable(policy_set: Path, tmp_path: Path) -> None:
    first = load_hash(policy_set)
    assert len(first) == 16
    assert load_hash(policy_set) == first
    os.utime(policy_set / "policy.yaml", (0, 0))
    os.utime(policy_set / "extra.txt", (0, 0))
    assert load_hash(policy_set) == first
    moved = shutil.copytree(policy_set, tmp_path / "elsewhere")
    assert load_hash(Path(moved)) == first


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("policy.yaml", "action: monitor", "action: block"),
        ("policy.yaml", "version: 1\n", "version: 1\n# a comment\n"),
        ("catalog.yaml", "api.openai.com", "api2.openai.com"),
        ("extra.txt", "two.example", "three.example"),
        ("providers.yaml", "=gateway.example", "=gateway2.example"),
    ],
    ids=["policy-rule", "policy-comment", "catalogue", "list-file", "providers-file"],
)
def test_hash_changes_with_any_file(policy_set: Path, file: str, old: str, new: str) -> None:
    before = load_hash(policy_set)
    path = policy_set / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    assert load_hash(policy_set) != before


def test_loaded_policy_lists_every_file_it_read(policy_set: Path) -> None:
    policy = load_policy(policy_set / "policy.yaml")
    assert sorted(Path(f).name for f in policy.files) == ["catalog.yaml", "extra.txt", "policy.yaml", "providers.yaml"]
