"""Signed policy bundles: signing, every way a bundle can be bad, and safe unpacking."""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import aipolicy
from aipolicy import BundleError, sign_bundle, verify_bundle
from aipolicy.distribution._bundle import SIGNED_PREFIX, canonical, public_url, unpack_fresh

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
FILES = {"policy.yaml": b"version: 1\nrules: []\n", "lists/hosts.txt": b"blocked.example\n"}


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def signed(key: Ed25519PrivateKey, files: dict[str, bytes] = FILES, **options: Any) -> bytes:
    return sign_bundle(files, key, now=options.pop("now", NOW), **options)


def forge(data: bytes, key: Ed25519PrivateKey, change: Any) -> bytes:
    """The bundle after change(document), re-signed with key: what a holder of the key could make."""
    document = json.loads(data)
    change(document)
    signature = key.sign(SIGNED_PREFIX + canonical(document["manifest"]))
    document["signature"] = base64.b64encode(signature).decode()
    return json.dumps(document).encode()


def tampered(data: bytes, change: Any) -> bytes:
    document = json.loads(data)
    change(document)
    return json.dumps(document).encode()


def test_sign_and_verify_round_trip(key: Ed25519PrivateKey) -> None:
    bundle = verify_bundle(signed(key, policy_sha256="ab" * 32), key.public_key(), now=NOW)
    assert bundle.files == FILES
    assert bundle.signed and bundle.key_id == aipolicy.key_id(key.public_key())
    assert bundle.policy == "policy.yaml" and bundle.policy_sha256 == "ab" * 32
    assert bundle.manifest["signed_at"] == "2026-06-01T12:00:00Z"
    assert bundle.expires - bundle.signed_at == datetime.timedelta(days=30)
    assert len(bundle.digest) == 64


def test_the_same_content_gives_the_same_identity(key: Ed25519PrivateKey) -> None:
    first = verify_bundle(signed(key), key.public_key(), now=NOW)
    again = verify_bundle(signed(key), key.public_key(), now=NOW)
    later = verify_bundle(signed(key, now=NOW + datetime.timedelta(seconds=1)), key.public_key(), now=NOW)
    assert first.digest == again.digest != later.digest


MANIFEST_CHANGES = {
    "policy_sha256": "cd" * 32,
    "signed_at": "2026-06-01T11:00:00Z",
    "expires": "2099-01-01T00:00:00Z",
    "key_id": "0000000000000000",
    "policy": "lists/hosts.txt",
    "files": [],
    "extra": "field",
}


@pytest.mark.parametrize("field", sorted(MANIFEST_CHANGES))
def test_any_change_to_the_manifest_breaks_the_signature(key: Ed25519PrivateKey, field: str) -> None:
    data = tampered(signed(key), lambda d: d["manifest"].__setitem__(field, MANIFEST_CHANGES[field]))
    with pytest.raises(BundleError, match="signature does not verify"):
        verify_bundle(data, key.public_key(), now=NOW)


def test_a_changed_file_hash_in_the_manifest_breaks_the_signature(key: Ed25519PrivateKey) -> None:
    data = tampered(signed(key), lambda d: d["manifest"]["files"][0].__setitem__("sha256", "0" * 64))
    with pytest.raises(BundleError, match="signature does not verify"):
        verify_bundle(data, key.public_key(), now=NOW)


@pytest.mark.parametrize(("field", "value"), [("format", "other"), ("version", 2)])
def test_an_unknown_format_is_named(key: Ed25519PrivateKey, field: str, value: object) -> None:
    data = tampered(signed(key), lambda d: d["manifest"].__setitem__(field, value))
    with pytest.raises(BundleError, match="unsupported bundle format"):
        verify_bundle(data, key.public_key(), now=NOW)


def test_a_changed_file_is_caught_by_its_hash(key: Ed25519PrivateKey) -> None:
    evil = base64.b64encode(b"version: 1\nrules: [] \n").decode()  # same manifest, one byte more
    data = tampered(signed(key), lambda d: d["files"].__setitem__("policy.yaml", evil))
    with pytest.raises(BundleError, match="policy.yaml: 22 bytes, but the manifest says 21"):
        verify_bundle(data, key.public_key(), now=NOW)
    same_size = base64.b64encode(b"version: 1\nrules: [x]\n"[:21]).decode()
    data = tampered(signed(key), lambda d: d["files"].__setitem__("policy.yaml", same_size))
    with pytest.raises(BundleError, match="does not match its sha256"):
        verify_bundle(data, key.public_key(), now=NOW)


def test_a_changed_signature_does_not_verify(key: Ed25519PrivateKey) -> None:
    def flip(document: dict[str, Any]) -> None:
        raw = bytearray(base64.b64decode(document["signature"]))
        raw[0] ^= 1
        document["signature"] = base64.b64encode(bytes(raw)).decode()

    with pytest.raises(BundleError, match="signature does not verify"):
        verify_bundle(tampered(signed(key), flip), key.public_key(), now=NOW)


