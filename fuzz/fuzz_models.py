"""Fuzz model-id extraction: any path, headers and body give a list of model ids, never an exception."""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run  # noqa: E402

with atheris.instrument_imports(include=["aipolicy"]):
    from aipolicy.policy._providers import ModelReader, load_providers

PROVIDERS = list(load_providers(Path(__file__).resolve().parents[1] / "policies" / "providers.yaml")[0].values())
CONTENT_TYPES = ["application/json", "", "text/plain", "application/json; charset=utf-8", "multipart/form-data"]


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    chosen = PROVIDERS[provider.ConsumeIntInRange(0, len(PROVIDERS) - 1)]
    path = provider.ConsumeUnicodeNoSurrogates(200)
    header = provider.ConsumeUnicodeNoSurrogates(80)
    headers = {"content-type": provider.PickValueInList(CONTENT_TYPES)}
    headers.update({name: header for name in chosen.headers})
    body = provider.ConsumeBytes(provider.remaining_bytes())
    models = ModelReader(path, headers, body).models(chosen)
    assert models is None or all(isinstance(m, str) for m in models)


if __name__ == "__main__":
    run(test_one_input)
