"""``aipolicy keys generate`` and ``aipolicy policy sign|verify-bundle|sync``, and ``proxy --policy-url``."""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import shutil
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aipolicy.cli import main
from click.testing import CliRunner, Result

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIPOLICY_POLICY", raising=False)
    monkeypatch.delenv("AIPOLICY_LOG", raising=False)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def assert_clean_failure(result: Result, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    result = run("keys", "generate", "--out", str(tmp_path / "keys"))
    assert result.exit_code == 0, result.output
    return tmp_path / "keys" / "aipolicy-signing.key", tmp_path / "keys" / "aipolicy-signing.pub"


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    directory = tmp_path / "policy"
    directory.mkdir()
    for name in ("policy.yaml", "catalog.yaml", "providers.yaml"):
        shutil.copy(FIXTURES / name, directory / name)
    return directory / "policy.yaml"


@pytest.fixture
def bundle(tmp_path: Path, keys: tuple[Path, Path], policy: Path) -> Path:
    out = tmp_path / "bundle.json"
    result = run("policy", "sign", "--policy", str(policy), "--key", str(keys[0]), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_keys_generate_writes_a_private_key_only_its_owner_reads(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()


def test_keys_generate_never_overwrites_without_force(keys: tuple[Path, Path]) -> None:
    before = keys[0].read_bytes()
    result = run("keys", "generate", "--out", str(keys[0].parent))
    assert_clean_failure(result)
    assert "already exists; use --force" in result.output and keys[0].read_bytes() == before
    assert run("keys", "generate", "--out", str(keys[0].parent), "--force").exit_code == 0
    assert keys[0].read_bytes() != before and stat.S_IMODE(keys[0].stat().st_mode) == 0o600


def test_sign_then_verify(bundle: Path, keys: tuple[Path, Path]) -> None:
    result = run("policy", "verify-bundle", str(bundle), "--pubkey", str(keys[1]), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["valid"] and summary["rules"] == 9
    assert [f["path"] for f in summary["files"]] == ["catalog.yaml", "policy.yaml", "providers.yaml"]
    human = run("policy", "verify-bundle", str(bundle), "--pubkey", str(keys[1]))
    assert human.exit_code == 0 and "valid" in human.stdout and summary["key_id"] in human.stdout


def test_sign_refuses_a_policy_that_does_not_load(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    result = run("policy", "sign", "--policy", str(FIXTURES / "loader" / "three_errors.yaml"), "--key", str(keys[0]))
    assert_clean_failure(result)
    assert "does not load" in result.output and not (tmp_path / "policy-bundle.json").exists()


def test_sign_refuses_a_public_key_as_the_signing_key(policy: Path, keys: tuple[Path, Path]) -> None:
    result = run("policy", "sign", "--policy", str(policy), "--key", str(keys[1]), "--out", "-")
    assert_clean_failure(result)
    assert "not an unencrypted PEM private key" in result.output


def test_verify_rejects_a_tampered_bundle(bundle: Path, keys: tuple[Path, Path]) -> None:
    document = json.loads(bundle.read_bytes())
    document["files"]["policy.yaml"] = base64.b64encode(b"version: 1\nrules: []\n").decode()
    bundle.write_text(json.dumps(document))
    result = run("policy", "verify-bundle", str(bundle), "--pubkey", str(keys[1]))
    assert_clean_failure(result)
    assert "the bundle is rejected: policy.yaml:" in result.output


def test_verify_rejects_another_key(bundle: Path, tmp_path: Path) -> None:
    run("keys", "generate", "--out", str(tmp_path / "other"))
    result = run("policy", "verify-bundle", str(bundle), "--pubkey", str(tmp_path / "other" / "aipolicy-signing.pub"))
    assert_clean_failure(result)
    assert "signature does not verify" in result.output


def test_verify_refuses_an_oversized_bundle(bundle: Path, keys: tuple[Path, Path]) -> None:
    result = run("policy", "verify-bundle", str(bundle), "--pubkey", str(keys[1]), "--max-bytes", "1024")
    assert_clean_failure(result)
    assert "over the limit of 1,024 bytes" in result.output


def test_sync_from_a_file_unpacks_a_loadable_policy(bundle: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    into = tmp_path / "current"
    result = run("policy", "sync", str(bundle), "--pubkey", str(keys[1]), "--into", str(into))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in into.iterdir()) == [
        ".aipolicy-bundle.json",
        "catalog.yaml",
        "policy.yaml",
        "providers.yaml",
    ]
    assert run("policy", "validate", str(into / "policy.yaml")).exit_code == 0


def test_sync_refuses_an_older_bundle_unless_forced(
    bundle: Path, keys: tuple[Path, Path], policy: Path, tmp_path: Path
) -> None:
    into = tmp_path / "current"
    older = tmp_path / "older.json"
    document = json.loads(bundle.read_bytes())
    assert run("policy", "sync", str(bundle), "--pubkey", str(keys[1]), "--into", str(into)).exit_code == 0
    manifest = json.loads((into / ".aipolicy-bundle.json").read_bytes())["manifest"]
    manifest["signed_at"] = "2099-01-01T00:00:00Z"  # as if a later bundle were in place
    (into / ".aipolicy-bundle.json").write_text(json.dumps({"manifest": manifest}))
    older.write_text(json.dumps(document))
    result = run("policy", "sync", str(older), "--pubkey", str(keys[1]), "--into", str(into))
    assert_clean_failure(result)
    assert "before the one in" in result.output
    assert run("policy", "sync", str(older), "--pubkey", str(keys[1]), "--into", str(into), "--force").exit_code == 0


def test_sync_leaves_the_directory_alone_when_the_bundle_is_bad(
    bundle: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    into = tmp_path / "current"
    into.mkdir()
    (into / "policy.yaml").write_text("version: 1\nrules: []\n")
    document = json.loads(bundle.read_bytes())
    document["manifest"]["expires"] = "2099-01-01T00:00:00Z"
    bundle.write_text(json.dumps(document))
    result = run("policy", "sync", str(bundle), "--pubkey", str(keys[1]), "--into", str(into))
    assert_clean_failure(result)
    assert [p.name for p in into.iterdir()] == ["policy.yaml"]


@pytest.fixture
def served(bundle: Path) -> Iterator[str]:
    """A real loopback HTTP server serving the bundle."""
    body = bundle.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            status = 200 if self.path == "/bundle.json" else 404
            self.send_response(status)
            self.send_header("content-length", str(len(body) if status == 200 else 0))
            self.end_headers()
            if status == 200:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_sync_from_a_url(served: str, keys: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    into = tmp_path / "current"
    result = run("policy", "sync", f"{served}/bundle.json", "--pubkey", str(keys[1]), "--into", str(into))
    assert result.exit_code == 0, result.output
    assert (into / "policy.yaml").exists()
    missing = run("policy", "sync", f"{served}/nothing.json", "--pubkey", str(keys[1]), "--into", str(into))
    assert_clean_failure(missing)
    assert "nothing.json: the server answered 404 Not Found" in missing.output
    small = run(
        "policy", "sync", f"{served}/bundle.json", "--pubkey", str(keys[1]), "--into", str(into), "--max-bytes", "2048"
    )
    assert_clean_failure(small)
    # The server declares its length: refused before the body is read (it was read up to the cap).
    assert re.search(
        r"bundle\.json serves [\d,]+ bytes, over the limit of 2,048 bytes \(see --max-bytes\)", small.output
    )


@pytest.fixture
def no_exec(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda program, args: calls.append([program, *args]))
    return calls


def test_proxy_passes_the_feed_to_mitmdump(no_exec: list[list[str]], keys: tuple[Path, Path], policy: Path) -> None:
    result = run("proxy", "--policy", str(policy), "--policy-url", "https://feed.example/b.json",
                 "--policy-pubkey", str(keys[1]), "--policy-refresh", "60")  # fmt: skip
    assert result.exit_code == 0, result.output
    (command,) = no_exec
    assert "aipolicy_policy_url=https://feed.example/b.json" in command
    assert f"aipolicy_policy_pubkey={keys[1]}" in command and "aipolicy_policy_refresh=60" in command


def test_proxy_warns_about_a_feed_without_a_key(no_exec: list[list[str]], policy: Path) -> None:
    result = run("proxy", "--policy", str(policy), "--policy-url", "https://user:pw@feed.example/b.json")
    assert result.exit_code == 0, result.output
    assert "WITHOUT --policy-pubkey" in result.stderr and "pw@" not in result.stderr


def test_proxy_refuses_a_key_without_a_feed(no_exec: list[list[str]], keys: tuple[Path, Path], policy: Path) -> None:
    result = run("proxy", "--policy", str(policy), "--policy-pubkey", str(keys[1]))
    assert_clean_failure(result, 2)
    assert no_exec == []


@pytest.mark.parametrize(("written", "passed"), [("90", "90"), ("5m", "300"), ("1h30m", "5400"), ("0.5", "0.5")])
def test_proxy_reads_the_feed_refresh_in_the_duration_grammar(
    no_exec: list[list[str]], keys: tuple[Path, Path], policy: Path, written: str, passed: str
) -> None:
    result = run("proxy", "--policy", str(policy), "--policy-url", "https://feed.example/b.json",
                 "--policy-pubkey", str(keys[1]), "--policy-refresh", written)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"aipolicy_policy_refresh={passed}" in no_exec[0]


@pytest.mark.parametrize(
    ("written", "message"),
    [("nan", "'nan' is not a duration"), ("0.05", "not from 0.1 s to 7 days"), ("8d", "not from 0.1 s to 7 days")],
)
def test_proxy_refuses_a_feed_refresh_out_of_range(
    no_exec: list[list[str]], keys: tuple[Path, Path], policy: Path, written: str, message: str
) -> None:
    result = run("proxy", "--policy", str(policy), "--policy-url", "https://feed.example/b.json",
                 "--policy-pubkey", str(keys[1]), "--policy-refresh", written)  # fmt: skip
    assert result.exit_code == 2 and no_exec == []
    assert message in result.output and "Traceback" not in result.output