@pytest.mark.parametrize("signature", [None, "", "***"])
def test_an_unsigned_bundle_is_refused_when_a_key_is_given(key: Ed25519PrivateKey, signature: str | None) -> None:
    data = tampered(signed(key), lambda d: d.__setitem__("signature", signature))
    with pytest.raises(BundleError, match="not signed|not valid base64"):
        verify_bundle(data, key.public_key(), now=NOW)
    assert not verify_bundle(data, None, now=NOW).signed  # without a key only the hashes are checked


def test_another_key_is_named(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(BundleError, match=f"signed by key '{aipolicy.key_id(key.public_key())}'"):
        verify_bundle(signed(key), other.public_key(), now=NOW)


def test_an_expired_bundle_is_refused(key: Ed25519PrivateKey) -> None:
    data = signed(key, valid_for=datetime.timedelta(hours=1))
    later = NOW + datetime.timedelta(hours=1, seconds=1)
    with pytest.raises(BundleError, match="expired at 2026-06-01T13:00:00Z"):
        verify_bundle(data, key.public_key(), now=later)
    assert verify_bundle(data, key.public_key(), now=later, allow_expired=True).files == FILES


def test_a_bundle_signed_in_the_future_is_refused(key: Ed25519PrivateKey) -> None:
    data = signed(key, now=NOW + datetime.timedelta(hours=1))
    with pytest.raises(BundleError, match="signed in the future"):
        verify_bundle(data, key.public_key(), now=NOW)
    verify_bundle(signed(key, now=NOW + datetime.timedelta(minutes=4)), key.public_key(), now=NOW)  # clock skew


@pytest.mark.parametrize(
    "path", ["../evil.txt", "lists/../../evil.txt", "/etc/passwd", ".hidden", "a\\b", "C:/x", "", "a//b", "./x", "a/.."]
)
def test_unsafe_paths_are_refused_even_when_signed(key: Ed25519PrivateKey, path: str) -> None:
    payload = b"pwned\n"

    def add(document: dict[str, Any]) -> None:
        entry = {
            "path": path,
            "sha256": aipolicy.distribution._bundle.hashlib.sha256(payload).hexdigest(),
            "size": len(payload),
        }
        document["manifest"]["files"].append(entry)
        document["files"][path] = base64.b64encode(payload).decode()

    with pytest.raises(BundleError, match="unsafe or invalid path"):
        verify_bundle(forge(signed(key), key, add), key.public_key(), now=NOW)


def test_files_outside_the_manifest_or_missing_are_refused(key: Ed25519PrivateKey) -> None:
    extra = tampered(signed(key), lambda d: d["files"].__setitem__("more.txt", "eA=="))
    with pytest.raises(BundleError, match="does not list: 'more.txt'"):
        verify_bundle(extra, key.public_key(), now=NOW)
    missing = tampered(signed(key), lambda d: d["files"].pop("lists/hosts.txt"))
    with pytest.raises(BundleError, match="lists/hosts.txt: listed in the manifest but not carried"):
        verify_bundle(missing, key.public_key(), now=NOW)


def test_an_oversized_bundle_is_refused_before_parsing(key: Ed25519PrivateKey) -> None:
    data = signed(key)
    with pytest.raises(BundleError, match=f"the bundle is {len(data):,} bytes, over the limit of 100"):
        verify_bundle(data, key.public_key(), now=NOW, max_bytes=100)


def test_a_manifest_claiming_huge_files_is_refused(key: Ed25519PrivateKey) -> None:
    data = forge(signed(key), key, lambda d: d["manifest"]["files"][0].__setitem__("size", 10**12))
    with pytest.raises(BundleError, match="add up to more than the limit"):
        verify_bundle(data, key.public_key(), now=NOW)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"{}", "no manifest"),
        (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
    ],
)
def test_garbage_is_refused_with_a_reason(key: Ed25519PrivateKey, data: bytes, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        verify_bundle(data, key.public_key(), now=NOW)


def test_a_bad_time_is_refused(key: Ed25519PrivateKey) -> None:
    data = forge(signed(key), key, lambda d: d["manifest"].__setitem__("expires", "tomorrow"))
    with pytest.raises(BundleError, match="manifest expires 'tomorrow' is not a UTC time"):
        verify_bundle(data, key.public_key(), now=NOW)


# --- policies, keys, unpacking ----------------------------------------------------


def test_policy_files_carry_the_catalogue_providers_and_lists(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "catalog.yaml", tmp_path / "catalog.yaml")
    shutil.copy(FIXTURES / "providers.yaml", tmp_path / "providers.yaml")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "hosts.txt").write_text("blocked.example\n")
    (tmp_path / "mine.yaml").write_text(
        "version: 1\ncatalog: catalog.yaml\nlists:\n  l: {file: lists/hosts.txt}\n"
        "rules:\n  - {id: r, action: block, match: {lists: [l]}}\n"
    )
    files = aipolicy.policy_files(aipolicy.load_policy(tmp_path / "mine.yaml"))
    assert sorted(files) == ["catalog.yaml", "lists/hosts.txt", "policy.yaml", "providers.yaml"]
    assert files["policy.yaml"] == (tmp_path / "mine.yaml").read_bytes()


