"""Policy edits: the round-trip document keeps every byte it does not change; the
file is only written after the loader accepts the result; edits are locked,
backed up and audited."""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import io
import json
import shutil
import threading
from pathlib import Path

import pytest

import aipolicy
from aipolicy import EditError, PolicyDocument, RuleMeta, edit_policy, load_policy, parse_edit_target

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = (ROOT / "policies" / "default.yaml").read_text()
FIXTURES = ROOT / "tests" / "fixtures"
COMMAND = {"command": "test", "params": {}}


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT)
    return path


@pytest.fixture
def catalog() -> aipolicy.Catalog:
    return aipolicy.load_catalog(aipolicy.shipped_catalog())


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added) between two texts."""
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


# --- targets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Example.COM", ("domains", "example.com")),
        ("*.example.com", ("domains", "*.example.com")),
        ("=api.example.com", ("hosts", "api.example.com")),
        ("https://example.com/org/x", ("urls", "example.com/org/x")),
        ("192.0.2.7", ("ips", "192.0.2.7/32")),
        ("198.51.100.0/24", ("ips", "198.51.100.0/24")),
        ("vendor:deepseek", ("vendors", "deepseek")),
        ("app:kimi", ("apps", "kimi")),
        ("category:genai-prc", ("categories", "genai-prc")),
        ("model:deepseek-*", ("models", "deepseek-*")),
    ],
)
def test_parse_edit_target(text: str, expected: tuple[str, str], catalog: aipolicy.Catalog) -> None:
    assert parse_edit_target(text, catalog) == expected
    key, value = expected
    assert parse_edit_target(aipolicy.format_target(key, value), catalog) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vendor:nosuchvendor", r"no vendor 'nosuchvendor' in the catalogue"),
        ("deepseek", r"'deepseek' is a catalogue id, not a host name; did you mean vendor:deepseek or app:deepseek\?"),
        ("bad_host!", r"not a valid domain.*vendor:ID"),
        ("192.0.2.1/24", r"host bits set; did you mean '192.0.2.0/24'"),
        ("vendor:", r"give a name after 'vendor:'"),
    ],
)
def test_parse_edit_target_errors(text: str, message: str, catalog: aipolicy.Catalog) -> None:
    with pytest.raises(EditError, match=message):
        parse_edit_target(text, catalog)


# --- the document keeps what it does not change ----------------------------------------------


def test_yaml_round_trip_of_shipped_policies_is_byte_identical() -> None:
    """The YAML layer alone (indentation guessed, quotes kept) reproduces every shipped policy."""
    for path in (ROOT / "policies").rglob("*.yaml"):
        if path.name not in ("catalog.yaml", "providers.yaml"):
            text = path.read_text()
            document = PolicyDocument(text)
            assert document.dump() == text, path
            stream = io.StringIO()
            document.yaml.dump(document.data, stream)
            assert stream.getvalue() == text, path


def test_block_adds_one_rule_at_the_top_and_nothing_else() -> None:
    document = PolicyDocument(DEFAULT)
    assert document.add_target("block", "domains", "example-banned.test", RuleMeta()) == [
        "added example-banned.test to new rule 'cli-block' (block)"
    ]
    after = document.dump()
    added = "  # added by 'aipolicy policy block'\n  - id: cli-block\n    action: block\n    match:\n      domains:\n        - example-banned.test\n"
    first = DEFAULT.index("  # 1. The directive itself")
    assert after == DEFAULT[:first] + added + DEFAULT[first:]


def test_second_target_goes_into_the_same_rule() -> None:
    document = PolicyDocument(DEFAULT)
    document.add_target("block", "domains", "one.test", RuleMeta())
    middle = document.dump()
    document.add_target("block", "vendors", "moonshot", RuleMeta())
    removed, added = changed_lines(middle, document.dump())
    assert removed == [] and added == ["      vendors:", "        - moonshot"]
    assert document.ids()[0] == "cli-block"


def test_targets_with_their_own_reason_get_their_own_rule() -> None:
    document = PolicyDocument(DEFAULT)
    document.add_target("block", "domains", "one.test", RuleMeta())
    document.add_target("block", "domains", "two.test", RuleMeta(reason="Ticket 7", expires="2099-01-01"))
    document.add_target("block", "domains", "three.test", RuleMeta(reason="Ticket 7", expires="2099-01-01"))
    assert document.ids()[:2] == ["cli-block", "cli-block-2"]
    rule = document.rules[1]
    assert list(rule["match"]["domains"]) == ["two.test", "three.test"]
    assert (rule["reason"], str(rule["expires"])) == ("Ticket 7", "2099-01-01")


def test_allow_goes_before_block_and_moves_the_target() -> None:
    document = PolicyDocument(DEFAULT)
    document.add_target("block", "domains", "x.test", RuleMeta())
    document.add_target("block", "domains", "y.test", RuleMeta())
    messages = document.add_target("allow", "domains", "x.test", RuleMeta())
    assert messages == [
        "removed x.test from rule 'cli-block'",
        "added x.test to new rule 'cli-allow' (allow)",
    ]
    assert document.ids()[:3] == ["cli-allow", "cli-block", "deepseek-any-capacity"]
    assert list(document.rules[1]["match"]["domains"]) == ["y.test"]


def test_unblock_removes_the_rule_with_its_last_target() -> None:
    document = PolicyDocument(DEFAULT)
    document.add_target("block", "domains", "x.test", RuleMeta())
    assert document.remove_target("block", "domains", "x.test") == ["removed x.test from rule 'cli-block'"]
    assert document.dump() == DEFAULT
    assert document.remove_target("block", "vendors", "deepseek") == []  # hand-written rules are not touched


def test_disable_and_enable_change_one_line() -> None:
    document = PolicyDocument(DEFAULT)
    document.set_enabled("prc-generative-ai", False)
    assert changed_lines(DEFAULT, document.dump()) == ([], ["    enabled: false"])
    with pytest.raises(EditError, match="already disabled"):
        document.set_enabled("prc-generative-ai", False)
    document.set_enabled("prc-generative-ai", True)
    assert document.dump() == DEFAULT


def test_editing_the_last_rule_keeps_the_comment_after_it() -> None:
    document = PolicyDocument(DEFAULT)
    document.set_enabled("generative-ai-monitored", False)
    after = document.dump()
    assert changed_lines(DEFAULT, after) == ([], ["    enabled: false"])
    assert after.endswith("\n# Everything no rule matched: let it through, unrecorded.\ndefault: allow\n")


def test_move_carries_the_comments_above_the_rule() -> None:
    document = PolicyDocument(DEFAULT)
    document.move_rule("generative-ai-monitored", top=True)
    after = document.dump()
    assert document.ids() == ["generative-ai-monitored", "deepseek-any-capacity", "prc-generative-ai"]
    assert sorted(after.splitlines()) == sorted(DEFAULT.splitlines())  # the same lines, reordered
    comment = after.index("  # 3. Every other generative-AI app")
    assert comment < after.index("  - id: generative-ai-monitored") < after.index("  # 1. The directive")
    document.move_rule("generative-ai-monitored", after="prc-generative-ai")
    assert document.dump() == DEFAULT


def test_remove_takes_the_comment_block_too() -> None:
    document = PolicyDocument(DEFAULT)
    document.remove_rule("prc-generative-ai")
    after = document.dump()
    assert "# 2. The group" not in after and "prc-generative-ai" not in after
    assert "# 1. The directive" in after and "# 3. Every other" in after
    removed, added = changed_lines(DEFAULT, after)
    assert added == [] and all("deepseek-any-capacity" not in line for line in removed)


def test_flow_lists_and_quotes_are_kept(tmp_path: Path) -> None:
    text = (FIXTURES / "policy.yaml").read_text()
    document = PolicyDocument(text)
    document.set_enabled("extra-list", False)
    assert changed_lines(text, document.dump()) == ([], ["    enabled: false"])
    document.add_rule("more", "block", [("hosts", "a.test"), ("hosts", "b.test")], RuleMeta(), position=None)
    assert '    - "*.sub.example"' in document.dump() and 'urls: ["huggingface.co/' in document.dump()


def test_rules_added_to_a_policy_without_rules() -> None:
    document = PolicyDocument("version: 1\nrules: []\n")
    document.add_rule("first", "block", [("domains", "a.test")], RuleMeta(), position=None)
    assert document.ids() == ["first"]


def test_unknown_rule_ids_are_named() -> None:
    document = PolicyDocument(DEFAULT)
    with pytest.raises(EditError, match=r"no rule 'nope' in the policy \(rules: deepseek-any-capacity, "):
        document.remove_rule("nope")
    with pytest.raises(EditError, match="already exists"):
        document.add_rule("prc-generative-ai", "block", [("domains", "a.test")], RuleMeta(), None)


# --- writing the file ------------------------------------------------------------------------


def test_edit_writes_backup_and_audit(policy_file: Path) -> None:
    before_hash = load_policy(policy_file).hash
    result = edit_policy(
        policy_file,
        lambda document, _: document.add_target("block", "domains", "x.test", RuleMeta()),
        command={"command": "aipolicy policy block", "params": {"targets": ["x.test"]}},
    )
    assert result.written and policy_file.read_text() == result.after
    assert Path(result.backup).read_text() == DEFAULT
    [record] = [json.loads(line) for line in aipolicy.audit_log_path(policy_file).read_text().splitlines()]
    assert record["command"] == "aipolicy policy block" and record["params"] == {"targets": ["x.test"]}
    assert (record["before"], record["after"]) == (before_hash, load_policy(policy_file).hash)
    assert record["before"] != record["after"]
    assert record["user"] and record["file"] == str(policy_file.resolve())
    assert datetime.datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).tzinfo is not None
    assert record["changes"] == ["added x.test to new rule 'cli-block' (block)"]
    assert "+        - x.test\n" in result.diff


def test_invalid_edit_is_refused_and_nothing_is_written(policy_file: Path) -> None:
    stat = policy_file.stat()
    with pytest.raises(EditError, match=r"policy.yaml:\d+:\d+: error: .*'no-such-vendor' is not in the catalogue"):
        edit_policy(
            policy_file,
            lambda document, _: document.add_rule("x", "block", [("vendors", "no-such-vendor")], RuleMeta(), None),
            command=COMMAND,
        )
    assert policy_file.read_text() == DEFAULT and policy_file.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(p.name for p in policy_file.parent.iterdir()) == ["policy.yaml", "policy.yaml.lock"]  # no temp file


def test_dry_run_writes_nothing(policy_file: Path) -> None:
    result = edit_policy(
        policy_file,
        lambda document, _: document.set_enabled("prc-generative-ai", False),
        command=COMMAND,
        dry_run=True,
    )
    assert not result.written and "+    enabled: false\n" in result.diff
    assert policy_file.read_text() == DEFAULT
    assert not aipolicy.audit_log_path(policy_file).exists() and not policy_file.with_name("policy.yaml.bak").exists()


def test_a_symlinked_policy_stays_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "policy.yaml").write_text(DEFAULT)
    link = tmp_path / "policy.yaml"
    link.symlink_to(real / "policy.yaml")
    edit_policy(link, lambda d, _: d.set_enabled("prc-generative-ai", False), command=COMMAND)
    assert link.is_symlink() and "enabled: false" in (real / "policy.yaml").read_text()
    assert (real / "policy.yaml.bak").read_text() == DEFAULT and aipolicy.audit_log_path(real / "policy.yaml").exists()


def test_a_write_failure_leaves_the_policy_unchanged(policy_file: Path) -> None:
    policy_file.with_name("policy.yaml.bak").mkdir()  # the backup cannot be written
    with pytest.raises(EditError, match=r"cannot write .*policy.yaml.bak.*is unchanged"):
        edit_policy(policy_file, lambda d, _: d.set_enabled("prc-generative-ai", False), command=COMMAND)
    assert policy_file.read_text() == DEFAULT
    assert not aipolicy.audit_log_path(policy_file).exists()
    assert [p.name for p in policy_file.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_explicit_enabled_true_is_switched_off(tmp_path: Path) -> None:
    document = PolicyDocument(
        "version: 1\nrules:\n  - id: r\n    action: block\n    enabled: true\n    match:\n      domains: [x.test]\n"
    )
    document.set_enabled("r", False)
    assert "    enabled: false\n" in document.dump() and document.dump().count("enabled") == 1


def test_nothing_to_change_writes_nothing(policy_file: Path) -> None:
    result = edit_policy(policy_file, lambda document, _: ["no-op"], command=COMMAND)
    assert not result.changed and not result.written and result.messages == ["no-op"] and result.diff == ""
    assert sorted(p.name for p in policy_file.parent.iterdir()) == ["policy.yaml", "policy.yaml.lock"]


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(EditError, match=r"missing.yaml does not exist \(create one with 'aipolicy init"):
        edit_policy(tmp_path / "missing.yaml", lambda document, _: [], command=COMMAND)


def test_file_mode_is_kept(policy_file: Path) -> None:
    policy_file.chmod(0o640)
    edit_policy(policy_file, lambda d, _: d.set_enabled("prc-generative-ai", False), command=COMMAND)
    assert policy_file.stat().st_mode & 0o777 == 0o640


def test_concurrent_edits_are_serialised(policy_file: Path) -> None:
    hosts = [f"host{n}.test" for n in range(8)]
    errors: list[BaseException] = []

    def block(host: str) -> None:
        try:
            edit_policy(policy_file, lambda d, _: d.add_target("block", "domains", host, RuleMeta()), command=COMMAND)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=block, args=(host,)) for host in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    document = PolicyDocument(policy_file.read_text())
    assert sorted(document.rules[0]["match"]["domains"]) == hosts
    records = [json.loads(line) for line in aipolicy.audit_log_path(policy_file).read_text().splitlines()]
    assert len(records) == len(hosts)
    # each edit started from the one before it: a chain of hashes with no fork
    assert [r["before"] for r in records[1:]] == [r["after"] for r in records[:-1]]


# --- the loader: enabled and expires ----------------------------------------------------------


def with_rule_fields(tmp_path: Path, fields: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "version: 1\nrules:\n  - id: r\n    action: block\n" + fields + "    match:\n      domains: [x.test]\n"
    )
    return path


def test_disabled_rule_is_inactive(tmp_path: Path) -> None:
    assert load_policy(with_rule_fields(tmp_path, "    enabled: false\n")).rules == ()


def test_expired_rule_is_inactive_with_a_warning(tmp_path: Path) -> None:
    policy = load_policy(with_rule_fields(tmp_path, "    expires: 2020-01-31\n"))
    assert policy.rules == ()
    [warning] = policy.warnings
    assert (warning.code, warning.line) == ("rule-expired", 5)
    assert "rule 'r' is inactive: it expired on 2020-01-31" in str(warning)


def test_rule_is_active_through_its_expiry_date(tmp_path: Path) -> None:
    today = datetime.date.today().isoformat()
    policy = load_policy(with_rule_fields(tmp_path, f"    expires: {today}\n"))
    assert [(r.id, r.expires) for r in policy.rules] == [("r", today)] and policy.warnings == []
    assert not policy.stale


def test_bad_expiry_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(aipolicy.PolicyError, match=r"policy.yaml:5:14: error: rule 'r'.expires must be a date"):
        load_policy(with_rule_fields(tmp_path, "    expires: soon\n"))


def test_content_is_validated_as_the_file(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "catalog.yaml", tmp_path)
    shutil.copy(FIXTURES / "providers.yaml", tmp_path)
    path = tmp_path / "policy.yaml"
    path.write_text("not: [valid")
    policy = load_policy(path, (FIXTURES / "policy.yaml").read_bytes())
    assert policy.path == str(path) and [r.id for r in policy.rules][:2] == ["allow-hf-public", "deepseek"]


def test_policy_is_stale_once_a_loaded_rule_has_expired(tmp_path: Path) -> None:
    policy = load_policy(with_rule_fields(tmp_path, "    expires: 2099-01-01\n"))
    assert not policy.stale
    # the same policy, as a long-running proxy still holds it after the date has passed
    expired = dataclasses.replace(policy, rules=(dataclasses.replace(policy.rules[0], expires="2020-01-01"),))
    assert expired.stale


@pytest.mark.parametrize(
    ("text", "new_rule"),
    [
        (
            "version: 1\nrules:\n- id: a\n  action: block\n  match:\n    domains:\n    - a.test\n# tail\ndefault: allow\n",
            "# added by 'aipolicy policy block'\n- id: cli-block\n  action: block\n  match:\n    domains:\n    - b.test\n",
        ),
        (
            "version: 1\nsettings:\n    contact: x\nrules:\n    -   id: a\n        action: block\n"
            "        match:\n            domains: [a.test]\ndefault: allow\n",
            "    # added by 'aipolicy policy block'\n    -   id: cli-block\n        action: block\n        match:\n"
            "            domains:\n                -   b.test\n",
        ),
    ],
    ids=["dash-at-column-0", "four-spaces"],
)
def test_new_rules_follow_the_files_layout(text: str, new_rule: str) -> None:
    document = PolicyDocument(text)
    document.add_target("block", "domains", "b.test", RuleMeta())
    after = document.dump()
    assert new_rule in after
    assert after.replace(new_rule, "", 1) == text
