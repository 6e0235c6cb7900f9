"""`aipolicy policy test` runs the proxy's evaluate(): --body-file is the body as sent, and a
decision that needs a body says so when none was given."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from aipolicy.cli import main
from click.testing import CliRunner

FIXTURE_POLICY = Path(__file__).resolve().parents[1] / "fixtures" / "policy.yaml"
GATEWAY = "https://gateway.example/api/v1/chat/completions"  # its model rule reads the JSON body


def policy_test(*args: str, body: bytes | None = None, tmp_path: Path | None = None, as_json: bool = True) -> str:
    arguments = ["policy", "test", *args, "--policy", str(FIXTURE_POLICY)] + (["--json"] if as_json else [])
    if body is not None:
        assert tmp_path is not None
        (tmp_path / "body").write_bytes(body)
        arguments += ["--body-file", str(tmp_path / "body")] + ([] if "--method" in args else ["--method", "POST"])
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_decision_that_needs_the_body_says_so_without_one() -> None:
    shown = json.loads(policy_test(GATEWAY, "--method", "POST"))
    assert (shown["action"], shown["rule"], shown["final"], shown["needs_body"]) == ("allow", "default", True, True)
    assert "rule deepseek reads the request body" in shown["note"] and "--body-file" in shown["note"]
    table = policy_test(GATEWAY, "--method", "POST", as_json=False)
    assert "Note" in table and "rule deepseek reads the request body" in table


def test_with_the_body_nothing_is_missing(tmp_path: Path) -> None:
    shown = json.loads(policy_test(GATEWAY, body=b'{"model": "deepseek-chat"}', tmp_path=tmp_path))
    assert (shown["action"], shown["rule"], shown["model"], shown["needs_body"], shown["note"]) == (
        "block",
        "deepseek",
        "deepseek-chat",
        False,
        None,
    )


def test_a_body_the_headers_do_not_need_is_not_read(tmp_path: Path) -> None:
    shown = json.loads(policy_test("https://chat.deepseek.com/", body=b"\x1f\x8b broken", tmp_path=tmp_path))
    assert (shown["rule"], shown["needs_body"], shown["note"]) == ("deepseek", False, None)


def test_the_body_is_decoded_as_its_content_encoding_says(tmp_path: Path) -> None:
    packed = gzip.compress(b'{"model": "deepseek-chat"}')
    shown = json.loads(policy_test(GATEWAY, "--header", "content-encoding:gzip", body=packed, tmp_path=tmp_path))
    assert (shown["rule"], shown["model"]) == ("deepseek", "deepseek-chat")
    raw = json.loads(
        policy_test(GATEWAY, "--header", "content-encoding:br", body=b'{"model": "r1"}', tmp_path=tmp_path)
    )
    assert raw["note"].startswith("the body could not be decoded (broken compressed body")


def test_a_compression_bomb_gets_settings_oversize(tmp_path: Path) -> None:
    bomb = gzip.compress(b'{"model": "x", "pad": "' + b"0" * (9 * 1024 * 1024) + b'"}')
    shown = json.loads(policy_test(GATEWAY, "--header", "content-encoding:gzip", body=bomb, tmp_path=tmp_path))
    assert (shown["action"], shown["rule"]) == ("block", "aipolicy:body-too-large")
    assert f"the {len(bomb):,}-byte body decodes (gzip) to more than 8,388,608 bytes" == shown["note"]


def test_a_declared_length_past_the_cap_is_oversize_without_a_body() -> None:
    shown = json.loads(policy_test(GATEWAY, "--method", "POST", "--header", "content-length:9000000"))
    assert (shown["action"], shown["rule"], shown["needs_body"]) == ("block", "aipolicy:body-too-large", False)


def test_a_body_file_makes_a_read_only_request_a_submission(tmp_path: Path) -> None:
    # the proxy sees the body's Content-Length, so a GET carrying one is a write too
    read = json.loads(policy_test("http://readonly.allowed.test/"))
    written = json.loads(policy_test("http://readonly.allowed.test/", "--method", "GET", body=b"x", tmp_path=tmp_path))
    assert (read["action"], written["action"], written["control"]) == ("read-only", "block", "read-only")


def test_a_secret_used_as_a_json_key_is_blocked_as_the_proxy_does(tmp_path: Path) -> None:
    body = json.dumps({"AKIAZ3MPLEKEY7QX4R2T": "x"}).encode()
    shown = json.loads(policy_test("http://redact.allowed.test/v1", body=body, tmp_path=tmp_path))
    assert (shown["action"], shown["rule"], shown["dlp"]) == ("block", "redact-secrets", {"secret.aws-access-key": 1})
    assert shown["reason"].endswith("it could not be redacted completely, so the request was not sent")
    table = policy_test("http://redact.allowed.test/v1", body=body, tmp_path=tmp_path, as_json=False)
    assert "AKIAZ3MPLEKEY7QX4R2T" not in table