def test_the_shipped_catalogue_stays_out_unless_named(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("version: 1\nrules: []\n")
    assert sorted(aipolicy.policy_files(aipolicy.load_policy(tmp_path / "policy.yaml"))) == ["policy.yaml"]


def test_a_list_outside_the_policy_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "hosts.txt").write_text("blocked.example\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "policy.yaml").write_text(
        "version: 1\nlists:\n  l: {file: ../hosts.txt}\nrules:\n  - {id: r, action: block, match: {lists: [l]}}\n"
    )
    with pytest.raises(BundleError, match="hosts.txt is outside the policy's directory"):
        aipolicy.policy_files(aipolicy.load_policy(tmp_path / "sub" / "policy.yaml"))


def test_key_files_are_private_and_never_overwritten(tmp_path: Path) -> None:
    private, public = aipolicy.generate_keypair()
    path = tmp_path / "signing.key"
    aipolicy.write_key_file(path, private, 0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(BundleError, match="already exists; use --force"):
        aipolicy.write_key_file(path, b"other", 0o600)
    assert path.read_bytes() == private
    aipolicy.write_key_file(path, private, 0o600, force=True)
    key = aipolicy.load_private_key(path)
    (tmp_path / "signing.pub").write_bytes(public)
    assert aipolicy.key_id(aipolicy.load_public_key(tmp_path / "signing.pub")) == aipolicy.key_id(key.public_key())


def test_keys_that_are_not_ed25519_are_refused(tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "ec.key").write_bytes(pem)
    with pytest.raises(BundleError, match="not an Ed25519 key"):
        aipolicy.load_private_key(tmp_path / "ec.key")
    (tmp_path / "junk.pub").write_text("hello")
    with pytest.raises(BundleError, match="junk.pub is not a PEM public key"):
        aipolicy.load_public_key(tmp_path / "junk.pub")
    with pytest.raises(BundleError, match="cannot read the public key"):
        aipolicy.load_public_key(tmp_path / "missing.pub")


def test_unpack_writes_every_file_and_removes_stale_ones(key: Ed25519PrivateKey, tmp_path: Path) -> None:
    first = signed(key)
    path = aipolicy.unpack_bundle(verify_bundle(first, key.public_key(), now=NOW), tmp_path, raw=first)
    assert path == tmp_path.resolve() / "policy.yaml"
    assert (tmp_path / "lists" / "hosts.txt").read_bytes() == FILES["lists/hosts.txt"]
    second_files = {"policy.yaml": b"version: 1\nrules: []\n# two\n"}
    second = signed(key, second_files)
    aipolicy.unpack_bundle(verify_bundle(second, key.public_key(), now=NOW), tmp_path, raw=second)
    assert not (tmp_path / "lists" / "hosts.txt").exists()
    assert (tmp_path / "policy.yaml").read_bytes() == second_files["policy.yaml"]
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_unpack_does_not_follow_a_symbolic_link_out(key: Ed25519PrivateKey, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "lists")
    with pytest.raises(BundleError, match="outside"):
        aipolicy.unpack_bundle(verify_bundle(signed(key), key.public_key(), now=NOW), target)
    assert list(outside.iterdir()) == []


def test_unpack_fresh_makes_one_directory_per_bundle(key: Ed25519PrivateKey, tmp_path: Path) -> None:
    bundle = verify_bundle(signed(key), key.public_key(), now=NOW)
    path = unpack_fresh(bundle, tmp_path)
    assert path.parent.name == bundle.digest[:16] and path.read_bytes() == FILES["policy.yaml"]
    assert unpack_fresh(bundle, tmp_path) == path
    assert [p.name for p in tmp_path.iterdir()] == [bundle.digest[:16]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", datetime.timedelta(days=30)), ("12h", datetime.timedelta(hours=12)), ("2w", datetime.timedelta(weeks=2))],
)
def test_durations(text: str, expected: datetime.timedelta) -> None:
    assert aipolicy.parse_validity(text) == expected


def test_a_bad_duration_says_what_is_valid() -> None:
    with pytest.raises(
        BundleError, match=r"'soon' is not a duration \(examples: 3600, 30m, 24h, 7d\): a number with a unit"
    ):
        aipolicy.parse_validity("soon")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@feed.example:8443/p/bundle.json?token=abc", "https://feed.example:8443/p/bundle.json"),
        ("http://[::1]:80/b.json", "http://[::1]:80/b.json"),
        ("/srv/bundle.json", "/srv/bundle.json"),
    ],
)
def test_urls_in_logs_lose_credentials(url: str, shown: str) -> None:
    assert public_url(url) == shown
