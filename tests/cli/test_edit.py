"""Reading and editing the policy from the command line: policy show, block/allow/
monitor/unblock, rule add/remove/enable/disable/move, init and catalog search."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aipolicy.cli import main
from click.testing import CliRunner, Result

import aipolicy

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = (ROOT / "policies" / "default.yaml").read_text()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIPOLICY_POLICY", raising=False)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT)
    return path


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=True)


def ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def refused(code: int, *args: str) -> Result:
    result = run(*args)
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    return result


def audit(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in aipolicy.audit_log_path(path).read_text().splitlines()]


def test_decision(path: Path, url: str) -> str:
    return json.loads(ok("policy", "test", url, "--policy", str(path), "--json").output)["action"]


test_decision.__test__ = False  # type: ignore[attr-defined]


# --- policy block / allow / monitor / unblock -------------------------------------------------


def test_block_edits_the_file_and_the_decision(policy_file: Path) -> None:
    assert test_decision(policy_file, "https://example-banned.test/") == "allow"
    result = ok("policy", "block", "example-banned.test", "=exact.test", "--policy", str(policy_file))
    assert "added example-banned.test to new rule 'cli-block' (block)" in result.output
    assert "added =exact.test to rule 'cli-block' (block)" in result.output
    assert "wrote " in result.output and "backup " in result.output
    assert test_decision(policy_file, "https://www.example-banned.test/") == "block"
    assert test_decision(policy_file, "https://exact.test/") == "block"
    assert test_decision(policy_file, "https://www.exact.test/") == "allow"
    # everything outside the new rule is as it was, byte for byte
    text = policy_file.read_text()
    start = text.index("  # added by 'aipolicy policy block'")
    end = text.index("  # 1. The directive itself")
    assert text[:start] + text[end:] == DEFAULT
    assert policy_file.with_name("policy.yaml.bak").read_text() == DEFAULT
    [record] = audit(policy_file)
    assert record["command"] == "aipolicy policy block"
    assert record["params"] == {"targets": ["example-banned.test", "=exact.test"], "reason": "", "directive": "",
                                "expires": None, "dry_run": False}  # fmt: skip
    assert record["after"] == aipolicy.load_policy(policy_file).hash


def test_block_with_reason_directive_and_expiry(policy_file: Path) -> None:
    ok("policy", "block", "vendor:moonshot", "--reason", "Ticket 42", "--directive", "SEC-42",
       "--expires", "2099-12-31", "--policy", str(policy_file))  # fmt: skip
    decision = json.loads(
        ok("policy", "test", "https://kimi.moonshot.cn/", "--policy", str(policy_file), "--json").output
    )
    assert (decision["action"], decision["rule"], decision["reason"]) == ("block", "cli-block", "Ticket 42")
    assert decision["directive"] == {"id": "SEC-42"}
    assert "    expires: 2099-12-31\n" in policy_file.read_text()


def test_blocking_twice_is_a_no_op(policy_file: Path) -> None:
    ok("policy", "block", "example-banned.test", "--policy", str(policy_file))
    text = policy_file.read_text()
    result = ok("policy", "block", "example-banned.test", "--policy", str(policy_file))
    assert "example-banned.test is already in rule 'cli-block'" in result.output
    assert "nothing to change" in result.output
    assert policy_file.read_text() == text and len(audit(policy_file)) == 1


def test_allow_exception_comes_first_and_moves_the_target(policy_file: Path) -> None:
    ok("policy", "block", "example-banned.test", "--policy", str(policy_file))
    result = ok("policy", "allow", "example-banned.test", "--policy", str(policy_file))
    assert "removed example-banned.test from rule 'cli-block'" in result.output
    assert test_decision(policy_file, "https://example-banned.test/") == "allow"
    assert "cli-block" not in policy_file.read_text()


def test_allow_says_when_an_earlier_rule_still_decides(policy_file: Path) -> None:
    ok("policy", "block", "example.test", "--policy", str(policy_file))
    result = ok("policy", "monitor", "api.example.test", "--policy", str(policy_file))
    assert "note: api.example.test still gets block from rule 'cli-block' (line 44), which comes first" in result.output


def test_allow_says_when_it_overrides_a_hand_written_ban(policy_file: Path) -> None:
    result = ok("policy", "allow", "chat.deepseek.com", "--policy", str(policy_file))
    assert (
        "note: chat.deepseek.com was blocked by rule 'deepseek-any-capacity' (line 47); "
        "the CLI's allow rule now comes first and overrides it" in result.output
    )
    assert test_decision(policy_file, "https://chat.deepseek.com/") == "allow"


def test_unblock_takes_the_target_out(policy_file: Path) -> None:
    ok("policy", "block", "example-banned.test", "--policy", str(policy_file))
    result = ok("policy", "unblock", "example-banned.test", "--policy", str(policy_file))
    assert "removed example-banned.test from rule 'cli-block'" in result.output
    assert policy_file.read_text() == DEFAULT
    assert len(audit(policy_file)) == 2


def test_unblock_names_the_rule_it_will_not_touch(policy_file: Path) -> None:
    result = refused(1, "policy", "unblock", "chat.deepseek.com", "--policy", str(policy_file))
    assert (
        "chat.deepseek.com is not in a CLI-managed block rule; it gets block from rule "
        "'deepseek-any-capacity' (line 47); 'unblock' changes only those" in result.output
    )
    assert policy_file.read_text() == DEFAULT and not aipolicy.audit_log_path(policy_file).exists()


def test_unblock_warns_when_another_rule_still_blocks(policy_file: Path) -> None:
    ok("policy", "block", "chat.deepseek.com", "--policy", str(policy_file))
    result = ok("policy", "unblock", "chat.deepseek.com", "--policy", str(policy_file))
    assert "chat.deepseek.com is still blocked by rule 'deepseek-any-capacity' (line 47)" in result.output


def test_dry_run_prints_a_diff_and_writes_nothing(policy_file: Path) -> None:
    result = ok("policy", "block", "example-banned.test", "--dry-run", "--policy", str(policy_file))
    assert "--- a/policy.yaml\n+++ b/policy.yaml\n@@ " in result.stdout
    assert "+  - id: cli-block\n" in result.stdout and "+        - example-banned.test\n" in result.stdout
    assert "dry run: " in result.output
    assert policy_file.read_text() == DEFAULT
    assert sorted(p.name for p in policy_file.parent.iterdir()) == ["policy.yaml"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("vendor:nope", "no vendor 'nope' in the catalogue"),
        ("deepseek", "did you mean vendor:deepseek or app:deepseek?"),
        ("exa mple.com", "is not a valid domain"),
    ],
)
def test_bad_target_is_refused(policy_file: Path, target: str, message: str) -> None:
    result = refused(1, "policy", "block", target, "--policy", str(policy_file))
    assert message in result.output
    assert policy_file.read_text() == DEFAULT


def test_edits_need_an_explicit_policy_file() -> None:
    shipped = aipolicy.default_policy().read_text()
    result = refused(2, "policy", "block", "example.test")
    assert "name the policy file to edit with --policy FILE or $AIPOLICY_POLICY" in result.output
    assert aipolicy.default_policy().read_text() == shipped


def test_policy_from_the_environment(policy_file: Path) -> None:
    result = run("policy", "block", "example.test", env={"AIPOLICY_POLICY": str(policy_file)})
    assert result.exit_code == 0, result.output
    assert "example.test" in policy_file.read_text()


def test_expiry_in_the_past_is_refused(policy_file: Path) -> None:
    result = refused(2, "policy", "allow", "x.test", "--expires", "2020-01-01", "--policy", str(policy_file))
    assert "2020-01-01 is in the past" in result.output


def test_invalid_edit_is_refused_with_the_file_untouched(policy_file: Path) -> None:
    result = refused(
        1, "rule", "add", "Bad Id!", "--action", "block", "--match", "x.test", "--policy", str(policy_file)
    )
    assert "the edit was refused because the result would not load" in result.output
    assert "policy.yaml:" in result.output and "unchanged" in result.output
    assert policy_file.read_text() == DEFAULT and not aipolicy.audit_log_path(policy_file).exists()


def test_concurrent_edits_from_separate_processes(policy_file: Path) -> None:
    hosts = [f"p{n}.test" for n in range(4)]
    script = "import sys; from aipolicy.cli import main; main(sys.argv[1:])"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, "policy", "block", host, "--policy", str(policy_file)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for host in hosts
    ]
    for process in processes:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
    text = policy_file.read_text()
    assert all(f"        - {host}\n" in text for host in hosts)
    records = audit(policy_file)
    assert sorted(str(r["argv"]).split(" policy block ")[1] for r in records) == [
        f"{h} --policy {policy_file}" for h in hosts
    ]
    assert len(records) == 4 and [r["before"] for r in records[1:]] == [r["after"] for r in records[:-1]]


# --- rule -----------------------------------------------------------------------------------------


def test_rule_add_in_place(policy_file: Path) -> None:
    ok("rule", "add", "pilot-claude", "--action", "allow", "--match", "app:claude", "--match", "model:claude-*",
       "--reason", "Pilot", "--owner", "it", "--review", "2099-01-01", "--expires", "2099-06-30",
       "--before", "generative-ai-monitored", "--policy", str(policy_file))  # fmt: skip
    loaded = aipolicy.load_policy(policy_file)
    assert [r.id for r in loaded.rules] == [
        "deepseek-any-capacity", "prc-generative-ai", "pilot-claude", "generative-ai-monitored"
    ]  # fmt: skip
    rule = loaded.rules[2]
    assert (rule.reason, rule.owner, rule.review, rule.expires) == ("Pilot", "it", "2099-01-01", "2099-06-30")
    assert test_decision(policy_file, "https://claude.ai/") == "allow"
    text = policy_file.read_text()
    assert "  # added by 'aipolicy rule add'\n  - id: pilot-claude\n" in text


def test_rule_add_at_the_end_and_to_top(policy_file: Path) -> None:
    ok("rule", "add", "last", "--action", "block", "--match", "192.0.2.0/24", "--policy", str(policy_file))
    ok(
        "rule",
        "add",
        "first",
        "--action",
        "monitor",
        "--match",
        "x.test/path",
        "--to-top",
        "--policy",
        str(policy_file),
    )
    ids = [r.id for r in aipolicy.load_policy(policy_file).rules]
    assert ids[0] == "first" and ids[-1] == "last"
    assert policy_file.read_text().endswith(
        "\n# Everything no rule matched: let it through, unrecorded.\ndefault: allow\n"
    )


def test_rule_add_needs_a_match_and_one_place(policy_file: Path) -> None:
    assert (
        "Missing option '--match'"
        in refused(2, "rule", "add", "x", "--action", "block", "--policy", str(policy_file)).output
    )
    result = refused(2, "rule", "add", "x", "--action", "block", "--match", "a.test", "--to-top", "--after", "prc-generative-ai",
                     "--policy", str(policy_file))  # fmt: skip
    assert "give only one of --before, --after and --to-top" in result.output


def test_rule_remove(policy_file: Path) -> None:
    ok("rule", "remove", "prc-generative-ai", "--policy", str(policy_file))
    assert "prc-generative-ai" not in policy_file.read_text()
    assert test_decision(policy_file, "https://kimi.moonshot.cn/") == "monitor"
    assert "no rule 'nope' in the policy" in refused(1, "rule", "remove", "nope", "--policy", str(policy_file)).output


def test_rule_disable_and_enable(policy_file: Path) -> None:
    ok("rule", "disable", "prc-generative-ai", "--policy", str(policy_file))
    assert test_decision(policy_file, "https://kimi.moonshot.cn/") == "monitor"
    shown = json.loads(ok("policy", "show", "--policy", str(policy_file), "--json").output)
    assert [(r["id"], r["state"]) for r in shown["rules"]][1] == ("prc-generative-ai", "disabled")
    assert "already disabled" in refused(1, "rule", "disable", "prc-generative-ai", "--policy", str(policy_file)).output
    ok("rule", "enable", "prc-generative-ai", "--policy", str(policy_file))
    assert policy_file.read_text() == DEFAULT
    assert [r["command"] for r in audit(policy_file)] == ["aipolicy rule disable", "aipolicy rule enable"]


def test_rule_move(policy_file: Path) -> None:
    ok("rule", "move", "generative-ai-monitored", "--to-top", "--policy", str(policy_file))
    assert test_decision(policy_file, "https://chat.deepseek.com/") == "monitor"
    ok("rule", "move", "generative-ai-monitored", "--after", "prc-generative-ai", "--policy", str(policy_file))
    assert policy_file.read_text() == DEFAULT
    ok("rule", "move", "prc-generative-ai", "--before", "deepseek-any-capacity", "--policy", str(policy_file))
    assert [r.id for r in aipolicy.load_policy(policy_file).rules][0] == "prc-generative-ai"
    assert "say where" in refused(2, "rule", "move", "prc-generative-ai", "--policy", str(policy_file)).output


# --- policy show ----------------------------------------------------------------------------------


def test_policy_show_table() -> None:
    output = ok("policy", "show").output
    for text in ("deepseek-any-capacity", "vendors: deepseek", "USN-2025-01-24-DEEPSEEK", "security-team",
                 "2027-01-24", "categories: genai-prc", "Anything no rule matches: allow", aipolicy.load_policy(aipolicy.default_policy()).hash):  # fmt: skip
        assert text in output


def test_policy_show_json(policy_file: Path) -> None:
    ok("policy", "allow", "x.test", "--expires", "2099-01-01", "--policy", str(policy_file))
    shown = json.loads(ok("policy", "show", "--policy", str(policy_file), "--json").output)
    assert shown["default"] == "allow" and shown["policy"] == aipolicy.load_policy(policy_file).hash
    first = shown["rules"][0]
    assert (first["id"], first["action"], first["state"], first["expires"]) == (
        "cli-allow",
        "allow",
        "active",
        "2099-01-01",
    )
    assert first["match"] == {"domains": ["x.test"]}
    assert shown["rules"][1]["directive"] == "USN-2025-01-24-DEEPSEEK"


def test_policy_show_marks_expired_rules(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nrules:\n  - id: old\n    action: block\n    expires: 2020-01-01\n    match:\n      domains: [x.test]\n"
    )
    result = ok("policy", "show", "--policy", str(path))
    assert "expired" in result.output and "rule 'old' is inactive: it expired on 2020-01-01" in result.output


def test_policy_show_invalid_policy(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nrules: [{id: x}]\n")
    assert "the policy does not load" in refused(1, "policy", "show", "--policy", str(path)).output


# --- init -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["strict", "discovery", "allowlist"])
def test_init_writes_a_valid_commented_policy(tmp_path: Path, template: str) -> None:
    path = tmp_path / "policy.yaml"
    result = ok("init", str(path), "--template", template)
    assert f"wrote {path} from the {template} template" in result.output
    assert path.read_bytes() == aipolicy.template(template).read_bytes()
    assert path.read_text().startswith(f"# aipolicy starter policy: {template}")
    assert aipolicy.load_policy(path).name == template


def test_init_templates_behave_as_described(tmp_path: Path) -> None:
    actions = {}
    for template in ("strict", "discovery", "allowlist"):
        path = tmp_path / f"{template}.yaml"
        ok("init", str(path), "--template", template)
        actions[template] = [test_decision(path, url) for url in ("https://chat.deepseek.com/", "https://kimi.moonshot.cn/", "https://chatgpt.com/", "https://claude.ai/")]  # fmt: skip
    assert actions == {
        "strict": ["block", "block", "monitor", "monitor"],
        "discovery": ["monitor", "monitor", "monitor", "monitor"],
        "allowlist": ["block", "block", "monitor", "block"],
    }


def test_init_will_not_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("mine\n")
    assert "exists; pass --force to overwrite it" in refused(1, "init", str(path)).output
    assert path.read_text() == "mine\n"
    ok("init", str(path), "--force", "--template", "discovery")
    assert "name: discovery" in path.read_text()


def test_init_default_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ok("init")
    assert aipolicy.load_policy(tmp_path / "policy.yaml").name == "strict"


# --- catalog search -------------------------------------------------------------------------------


def test_catalog_search_table() -> None:
    output = ok("catalog", "search", "moonshot").output
    assert "vendor:moonshot" in output and "app:kimi" in output and "kimi.moonshot.cn" in output


def test_catalog_search_json() -> None:
    found = json.loads(ok("catalog", "search", "DeepSeek", "--json").output)
    assert found["query"] == "DeepSeek"
    models = [m for m in found["matches"] if m["field"] == "model"]
    assert {
        "kind": "app",
        "id": "deepseek",
        "field": "model",
        "value": "*deepseek*",
        "target": "model:*deepseek*",
    } in models
    assert {m["target"] for m in found["matches"] if m["kind"] == "vendor"} == {"vendor:deepseek"}
    kinds = {m["kind"] for m in json.loads(ok("catalog", "search", "genai", "--json").output)["matches"]}
    assert "category" in kinds


def test_catalog_search_nothing() -> None:
    result = ok("catalog", "search", "zzzz-no-such-thing")
    assert "nothing in the catalogue matches 'zzzz-no-such-thing'" in result.output
    assert json.loads(ok("catalog", "search", "zzzz-no-such-thing", "--json").output)["matches"] == []


def test_strict_template_has_the_default_policys_rules() -> None:
    strict = aipolicy.load_policy(aipolicy.template("strict"))
    default = aipolicy.load_policy(aipolicy.default_policy())
    assert [(r.id, r.action, r.reason, r.directive) for r in strict.rules] == [
        (r.id, r.action, r.reason, r.directive) for r in default.rules
    ]
    assert strict.default == default.default
