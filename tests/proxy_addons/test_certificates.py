"""The certificates mitmproxy makes for decrypted hosts must be ones browsers accept."""

from __future__ import annotations

import datetime
from pathlib import Path

from mitmproxy import certs

MAX_DAYS = 398  # CA/Browser Forum baseline and Apple, Chrome, Firefox limits for TLS leaf certificates


def test_leaf_certificates_live_at_most_398_days(tmp_path: Path) -> None:
    store = certs.CertStore.from_store(tmp_path, "mitmproxy", 2048)
    entry = store.get_cert("chat.example.org", [])
    lifetime = entry.cert.notafter - entry.cert.notbefore
    # mitmproxy 11 gives 367 days in all, mitmproxy 12 199 (the CA/Browser Forum's 200-day cap from
    # March 2026); leaves are made afresh per running proxy, so the floor only rules out nonsense
    assert datetime.timedelta(days=90) < lifetime <= datetime.timedelta(days=MAX_DAYS)
