"""Signed policy bundles: one policy, distributed to many proxies.

A bundle is one JSON document (UTF-8)::

    {
      "manifest": {
        "format": "aipolicy-bundle", "version": 1,
        "policy": "policy.yaml",                  # the entry point among the files
        "policy_sha256": "…",                     # the policy's content hash when signed
        "signed_at": "2026-11-30T02:40:00Z",
        "expires": "2026-12-30T02:40:00Z",
        "key_id": "…",                            # sha256 of the raw public key, 16 hex digits
        "files": [{"path": "policy.yaml", "sha256": "…", "size": 123}, …]
      },
      "signature": "<base64 Ed25519 signature>",
      "files": {"policy.yaml": "<base64>", "catalog.yaml": "<base64>", …}
    }

The signature covers ``SIGNED_PREFIX`` followed by the manifest in canonical
JSON (sorted keys, no spaces, ASCII); the manifest pins every file by SHA-256,
so the signature covers every byte that the proxy loads. Verification checks,
in order: size, shape, signature, signing and expiry times, then each file's
path, size and hash. Paths are plain relative names (no ``..``, no leading
dot, no absolute paths), so unpacking cannot write outside its directory.

Errors: ``BundleError`` (an ``AipolicyError``), with a message that says what
is wrong and how to fix it.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aipolicy._errors import AipolicyError
from aipolicy._fetch import public_url as public_url  # where it lived before the one fetch
from aipolicy._resources import policies_dir
from aipolicy._units import parse_duration
from aipolicy.policy import Policy

FORMAT = "aipolicy-bundle"
VERSION = 1
SIGNED_PREFIX = b"aipolicy-bundle-v1\n"
POLICY_NAME = "policy.yaml"
MAX_BUNDLE_BYTES = 64 * 1024 * 1024  # the whole bundle as fetched; files are base64 (4/3 of their size)
MAX_FILES = 256
CLOCK_SKEW = datetime.timedelta(minutes=5)  # a bundle signed this far in the future is still accepted
MANIFEST_FILE = ".aipolicy-bundle.json"  # beside the unpacked files: the bundle they came from

_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class BundleError(AipolicyError):
    """A bundle or key is unusable: malformed, unsigned, wrongly signed, stale, too large or unsafe."""


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: its manifest and the files it carries."""

    manifest: dict[str, Any]
    files: dict[str, bytes]
    signed_at: datetime.datetime
    expires: datetime.datetime
    key_id: str
    digest: str  # sha256 of the canonical manifest: the bundle's identity
    signed: bool  # False only when verified without a public key

    @property
    def policy(self) -> str:
        return str(self.manifest["policy"])

    @property
    def policy_sha256(self) -> str:
        return str(self.manifest.get("policy_sha256", ""))


# --- keys ---------------------------------------------------------------------


