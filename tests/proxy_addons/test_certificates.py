"""The certificates mitmproxy makes for decrypted hosts must be ones browsers accept."""

from __future__ import annotations

import datetime
import warnings
from pathlib import Path

from aipolicy.cli._hardening import PUBLIC_KEY_CA_OPTIONS
from cryptography.hazmat.primitives.asymmetric import ec
from mitmproxy import certs, version

MAX_DAYS = 398  # CA/Browser Forum baseline and Apple, Chrome, Firefox limits for TLS leaf certificates


def test_leaf_certificates_live_at_most_398_days(tmp_path: Path) -> None:
    store = certs.CertStore.from_store(tmp_path, "mitmproxy", 2048)
    entry = store.get_cert("chat.example.org", [])
    lifetime = entry.cert.notafter - entry.cert.notbefore
    # mitmproxy 11 gives 367 days in all, mitmproxy 12 199 (the CA/Browser Forum's 200-day cap from
    # March 2026); leaves are made afresh per running proxy, so the floor only rules out nonsense
    assert datetime.timedelta(days=90) < lifetime <= datetime.timedelta(days=MAX_DAYS)


def test_the_emudhra_options_sign_with_a_public_key_and_aipolicy_refuses_them(tmp_path: Path) -> None:
    """mitmproxy 12.3's emudhra options swap the proxy's CA for eMudhra's compromised intermediate, whose
    private key is 4: the reason `aipolicy proxy` refuses them (cli/_hardening.py). mitmproxy 11 has none."""
    with warnings.catch_warnings():  # taddons loads every default addon; proxyauth's ldap3 warns about pyasn1
        warnings.simplefilter("ignore", DeprecationWarning)
        from mitmproxy.addons import tlsconfig
        from mitmproxy.test import taddons

    addon = tlsconfig.TlsConfig()
    context = taddons.context(addon)  # makes its own event loop when none runs
    try:
        with context:
            found = tuple(sorted(name for name in context.options.keys() if "emudhra" in name))
            if not found:
                assert int(version.VERSION.split(".")[0]) < 12  # mitmproxy 11: nothing to refuse
                return
            assert found == PUBLIC_KEY_CA_OPTIONS
            context.configure(addon, confdir=str(tmp_path))
            own_ca = addon.certstore.default_ca
            context.configure(addon, emudhra=True)
            key = addon.certstore.default_privatekey
            assert isinstance(key, ec.EllipticCurvePrivateKey) and key.private_numbers().private_value == 4
            assert addon.certstore.default_ca != own_ca and "eMudhra" not in str(own_ca.issuer)
            assert "EM OV TLS CA - G3C" in str(addon.certstore.get_cert("chat.example.org", []).cert.issuer)
    finally:
        context.master.event_loop.close()
