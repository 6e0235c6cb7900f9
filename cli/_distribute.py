"""``aipolicy policy sign|verify-bundle|sync``: one signed policy for many proxies."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
from rich.markup import escape

import aipolicy
from aipolicy import Bundle, BundleError, PolicyError
from aipolicy.distribution import MAX_BUNDLE_BYTES, read_unpacked_manifest, write_atomically

from ._common import Size, echo_json, json_option, policy_option, stderr, stdout
from ._policy import load_or_fail


def max_bytes_option(function):  # type: ignore[no-untyped-def]
    return click.option(
        "--max-bytes",
        type=Size(minimum=1024),
        default=MAX_BUNDLE_BYTES,
        show_default=True,
        help="Refuse bundles larger than this many bytes (or a size: 16MB, 64MiB).",
    )(function)


def _fail(error: Exception) -> click.ClickException:
    return click.ClickException(str(error))


@click.command()
@policy_option
@click.option(
    "--key", "key_path", required=True, type=click.Path(dir_okay=False), help="Private key (aipolicy keys generate)."
)
@click.option(
    "--out",
    "out_path",
    default="policy-bundle.json",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Bundle file to write; '-' for standard output.",
)
@click.option(
    "--valid-for",
    default="30d",
    show_default=True,
    help="How long proxies accept the bundle: e.g. 12h, 30d, 2w. Re-sign before it runs out.",
)
def sign(policy_path: str | None, key_path: str, out_path: str, valid_for: str) -> None:
    """Sign the policy, with every file it reads, into one bundle for many proxies.

    The bundle (JSON) carries the policy as policy.yaml, its catalogue,
    providers and list files with their SHA-256, when it was signed and when it
    expires, and an Ed25519 signature over all of that. The policy must load.

    \b
    Example:
        aipolicy policy sign --policy /etc/aipolicy/policy.yaml --key aipolicy-signing.key --out /srv/www/policy-bundle.json
    """
    loaded = load_or_fail(policy_path)
    try:
        key = aipolicy.load_private_key(key_path)
        files = aipolicy.policy_files(loaded)
        data = aipolicy.sign_bundle(
            files, key, policy_sha256=loaded.sha256, valid_for=aipolicy.parse_validity(valid_for)
        )
        bundle = aipolicy.verify_bundle(data, key.public_key())
    except BundleError as error:
        raise _fail(error) from None
    if out_path == "-":
        click.echo(data.decode("ascii"), nl=False)
    else:
        try:
            write_atomically(Path(out_path).resolve(), data)
        except OSError as error:
            raise click.ClickException(f"cannot write {out_path}: {error.strerror or error}") from None
    stderr.print(
        f"[green]signed[/] {escape(loaded.path)} (policy {loaded.hash}, {len(files)} files) → {escape(out_path)}; "
        f"key {bundle.key_id}, expires {bundle.manifest['expires']}"
    )


def _read_source(source: str, max_bytes: int) -> bytes:
    if source.startswith(("http://", "https://")):
        return _download(source, max_bytes)
    try:
        with open(source, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise click.ClickException(f"cannot read {source}: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise click.ClickException(f"{source} is over the limit of {max_bytes:,} bytes (see --max-bytes)")
    return data


def _download(url: str, max_bytes: int) -> bytes:
    try:
        return aipolicy.fetch_capped(url, max_bytes=max_bytes, accept="application/json").body
    except aipolicy.FetchTooLarge as error:
        raise click.ClickException(f"{error} (see --max-bytes)") from None
    except aipolicy.FetchError as error:
        raise click.ClickException(f"cannot fetch {error}") from None


def _verify(data: bytes, pubkey: str, max_bytes: int) -> Bundle:
    try:
        return aipolicy.verify_bundle(data, aipolicy.load_public_key(pubkey), max_bytes=max_bytes)
    except BundleError as error:
        raise click.ClickException(f"the bundle is rejected: {error}") from None


def _check_loads(bundle: Bundle) -> aipolicy.Policy:
    with tempfile.TemporaryDirectory(prefix="aipolicy-bundle-") as directory:
        try:
            return aipolicy.load_policy(aipolicy.unpack_bundle(bundle, directory))
        except PolicyError as error:
            raise click.ClickException(f"the bundle verifies, but its policy does not load:\n{error}") from None


def _summary(bundle: Bundle, loaded: aipolicy.Policy) -> dict[str, object]:
    return {
        "valid": True,
        "policy": loaded.hash,
        "rules": len(loaded.rules),
        "signed_at": bundle.manifest["signed_at"],
        "expires": bundle.manifest["expires"],
        "key_id": bundle.key_id,
        "bundle": bundle.digest[:16],
        "files": [{"path": f["path"], "size": f["size"], "sha256": f["sha256"]} for f in bundle.manifest["files"]],
    }


pubkey_option = click.option(
    "--pubkey", required=True, type=click.Path(dir_okay=False), help="Public key the bundle must be signed with."
)


@click.command("verify-bundle")
@click.argument("bundle_file", metavar="BUNDLE", type=click.Path(dir_okay=False))
@pubkey_option
@max_bytes_option
@json_option
def verify_bundle(bundle_file: str, pubkey: str, max_bytes: int, as_json: bool) -> None:
    """Check a bundle's signature, expiry and file hashes, and that its policy loads.

    Exit status 0 when the bundle is good, 1 (with the reason) when it is not.

    \b
    Example:
        aipolicy policy verify-bundle policy-bundle.json --pubkey aipolicy-signing.pub
    """
    bundle = _verify(_read_source(bundle_file, max_bytes), pubkey, max_bytes)
    loaded = _check_loads(bundle)
    summary = _summary(bundle, loaded)
    if as_json:
        echo_json(summary)
        return
    stdout.print(
        f"[green]valid[/]: {escape(bundle_file)} — policy {loaded.hash}, {len(loaded.rules)} rules, "
        f"{len(bundle.files)} files, signed {bundle.manifest['signed_at']} by key {bundle.key_id}, "
        f"expires {bundle.manifest['expires']}"
    )


@click.command()
@click.argument("source", metavar="URL|BUNDLE")
@pubkey_option
@click.option(
    "--into",
    "directory",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory to unpack into; the policy is DIR/policy.yaml.",
)
@click.option("--force", is_flag=True, help="Accept a bundle signed earlier than the one already in DIR.")
@max_bytes_option
def sync(source: str, pubkey: str, directory: str, force: bool, max_bytes: int) -> None:
    """Fetch (or copy) a signed bundle, verify it and unpack it into a directory.

    Files are written under temporary names and renamed into place, the policy
    last, so a proxy running with --policy DIR/policy.yaml reloads the new policy
    whole. A bundle signed earlier than the one already unpacked is refused
    (a replayed old policy) unless --force is given.

    \b
    Example:
        aipolicy policy sync https://policy.example.org/policy-bundle.json --pubkey aipolicy-signing.pub --into /etc/aipolicy/current
        aipolicy policy sync /media/usb/policy-bundle.json --pubkey aipolicy-signing.pub --into /etc/aipolicy/current
    """
    data = _read_source(source, max_bytes)
    bundle = _verify(data, pubkey, max_bytes)
    previous = read_unpacked_manifest(directory)
    if previous and not force and str(previous.get("signed_at", "")) > bundle.manifest["signed_at"]:
        raise click.ClickException(
            f"the bundle was signed at {bundle.manifest['signed_at']}, before the one in {directory} "
            f"({previous.get('signed_at')}); use --force to go back to it"
        )
    loaded = _check_loads(bundle)
    try:
        path = aipolicy.unpack_bundle(bundle, directory, raw=data)
    except (BundleError, OSError) as error:
        raise click.ClickException(f"cannot unpack into {directory}: {error}") from None
    stdout.print(
        f"[green]synced[/] policy {loaded.hash} ({len(bundle.files)} files, signed {bundle.manifest['signed_at']}, "
        f"expires {bundle.manifest['expires']}) → [cyan]{escape(str(path))}[/]"
    )
