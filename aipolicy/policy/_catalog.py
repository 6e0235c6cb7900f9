"""The AI-app catalogue: vendors -> apps -> hosts, weights and model patterns.

Every entry carries the public source that documents it. Policies refer to the
catalogue by vendor, app or category id; the catalogue also annotates any
decision with the app, vendor and category of the host involved.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aipolicy._errors import PolicyError
from aipolicy.matching import HostIndex, Target, normalise_host, parse_target

from ._checker import Checker, read_yaml_file
from ._located import LocatedDict
from ._providers import Provider, load_providers

ROLES = ("web", "api", "cdn", "docs", "status", "download", "backend", "auth", "sdk", "telemetry")
COUNTRY = re.compile(r"[A-Z]{2}")
NAME_MEMO_SIZE = 16_384


@dataclass(frozen=True)
class App:
    id: str
    name: str
    vendor: str
    categories: tuple[str, ...]
    targets: tuple[Target, ...]  # hosts and weight-download URLs
    models: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class Vendor:
    id: str
    name: str
    country: str
    apps: tuple[str, ...]
    source: str = ""


@dataclass
class Catalog:
    path: str
    categories: dict[str, str] = field(default_factory=dict)  # id -> name
    vendors: dict[str, Vendor] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    hubs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    index: HostIndex[str] = field(default_factory=HostIndex)  # host pattern -> app id
    providers: dict[str, Provider] = field(default_factory=dict)  # model-serving APIs: where the model id lives
    sha256: str = ""
    files: tuple[str, ...] = ()
    _by_name: dict[str, App | None] = field(default_factory=dict, repr=False, compare=False)

    def app_for_host(self, host: str) -> App | None:
        for app_id in self.index.lookup(host):
            return self.apps[app_id]
        return None

    def app_for_name(self, name: str) -> App | None:
        """The app of a name as a client spelt it (normalised here), remembered: the proxy asks
        about the same few names on every request. Bounded: a full memo is emptied."""
        try:
            return self._by_name[name]
        except KeyError:
            pass
        app = self.app_for_host(normalise_host(name))
        if len(self._by_name) >= NAME_MEMO_SIZE:
            self._by_name.clear()
        self._by_name[name] = app
        return app

    def apps_in_category(self, category: str) -> list[App]:
        return [a for a in self.apps.values() if category in a.categories]


def load_catalog(path: str | Path) -> Catalog:
    """Load and validate a catalogue file; raise PolicyError listing every problem."""
    filename = str(path)
    raw, data, check = read_yaml_file(path, "catalogue")
    catalog = Catalog(path=filename, sha256=hashlib.sha256(raw).hexdigest(), files=(filename,))
    if data is not None:
        _read_catalog(check, data, catalog)
    if check.failed:
        raise PolicyError(check.problems)
    return catalog


def _read_catalog(check: Checker, data: Any, catalog: Catalog) -> None:
    root = check.mapping(data, (1, 1), "the catalogue")
    if root is None:
        return
    check.keys(root, "the catalogue", ("version", "categories", "hubs", "providers", "vendors"), ("version", "vendors"))
    _read_providers(check, root, catalog)
    if "version" in root and root["version"] != 1:
        check.error(
            root.value_positions["version"],
            "bad-version",
            f"catalogue version {root['version']!r} is not supported (valid: 1)",
        )
    for category_id, body, position in check.entries(root, "categories", "the catalogue"):
        entry = check.mapping(body, position, f"category {category_id!r}")
        if entry is not None:
            check.keys(entry, f"category {category_id!r}", ("name", "description"), ("name",))
            catalog.categories[category_id] = str(entry.get("name", category_id))
    for hub_id, body, position in check.entries(root, "hubs", "the catalogue"):
        entry = check.mapping(body, position, f"hub {hub_id!r}")
        if entry is None:
            continue
        check.keys(entry, f"hub {hub_id!r}", ("name", "source", "paths"), ("name", "source", "paths"))
        _source(check, entry, f"hub {hub_id!r}")
        templates = []
        for template, position in check.strings(entry, "paths", f"hub {hub_id!r}"):
            if "{name}" not in template:
                check.error(position, "bad-template", f"hub path {template!r} has no {{name}} placeholder")
            else:
                templates.append(template)
        catalog.hubs[hub_id] = tuple(templates)
    for body, position in check.items(root, "vendors", "the catalogue"):
        vendor = check.mapping(body, position, "a vendor")
        if vendor is not None:
            _read_vendor(check, vendor, catalog)


def _read_providers(check: Checker, root: LocatedDict, catalog: Catalog) -> None:
    name = check.string(root, "providers", "the catalogue")
    if not name:
        return
    path = Path(catalog.path).parent / name
    try:
        catalog.providers, digest = load_providers(path)
    except PolicyError as error:
        check.error(
            root.value_positions["providers"],
            "bad-providers",
            f"the providers file {str(path)!r} does not load (details follow)",
        )
        check.problems.extend(error.problems)
        return
    catalog.sha256 = hashlib.sha256((catalog.sha256 + digest).encode()).hexdigest()
    catalog.files = (*catalog.files, str(path))


def _source(check: Checker, entry: LocatedDict, what: str) -> str:
    source = check.string(entry, "source", what, required=True)
    if source is None:
        if "source" not in entry:
            check.error(
                entry.position,
                "missing-source",
                f"{what} has no 'source': every catalogue entry must cite a public page",
            )
        return ""
    if not source.startswith("https://"):
        check.error(entry.value_positions["source"], "bad-source", f"{what} source {source!r} must be an https:// URL")
    return source


def _read_vendor(check: Checker, vendor: LocatedDict, catalog: Catalog) -> None:
    check.keys(vendor, "a vendor", ("id", "name", "country", "source", "apps"), ("id", "name", "country", "apps"))
    vendor_id = check.identifier(vendor, "id", "vendor")
    what = f"vendor {vendor_id!r}"
    if vendor_id in catalog.vendors:
        check.error(vendor.value_positions["id"], "duplicate-id", f"vendor id {vendor_id!r} is used twice")
    source = _source(check, vendor, what)
    country = check.string(vendor, "country", what) or ""
    if country and not COUNTRY.fullmatch(country):
        check.error(
            vendor.value_positions["country"],
            "bad-country",
            f"{what} country {country!r} must be an ISO 3166-1 alpha-2 code such as CN or US",
        )
    app_ids = []
    for body, position in check.items(vendor, "apps", what):
        app = check.mapping(body, position, f"an app of {what}")
        if app is not None and vendor_id:
            app_id = _read_app(check, app, vendor_id, catalog)
            if app_id:
                app_ids.append(app_id)
    if vendor_id:
        catalog.vendors[vendor_id] = Vendor(
            vendor_id, str(vendor.get("name", vendor_id)), country, tuple(app_ids), source
        )


def _read_app(check: Checker, app: LocatedDict, vendor_id: str, catalog: Catalog) -> str | None:
    check.keys(
        app,
        "an app",
        ("id", "name", "categories", "source", "hosts", "weights", "models", "note"),
        ("id", "name", "categories", "source"),
    )
    app_id = check.identifier(app, "id", "app")
    what = f"app {app_id!r}"
    if app_id in catalog.apps:
        check.error(app.value_positions["id"], "duplicate-id", f"app id {app_id!r} is used twice")
        app_id = None
    source = _source(check, app, what)
    categories = []
    for category, position in check.strings(app, "categories", what):
        if category not in catalog.categories:
            check.error(
                position,
                "unknown-category",
                f"{what} names category {category!r}, which the catalogue does not define (defined: {', '.join(catalog.categories)})",
            )
        categories.append(category)
    targets: list[Target] = []
    for body, position in check.items(app, "hosts", what):
        entry = check.mapping(body, position, f"a host of {what}")
        if entry is None:
            continue
        check.keys(entry, f"a host of {what}", ("host", "role", "source", "note"), ("host", "role"))
        check.choice(entry, "role", f"host of {what}", ROLES)
        _source(check, entry, f"host {entry.get('host')!r} of {what}")
        host = check.string(entry, "host", f"a host of {what}", required=True)
        if host is not None:
            try:
                target = parse_target(host)
            except ValueError as error:
                check.error(entry.value_positions["host"], "bad-host", str(error))
                continue
            if target.kind != "domain":
                check.error(
                    entry.value_positions["host"],
                    "bad-host",
                    f"catalogue host {host!r} must be a domain, not an address or path",
                )
                continue
            targets.append(target)
    for body, position in check.items(app, "weights", what):
        entry = check.mapping(body, position, f"a weights entry of {what}")
        if entry is None:
            continue
        check.keys(entry, f"a weights entry of {what}", ("hub", "name", "source", "note"), ("hub", "name"))
        _source(check, entry, f"weights {entry.get('name')!r} of {what}")
        hub = check.choice(entry, "hub", f"weights entry of {what}", tuple(catalog.hubs))
        name = check.string(entry, "name", f"weights entry of {what}", required=True)
        if hub and name:
            for template in catalog.hubs[hub]:
                try:
                    targets.append(parse_target(template.replace("{name}", name)))
                except ValueError as error:
                    check.error(entry.value_positions["name"], "bad-weights", str(error))
    models = tuple(m.lower() for m, _ in check.strings(app, "models", what))
    if app_id:
        catalog.apps[app_id] = App(
            app_id, str(app.get("name", app_id)), vendor_id, tuple(categories), tuple(targets), models, source
        )
        for target in targets:
            if target.kind == "domain":
                catalog.index.add(target.host, app_id)
    return app_id
