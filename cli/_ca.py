"""``aipolicy ca export``: the proxy's CA certificate, for clients to trust.

mitmproxy keeps its CA in the confdir: ``mitmproxy-ca.pem`` (private key and
certificate) and ``mitmproxy-ca-cert.pem`` (the certificate alone). This
command reads the certificate with ``cryptography`` and writes it again from
the parsed object, so a private key can never reach the output. It imports no
mitmproxy; with ``--create`` it runs mitmdump once, which writes a new CA.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from rich.markup import escape

from ._common import stderr
from ._output import write_output
from ._programs import find_mitmdump

CA_FILES = ("mitmproxy-ca-cert.pem", "mitmproxy-ca.pem")  # the certificate alone first; the pair has it too
CREATE_TIMEOUT = 60.0


@click.group()
def ca() -> None:
    """The proxy's certificate authority, which clients must trust for decrypted hosts.

    \b
    Example:
        aipolicy ca export -o aipolicy-ca.pem
    """


@click.command("export")
@click.option(
    "--confdir",
    type=click.Path(file_okay=False),
    default="~/.mitmproxy",
    show_default=True,
    help="mitmproxy configuration directory (the proxy's --confdir).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["pem", "der"]),
    default="pem",
    show_default=True,
    help="pem (Linux, macOS, Firefox, Android) or der (.cer/.crt for Windows certutil and GPO, iOS).",
)
@click.option(
    "-o",
    "--output",
    default="-",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write here (default: stdout).",
)
@click.option("--create", is_flag=True, help="If the confdir has no CA yet, create one by starting mitmdump once.")
def export(confdir: str, output_format: str, output: str, create: bool) -> None:
    """Export the CA certificate (never its private key).

    Prints the certificate's subject, expiry and SHA-256 fingerprint on stderr,
    to compare with what devices show after import.

    \b
    Example:
        aipolicy ca export --confdir /etc/aipolicy/mitmproxy -o aipolicy-ca.pem
        aipolicy ca export --format der -o aipolicy-ca.cer     # Windows, iOS
        aipolicy ca export --confdir ./ca --create -o ca.pem   # make a CA first if there is none
    """
    directory = Path(confdir).expanduser()
    if find_ca_file(directory) is None and create:
        create_ca(directory)
    path = find_ca_file(directory)
    if path is None:
        raise click.ClickException(
            f"no CA in {directory} (looked for {' and '.join(CA_FILES)}); start the proxy once with "
            f"`aipolicy proxy --confdir {directory}` or run this command with --create"
        )
    certificate = read_certificate(path)
    encoding = Encoding.PEM if output_format == "pem" else Encoding.DER
    write_output(output, certificate.public_bytes(encoding))
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex(":").upper()
    stderr.print(
        f"CA {escape(certificate.subject.rfc4514_string())} from {escape(str(path))}\n"
        f"  valid until {certificate.not_valid_after_utc:%Y-%m-%d}; SHA-256 {fingerprint}"
    )


def find_ca_file(directory: Path) -> Path | None:
    for name in CA_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def read_certificate(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
        return x509.load_pem_x509_certificate(data)  # the first CERTIFICATE block; a key beside it is ignored
    except OSError as error:
        raise click.ClickException(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise click.ClickException(f"{path} holds no PEM certificate: {error}") from None


def create_ca(directory: Path) -> None:
    """mitmproxy writes its CA when it starts with an empty confdir; start it without a server and stop it."""
    directory.mkdir(parents=True, exist_ok=True)
    command = [find_mitmdump(), "--no-server", "--set", f"confdir={directory}", "--rfile", os.devnull]
    with tempfile.TemporaryFile() as output:
        try:
            result = subprocess.run(command, stdout=output, stderr=output, timeout=CREATE_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise click.ClickException(
                f"mitmdump did not finish creating a CA in {directory} within {CREATE_TIMEOUT:.0f} s"
            ) from None
        if find_ca_file(directory) is None:
            output.seek(0)
            detail = output.read().decode(errors="replace").strip()[-2000:]
            raise click.ClickException(f"mitmdump (exit {result.returncode}) created no CA in {directory}:\n{detail}")
    stderr.print(f"created a new CA in {escape(str(directory))}")