def generate_keypair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (private PEM, public PEM)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def write_key_file(path: Path, data: bytes, mode: int, force: bool = False) -> None:
    """Write a key file with the given permissions; never overwrite unless forced."""
    if path.exists() or path.is_symlink():
        if not force:
            raise BundleError(f"{path} already exists; use --force to replace it (the old key stops working)")
        path.unlink()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as error:
        raise BundleError(f"cannot write {path}: {error.strerror or error}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)  # the umask may have narrowed it; never widened


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    data = _read_key(path, "private")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise BundleError(f"{path} is not an unencrypted PEM private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path} is not an Ed25519 key; create one with `aipolicy keys generate`")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    data = _read_key(path, "public")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise BundleError(f"{path} is not a PEM public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{path} is not an Ed25519 public key; use the .pub file from `aipolicy keys generate`")
    return key


def _read_key(path: str | Path, kind: str) -> bytes:
    try:
        return Path(path).read_bytes()[: 64 * 1024]
    except OSError as error:
        raise BundleError(f"cannot read the {kind} key {str(path)!r}: {error.strerror or error}") from None


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# --- signing --------------------------------------------------------------------


def policy_files(policy: Policy) -> dict[str, bytes]:
    """Every file the policy reads, by its path relative to the policy's directory.

    The policy itself is stored as ``policy.yaml``. Shipped files that the policy
    uses without naming them (the built-in catalogue) stay out: each proxy has
    its own copy. Any other file outside the policy's directory is an error.
    """
    base = Path(policy.path).resolve().parent
    shipped = policies_dir().resolve()
    files: dict[str, bytes] = {}
    for index, name in enumerate(dict.fromkeys(policy.files)):
        path = Path(name).resolve()
        if index == 0:
            relative = POLICY_NAME
        elif path.is_relative_to(base):
            relative = path.relative_to(base).as_posix()
        elif path.is_relative_to(shipped):
            continue
        else:
            raise BundleError(
                f"{name} is outside the policy's directory {base}; copy it beside the policy and name it relatively"
            )
        if relative in files:
            raise BundleError(
                f"{name}: a second file named {relative!r}; rename it (the policy is stored as {POLICY_NAME})"
            )
        check_path(relative)
        try:
            files[relative] = path.read_bytes()
        except OSError as error:
            raise BundleError(f"cannot read {name}: {error.strerror or error}") from None
    return files


def sign_bundle(
    files: dict[str, bytes],
    key: Ed25519PrivateKey,
    *,
    policy_sha256: str = "",
    valid_for: datetime.timedelta = datetime.timedelta(days=30),
    now: datetime.datetime | None = None,
) -> bytes:
    """The bundle (JSON bytes) carrying files, signed with key."""
    if POLICY_NAME not in files:
        raise BundleError(f"a bundle needs a {POLICY_NAME}")
    if valid_for <= datetime.timedelta(0):
        raise BundleError("the validity period must be positive")
    now = (now or _now()).replace(microsecond=0)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "policy": POLICY_NAME,
        "policy_sha256": policy_sha256,
        "signed_at": _format_time(now),
        "expires": _format_time(now + valid_for),
        "key_id": key_id(key.public_key()),
        "files": [
            {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for path, data in sorted(files.items())
        ],
    }
    signature = key.sign(SIGNED_PREFIX + canonical(manifest))
    document = {
        "manifest": manifest,
        "signature": base64.b64encode(signature).decode("ascii"),
        "files": {path: base64.b64encode(data).decode("ascii") for path, data in sorted(files.items())},
    }
    return json.dumps(document, indent=1, ensure_ascii=True).encode("ascii") + b"\n"


def canonical(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


# --- verification -----------------------------------------------------------------


def verify_bundle(
    data: bytes,
    public_key: Ed25519PublicKey | None,
    *,
    now: datetime.datetime | None = None,
    max_bytes: int = MAX_BUNDLE_BYTES,
    allow_expired: bool = False,
) -> Bundle:
    """Check a bundle end to end and return its files; raise BundleError saying what is wrong.

    With public_key None the signature is not checked (nor required): only the
    shape, times and file hashes are. Pass a key wherever one is configured.
    """
    if len(data) > max_bytes:
        raise BundleError(f"the bundle is {len(data):,} bytes, over the limit of {max_bytes:,}")
    document = _parse(data)
    manifest = document.get("manifest")
    if not isinstance(manifest, dict):
        raise BundleError("the bundle has no manifest object; is it a bundle made by `aipolicy policy sign`?")
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BundleError(
            f"unsupported bundle format {manifest.get('format')!r} version {manifest.get('version')!r} (expected {FORMAT!r} {VERSION})"
        )
    signer = _string(manifest, "key_id")
    if public_key is not None:
        _check_signature(document, manifest, public_key, signer)
    signed_at, expires = _check_times(manifest, now or _now(), allow_expired)
    files = _check_files(document, manifest, max_bytes)
    return Bundle(
        manifest=manifest,
        files=files,
        signed_at=signed_at,
        expires=expires,
        key_id=signer,
        digest=hashlib.sha256(canonical(manifest)).hexdigest(),
        signed=public_key is not None,
    )


def _parse(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise BundleError(f"the bundle is not valid JSON ({str(error)[:200]})") from None
    if not isinstance(document, dict):
        raise BundleError("the bundle is not a JSON object")
    return document


def _check_signature(
    document: dict[str, Any], manifest: dict[str, Any], public_key: Ed25519PublicKey, signer: str
) -> None:
    encoded = document.get("signature")
    if not isinstance(encoded, str) or not encoded:
        raise BundleError("the bundle is not signed; sign it with `aipolicy policy sign --key KEY`")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BundleError("the bundle's signature is not valid base64") from None
    try:
        public_key.verify(signature, SIGNED_PREFIX + canonical(manifest))
    except InvalidSignature:
        expected = key_id(public_key)
        hint = f" (signed by key {signer!r}; the public key given is {expected!r})" if signer != expected else ""
        raise BundleError(
            f"the bundle's signature does not verify: it was altered or signed with another key{hint}"
        ) from None


def _check_times(
    manifest: dict[str, Any], now: datetime.datetime, allow_expired: bool
) -> tuple[datetime.datetime, datetime.datetime]:
    signed_at = _parse_time(manifest, "signed_at")
    expires = _parse_time(manifest, "expires")
    if expires <= signed_at:
        raise BundleError(
            f"the bundle expires ({_format_time(expires)}) before it was signed ({_format_time(signed_at)})"
        )
    if signed_at > now + CLOCK_SKEW:
        raise BundleError(
            f"the bundle was signed in the future ({_format_time(signed_at)}; now {_format_time(now)}): check the clocks"
        )
    if expires <= now and not allow_expired:
        raise BundleError(
            f"the bundle expired at {_format_time(expires)} (now {_format_time(now)}); re-sign the policy with `aipolicy policy sign`"
        )
    return signed_at, expires


def _check_files(document: dict[str, Any], manifest: dict[str, Any], max_bytes: int) -> dict[str, bytes]:
    entries = manifest.get("files")
    carried = document.get("files")
    if not isinstance(entries, list) or not isinstance(carried, dict):
        raise BundleError("the bundle lists no files")
    if len(entries) > MAX_FILES:
        raise BundleError(f"the bundle lists {len(entries)} files, over the limit of {MAX_FILES}")
    files: dict[str, bytes] = {}
    total = 0
    for entry in entries:
        if not isinstance(entry, dict):
            raise BundleError("a file entry in the manifest is not an object")
        path, digest, size = entry.get("path"), entry.get("sha256"), entry.get("size")
        if not isinstance(path, str) or not isinstance(digest, str) or type(size) is not int:
            raise BundleError(f"file entry {entry!r} needs a path, a sha256 and a size")
        check_path(path)
        if path.lower() in (p.lower() for p in files):
            raise BundleError(f"{path!r} appears twice in the bundle")
        if not _HEX64.fullmatch(digest):
            raise BundleError(f"{path}: sha256 {digest[:80]!r} is not 64 lower-case hex digits")
        total += max(size, 0)
        if size < 0 or total > max_bytes:
            raise BundleError(f"{path}: the files add up to more than the limit of {max_bytes:,} bytes")
        files[path] = _decode_file(carried, path, digest, size)
    extra = sorted(set(carried) - set(files))
    if extra:
        raise BundleError(f"the bundle carries files the manifest does not list: {', '.join(map(repr, extra[:5]))}")
    if manifest.get("policy") not in files:
        raise BundleError(f"the bundle does not carry its policy file {manifest.get('policy')!r}")
    return files


def _decode_file(carried: dict[str, Any], path: str, digest: str, size: int) -> bytes:
    encoded = carried.get(path)
    if not isinstance(encoded, str):
        raise BundleError(f"{path}: listed in the manifest but not carried in the bundle")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BundleError(f"{path}: the content is not valid base64") from None
    if len(data) != size:
        raise BundleError(f"{path}: {len(data):,} bytes, but the manifest says {size:,}")
    if hashlib.sha256(data).hexdigest() != digest:
        raise BundleError(f"{path}: the content does not match its sha256 in the manifest (altered in transit?)")
    return data


def check_path(path: str) -> None:
    """A path in a bundle: relative, forward slashes, no '..' or hidden parts, at most 8 levels."""
    parts = path.split("/")
    if len(path) > 300 or len(parts) > 8 or not all(_COMPONENT.fullmatch(part) for part in parts):
        raise BundleError(
            f"unsafe or invalid path {path[:100]!r} in the bundle: paths must be relative, use letters, digits, '.', '_', '-' "
            "and '/', and no part may start with '.'"
        )


# --- unpacking --------------------------------------------------------------------


def unpack_bundle(bundle: Bundle, directory: str | Path, raw: bytes | None = None) -> Path:
    """Write the bundle's files into directory (created if missing) and return the policy's path.

    Each file is written to a temporary name and renamed into place, the policy
    file last, so a proxy watching it never reads a half-written file. Files of
    the previous bundle that the new one no longer carries are removed after.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    previous = _previous_files(root)
    order = sorted(bundle.files, key=lambda p: p == bundle.policy)  # the policy last
    for path in order:
        destination = root / path
        if not destination.resolve().parent.is_relative_to(root):
            raise BundleError(f"{path!r} would be written outside {root} (through a symbolic link?)")
        destination.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(destination, bundle.files[path])
    if raw is not None:
        write_atomically(root / MANIFEST_FILE, raw)
    for path in sorted(previous - set(bundle.files)):
        stale = root / path
        if stale.resolve().parent.is_relative_to(root):
            stale.unlink(missing_ok=True)
    return root / bundle.policy


def unpack_fresh(bundle: Bundle, parent: str | Path) -> Path:
    """Unpack into a new directory parent/<digest> (made whole, then renamed into place); return the policy path."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / bundle.digest[:16]
    if not final.exists():
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=parent))
        try:
            unpack_bundle(bundle, staging)
            os.rename(staging, final)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not final.exists():
                raise
    return final / bundle.policy


def read_unpacked_manifest(directory: str | Path) -> dict[str, Any] | None:
    """The manifest of the bundle last unpacked into directory, or None (unchecked: for comparisons only)."""
    try:
        document = json.loads((Path(directory) / MANIFEST_FILE).read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    manifest = document.get("manifest") if isinstance(document, dict) else None
    return manifest if isinstance(manifest, dict) else None


def _previous_files(root: Path) -> set[str]:
    manifest = read_unpacked_manifest(root) or {}
    entries = manifest.get("files")
    paths: set[str] = set()
    for entry in entries if isinstance(entries, list) else []:
        path = entry.get("path") if isinstance(entry, dict) else None
        if isinstance(path, str):
            try:
                check_path(path)
            except BundleError:
                continue
            paths.add(path)
    return paths


def write_atomically(destination: Path, data: bytes) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".tmp-", dir=destination.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- times ------------------------------------------------------------------------


def parse_validity(text: str) -> datetime.timedelta:
    """How long a bundle is accepted: a duration (``30d``, ``12h``, ``2w``, ``1d12h``) as a timedelta."""
    try:
        return datetime.timedelta(seconds=parse_duration(text))
    except ValueError as error:
        raise BundleError(str(error)) from None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _format_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(manifest: dict[str, Any], key: str) -> datetime.datetime:
    text = manifest.get(key)
    try:
        if not isinstance(text, str) or not text.endswith("Z"):
            raise ValueError
        return datetime.datetime.fromisoformat(text[:-1]).replace(tzinfo=datetime.UTC)
    except ValueError:
        raise BundleError(f"manifest {key} {str(text)[:40]!r} is not a UTC time like 2026-01-31T12:00:00Z") from None


def _string(manifest: dict[str, Any], key: str) -> str:
    value = manifest.get(key, "")
    return value[:64] if isinstance(value, str) else ""
