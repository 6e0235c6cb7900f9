"""Replaying recorded events with a candidate policy."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import aipolicy
from aipolicy import RequestFacts, decide, decision_event, facts_from_event, read_events, redecide, replay

REPLAY = Path(__file__).resolve().parents[1] / "fixtures" / "replay"
BODY = json.dumps({"model": "deepseek/deepseek-r1", "messages": []}).encode()


def record(policy: aipolicy.Policy, facts: RequestFacts, stage: str = "request", sni: str = "") -> dict:  # type: ignore[type-arg]
    """An event exactly as the proxy writes it: the real decision and the real event builder."""
    decision = decide(policy, facts)
    if not decision.final:
        decision = decide(policy, replace(facts, headers={"content-type": "application/json"}, body=BODY))
    assert decision.action != "allow"  # the proxy records only block and monitor decisions
    return decision_event(decision, facts, stage=stage, sni=sni)


@pytest.fixture(scope="module")
def current() -> aipolicy.Policy:
    return aipolicy.load_policy(REPLAY / "current.yaml")


@pytest.fixture(scope="module")
def candidate() -> aipolicy.Policy:
    return aipolicy.load_policy(REPLAY / "candidate.yaml")


@pytest.fixture
def log(tmp_path: Path, current: aipolicy.Policy) -> Path:
    request = dict(method="GET", scheme="https", port=443, client_ip="10.0.0.2")
    events = [
        record(current, RequestFacts(hosts=("chat.deepseek.com",), path="/", user="alice", **request)),  # type: ignore[arg-type]
        record(current, RequestFacts(hosts=("chatgpt.com",), path="/backend-api/conversation", user="bob", **request)),  # type: ignore[arg-type]
        record(current, RequestFacts(hosts=("chatgpt.com",), path="/", user="carol", **request)),  # type: ignore[arg-type]
        record(current, RequestFacts(hosts=("claude.ai",), path="/", user="bob", **request)),  # type: ignore[arg-type]
        record(
            current,
            RequestFacts(
                hosts=("openrouter.ai",),
                path="/api/v1/chat/completions",
                method="POST",
                user="dave",
                client_ip="10.0.0.3",
            ),
        ),
        record(
            current,
            RequestFacts(hosts=("203.0.113.9", "chat.deepseek.com"), user="erin"),
            stage="tls",
            sni="chat.deepseek.com",
        ),
    ]
    no_model = dict(events[4], model=None)  # as if the model were not recorded
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in [*events, no_model]))
    return path


def test_facts_rebuilt_from_an_event(log: Path) -> None:
    events = list(read_events([str(log)]))
    request = facts_from_event(events[1].data)
    assert request == RequestFacts(
        hosts=("chatgpt.com",), path="/backend-api/conversation", method="GET", scheme="https", port=443,
        client_ip="10.0.0.2", user="bob",
    )  # fmt: skip
    connection = facts_from_event(events[5].data)
    assert connection.path is None  # a TLS-stage event is decided at connection level, as the proxy did
    assert connection.hosts == ("203.0.113.9", "chat.deepseek.com")


def test_replay_groups_changes(log: Path, candidate: aipolicy.Policy) -> None:
    report = replay(candidate, read_events([str(log)]))
    assert (report.total, report.same, report.changed, report.action_changed, report.undetermined) == (7, 1, 5, 2, 1)
    transitions = {(t.old_action, t.old_rule, t.new_action, t.new_rule): t for t in report.sorted_transitions()}
    assert {key: t.count for key, t in transitions.items()} == {
        ("block", "deepseek", "block", "deepseek-any-capacity"): 3,  # web, TLS stage, and the model at OpenRouter
        ("monitor", "genai", "block", "chatgpt"): 2,
    }
    chatgpt = transitions[("monitor", "genai", "block", "chatgpt")]
    assert dict(chatgpt.users) == {"bob": 1, "carol": 1}
    assert chatgpt.examples[0]["host"] == "chatgpt.com" and chatgpt.examples[0]["where"].endswith("events.jsonl:2")
    assert report.by_user["bob"] == {"monitor:genai -> block:chatgpt": 1}
    assert report.undetermined_examples[0]["user"] == "dave"
    data = report.as_dict()
    assert data["limits"] == list(aipolicy.REPLAY_LIMITS)
    assert data["transitions"][0]["count"] == 3


def test_recorded_model_stands_in_for_the_body(log: Path, candidate: aipolicy.Policy) -> None:
    events = [e.data for e in read_events([str(log)])]
    with_model, without_model = events[4], events[6]
    assert with_model["model"] == "deepseek/deepseek-r1"
    decision = redecide(candidate, with_model)
    assert (decision.action, decision.rule, decision.final, decision.model) == (
        "block",
        "deepseek-any-capacity",
        True,
        "deepseek/deepseek-r1",
    )
    assert not redecide(candidate, without_model).final


def test_replay_with_the_same_policy_changes_nothing(log: Path, current: aipolicy.Policy) -> None:
    report = replay(current, read_events([str(log)]))
    assert (report.same, report.changed, report.undetermined) == (6, 0, 1)


def test_hostile_event_fields_do_not_crash(candidate: aipolicy.Policy) -> None:
    data = {"hosts": [1, None, "chat.deepseek.com"], "port": "443", "groups": "eng", "path": 7, "stage": "request"}
    facts = facts_from_event(data)
    assert facts.hosts == ("chat.deepseek.com",) and facts.port == 0 and facts.groups == () and facts.path == "/"
    assert redecide(candidate, data).rule == "deepseek-any-capacity"
