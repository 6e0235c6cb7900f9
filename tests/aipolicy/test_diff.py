"""The semantic policy diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from aipolicy import PolicyError, diff_policies

DIFF = Path(__file__).resolve().parents[1] / "fixtures" / "diff"


@pytest.fixture(scope="module")
def changes() -> dict:  # type: ignore[type-arg]
    result = diff_policies(DIFF / "a.yaml", DIFF / "b.yaml")
    assert not result.same
    return result.as_dict()["changes"]  # type: ignore[no-any-return]


def test_default_and_settings(changes: dict) -> None:  # type: ignore[type-arg]
    assert changes["default"] == {"before": "allow", "after": "monitor"}
    assert changes["settings"] == {"oversize": {"before": "block", "after": "monitor"}}  # flow style is no change
    assert "metadata" not in changes


def test_rules_added_removed_with_positions(changes: dict) -> None:  # type: ignore[type-arg]
    assert [(r["id"], r["action"], r["position"]) for r in changes["rules"]["added"]] == [("qwen", "block", 4)]
    assert [(r["id"], r["action"], r["position"]) for r in changes["rules"]["removed"]] == [("watch", "monitor", 4)]
    assert changes["rules"]["added"][0]["match"] == {"vendors": ["alibaba"]}


def test_changed_rule_targets_compared_canonically_with_provenance(changes: dict) -> None:  # type: ignore[type-arg]
    (deepseek,) = changes["rules"]["changed"]
    assert deepseek["id"] == "deepseek"
    # DeepSeek.example. is deepseek.example: only the real target change shows
    assert deepseek["match"] == {"domains": {"added": ["new.example"], "removed": ["old.example"]}}
    assert deepseek["reason"] == {"before": "DeepSeek is banned.", "after": "DeepSeek may not be used in any capacity."}
    assert deepseek["directive"] == {"before": {"id": "NAVY-1"}, "after": {"id": "NAVY-1", "title": "Navy notice"}}
    assert "action" not in deepseek


def test_reordering_is_reported_because_the_first_match_wins(changes: dict) -> None:  # type: ignore[type-arg]
    assert changes["rules"]["order"] == {
        "before": ["allow-docs", "deepseek", "bans"],
        "after": ["deepseek", "allow-docs", "bans"],
    }


def test_lists_inline_and_file(changes: dict) -> None:  # type: ignore[type-arg]
    bans, big = changes["lists"]["changed"]
    assert bans == {
        "name": "bans",
        "added": 1,
        "removed": 1,
        "added_sample": ["four.example"],
        "removed_sample": ["one.example"],
        "entries_before": 3,
        "entries_after": 3,
    }
    assert (big["name"], big["added"], big["removed"]) == ("big", 2, 1)
    assert big["added_sample"] == ["x4.example", "x5.example"] and big["removed_sample"] == ["x2.example"]
    assert big["source"] == {"before": "file a-big.txt (plain)", "after": "file b-big.txt (plain)"}


def test_respelt_entries_are_the_same() -> None:
    result = diff_policies(DIFF / "a.yaml", DIFF / "same.yaml")
    assert result.same
    assert result.as_dict() == {"a": str(DIFF / "a.yaml"), "b": str(DIFF / "same.yaml"), "same": True, "changes": {}}


def test_a_policy_that_does_not_load_raises(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nrules: [{id: x, action: blok, match: {any: true}}]\n")
    with pytest.raises(PolicyError, match="broken.yaml:2"):
        diff_policies(DIFF / "a.yaml", broken)
