"""``aipolicy ca export``: the CA certificate in PEM or DER, never the private key."""

from __future__ import annotations

from pathlib import Path

import pytest
from aipolicy.cli import main
from click.testing import CliRunner, Result
from cryptography import x509


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


@pytest.fixture(scope="module")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA made by a real mitmdump through --create."""
    directory = tmp_path_factory.mktemp("confdir")
    result = run("ca", "export", "--confdir", str(directory), "--create", "-o", str(directory / "first.pem"))
    assert result.exit_code == 0, result.output
    assert "created a new CA" in result.output
    return directory


def test_create_writes_a_ca_and_exports_it(confdir: Path) -> None:
    exported = (confdir / "first.pem").read_bytes()
    assert exported == (confdir / "mitmproxy-ca-cert.pem").read_bytes()
    certificate = x509.load_pem_x509_certificate(exported)
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_pem_to_stdout_has_no_private_key(confdir: Path) -> None:
    result = run("ca", "export", "--confdir", str(confdir))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" not in result.stdout
    assert "SHA-256" in result.stderr


def test_der(confdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ca.cer"
    assert run("ca", "export", "--confdir", str(confdir), "--format", "der", "-o", str(out)).exit_code == 0
    der = x509.load_der_x509_certificate(out.read_bytes())
    assert der == x509.load_pem_x509_certificate((confdir / "mitmproxy-ca-cert.pem").read_bytes())


def test_a_confdir_with_only_the_key_pair_exports_the_certificate_alone(confdir: Path, tmp_path: Path) -> None:
    (tmp_path / "mitmproxy-ca.pem").write_bytes((confdir / "mitmproxy-ca.pem").read_bytes())
    assert b"PRIVATE KEY" in (tmp_path / "mitmproxy-ca.pem").read_bytes()
    result = run("ca", "export", "--confdir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "PRIVATE KEY" not in result.stdout
    assert result.stdout.encode() == (confdir / "mitmproxy-ca-cert.pem").read_bytes()


def test_no_ca_says_how_to_make_one(tmp_path: Path) -> None:
    result = run("ca", "export", "--confdir", str(tmp_path))
    assert result.exit_code == 1
    assert "no CA in" in result.output and "--create" in result.output
    assert "Traceback" not in result.output


def test_a_file_that_is_no_certificate(tmp_path: Path) -> None:
    (tmp_path / "mitmproxy-ca-cert.pem").write_text("not a certificate\n")
    result = run("ca", "export", "--confdir", str(tmp_path))
    assert result.exit_code == 1
    assert "holds no PEM certificate" in result.output
