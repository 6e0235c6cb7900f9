"""Where the shipped YAML lives, for a source checkout and an installed package alike."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def policies_dir() -> Path:
    return Path(str(resources.files("aipolicy.policies")))


def shipped_catalog() -> Path:
    return policies_dir() / "catalog.yaml"


def default_policy() -> Path:
    return policies_dir() / "default.yaml"


def template(name: str) -> Path:
    return policies_dir() / "templates" / f"{name}.yaml"
