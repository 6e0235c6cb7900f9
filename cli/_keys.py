"""``aipolicy keys …``: the Ed25519 key pair that signs policy bundles."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from aipolicy import BundleError, generate_keypair, key_id, load_public_key, write_key_file

from ._common import stdout

PRIVATE_NAME = "aipolicy-signing.key"
PUBLIC_NAME = "aipolicy-signing.pub"


@click.group()
def keys() -> None:
    """Manage the key pair that signs policy bundles.

    \b
    Example:
        aipolicy keys generate --out /etc/aipolicy/keys
    """


@click.command()
@click.option(
    "--out",
    "directory",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Directory for aipolicy-signing.key (private, mode 0600) and aipolicy-signing.pub.",
)
@click.option("--force", is_flag=True, help="Replace an existing key pair (bundles signed with it stop verifying).")
def generate(directory: str, force: bool) -> None:
    """Create an Ed25519 key pair for signing policy bundles.

    Keep the private key on the machine that signs; give the public key
    (the .pub file) to every proxy.

    \b
    Example:
        aipolicy keys generate --out ~/.aipolicy
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    private, public = generate_keypair()
    private_path, public_path = out / PRIVATE_NAME, out / PUBLIC_NAME
    try:
        if not force:
            for path in (private_path, public_path):
                if path.exists():
                    raise BundleError(f"{path} already exists; use --force to replace it (the old key stops working)")
        write_key_file(private_path, private, 0o600, force=force)
        write_key_file(public_path, public, 0o644, force=force)
    except BundleError as error:
        raise click.ClickException(str(error)) from None
    stdout.print(
        f"private key: [cyan]{escape(str(private_path))}[/] (mode 0600; keep it secret)\n"
        f"public key:  [cyan]{escape(str(public_path))}[/] (key id {key_id(load_public_key(public_path))}; "
        "give it to every proxy)"
    )
