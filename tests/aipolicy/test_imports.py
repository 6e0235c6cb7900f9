"""Importing into a policy's named list: what changes, how it is written, and that it stays loadable."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import aipolicy
from aipolicy import ImportListError, apply_import, parse_source, plan_import, write_atomically

IMPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "imports"


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    shutil.copytree(IMPORTS, tmp_path / "imports")
    return tmp_path / "imports" / "policy.yaml"


def source(name: str, list_format: str = "auto") -> aipolicy.ParsedSource:
    return parse_source((IMPORTS / name).read_text(), list_format)


def import_into(policy: Path, name: str, list_name: str, replace: bool = False) -> aipolicy.ImportPlan:
    plan = plan_import(policy, list_name, source(name), source=name, replace=replace)
    apply_import(plan)
    return plan


def test_inline_import_keeps_comments_and_layout(policy: Path) -> None:
    before = policy.read_text()
    plan = import_into(policy, "hosts.txt", "inline-bans")
    assert [entry for entry, _ in plan.added] == [
        "ads.example",
        "tracker.example",
        "shared.example",
        "xn--bcher-kva.example",
    ]
    expected = before.replace(
        '    - "*.cdn.example"           # subdomains only\n',
        '    - "*.cdn.example"           # subdomains only\n'
        "    - ads.example\n    - tracker.example\n    - shared.example\n    - xn--bcher-kva.example\n",
    )
    assert policy.read_text() == expected  # every other byte, comments and blank lines included, is unchanged
    loaded = aipolicy.load_policy(policy)
    decision = aipolicy.decide(loaded, aipolicy.RequestFacts(hosts=("www.tracker.example",), path="/"))
    assert (decision.action, decision.rule) == ("block", "inline-bans")


def test_second_import_adds_nothing_and_writes_nothing(policy: Path) -> None:
    import_into(policy, "adblock.txt", "inline-bans")
    written = policy.read_text()
    mtime = policy.stat().st_mtime_ns
    again = import_into(policy, "adblock.txt", "inline-bans")
    assert again.added == [] and not again.changed
    assert [item.reason for item in again.duplicates] == ["already in the list"] * 3
    assert policy.read_text() == written
    assert policy.stat().st_mtime_ns == mtime


def test_duplicates_within_the_source_and_against_the_list(policy: Path) -> None:
    plan = plan_import(policy, "community", source("hosts.txt"), source="hosts.txt")
    duplicates = {(item.line, item.text): item.reason for item in plan.duplicates}
    assert duplicates == {
        (5, "shared.example"): "already in the list",
        (6, "ads.example"): "repeats line 4 of the source",
    }


def test_file_list_is_rewritten_and_the_policy_left_alone(policy: Path) -> None:
    policy_before = policy.read_text()
    list_file = policy.parent / "lists" / "community.txt"
    plan = import_into(policy, "plain.txt", "community")
    assert plan.list_kind == "file" and plan.target_file == str(list_file)
    lines = list_file.read_text().splitlines()
    assert lines[:3] == ["# community list, one domain a line", "existing.example", "shared.example"]
    assert lines[3].startswith("# 4 entries imported by aipolicy from plain.txt on ")
    assert lines[4:] == ["new-one.example", "*.sub.example", "=exact.example", "198.51.100.0/24"]
    assert policy.read_text() == policy_before
    loaded = aipolicy.load_policy(policy)
    decision = aipolicy.decide(loaded, aipolicy.RequestFacts(hosts=("198.51.100.7",), path="/"))
    assert decision.rule == "community"


def test_hosts_format_list_gets_hosts_lines(policy: Path) -> None:
    import_into(policy, "v2fly.txt", "hostsfile")
    text = (policy.parent / "lists" / "hosts.txt").read_text()
    assert text.endswith(
        "0.0.0.0 deepseek.com\n0.0.0.0 deepseek.example\n0.0.0.0 =api.example.net\n0.0.0.0 =x.example\n"
    )
    aipolicy.load_policy(policy)


def test_replace_removes_entries_not_in_the_source(policy: Path) -> None:
    plan = import_into(policy, "plain.txt", "inline-bans", replace=True)
    assert plan.removed == ["deepseek.example", "*.cdn.example"]
    assert plan.after == 4
    text = policy.read_text()
    assert "deepseek.example" not in text
    assert "\n\n  # a list kept in a file\n" in text  # the comment after the list stays where it was


def test_replace_in_a_file_list(policy: Path) -> None:
    plan = import_into(policy, "adblock.txt", "community", replace=True)
    assert plan.removed == ["existing.example"]
    text = (policy.parent / "lists" / "community.txt").read_text()
    assert "existing.example" not in text and "shared.example" in text and "ads.example" in text


def test_flow_style_list(policy: Path) -> None:
    import_into(policy, "plain.txt", "flowlist")
    assert (
        "  flowlist: [one.example, two.example, new-one.example, '*.sub.example', =exact.example, 198.51.100.0/24]"
        in (policy.read_text())
    )
    aipolicy.load_policy(policy)


def test_unknown_list_names_the_lists_there_are(policy: Path) -> None:
    with pytest.raises(
        ImportListError, match=r"has no list 'nope' \(its lists: community, flowlist, hostsfile, inline-bans\)"
    ):
        plan_import(policy, "nope", source("plain.txt"), source="plain.txt")


def test_a_policy_that_does_not_load_is_not_edited(policy: Path) -> None:
    policy.write_text(policy.read_text().replace("action: block", "action: blok", 1))
    with pytest.raises(ImportListError, match="the policy does not load; fix it first"):
        plan_import(policy, "inline-bans", source("plain.txt"), source="plain.txt")


def test_a_result_that_would_not_load_is_not_written(policy: Path) -> None:
    plan = plan_import(policy, "inline-bans", source("plain.txt"), source="plain.txt")
    plan.new_text = plan.new_text.replace("default: allow", "default: sometimes")  # as a bug would
    before = policy.read_text()
    with pytest.raises(ImportListError, match=r"would not load, so nothing was written:\n.*policy.yaml:\d+:\d+: error"):
        apply_import(plan)
    assert policy.read_text() == before
    assert sorted(p.name for p in policy.parent.iterdir()) == sorted(p.name for p in IMPORTS.iterdir())


def test_a_file_list_that_would_not_load_is_not_written(policy: Path) -> None:
    plan = plan_import(policy, "community", source("plain.txt"), source="plain.txt")
    plan.new_text += "not a domain!\n"
    list_file = policy.parent / "lists" / "community.txt"
    before = list_file.read_text()
    with pytest.raises(ImportListError, match=r"lists/community.txt:\d+:1: error: .*not a domain!"):
        apply_import(plan)
    assert list_file.read_text() == before
    leftovers = [p.name for p in policy.parent.rglob(".*.tmp")]
    assert leftovers == []


def test_write_atomically_keeps_the_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("old\n")
    os.chmod(path, 0o640)
    write_atomically(path, b"new\n")
    assert path.read_text() == "new\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["policy.yaml"]


def test_write_atomically_check_failure_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("old\n")
    seen: list[str] = []

    def check(temp: Path) -> None:
        seen.append(temp.read_text())
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        write_atomically(path, b"new\n", check=check)
    assert seen == ["new\n"]
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["list.txt"]


def test_write_atomically_follows_a_symbolic_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "policy.yaml"
    target.write_text("old\n")
    link = tmp_path / "policy.yaml"
    link.symlink_to(target)
    write_atomically(link, b"new\n")
    assert link.is_symlink()
    assert target.read_text() == "new\n"
