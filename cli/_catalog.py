"""``aipolicy catalog …``: what the AI-app catalogue knows."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from aipolicy import App, Catalog

from ._common import echo_json, json_option, policy_option, stdout
from ._policy import load_or_fail


def _app_dict(catalog: Catalog, app: App) -> dict[str, object]:
    vendor = catalog.vendors[app.vendor]
    return {
        "app": app.id,
        "name": app.name,
        "vendor": vendor.id,
        "vendor_name": vendor.name,
        "country": vendor.country,
        "categories": list(app.categories),
        "hosts": [str(t) for t in app.targets if t.kind == "domain"],
        "weights": [str(t) for t in app.targets if t.kind == "url"],
        "models": list(app.models),
        "source": app.source,
    }


@click.group()
def catalog() -> None:
    """Browse the AI-app catalogue the policy refers to.

    \b
    Example:
        aipolicy catalog list --category genai-prc
        aipolicy catalog show deepseek
    """


@click.command("list")
@policy_option
@click.option("--category", default=None, help="Only apps in this category (e.g. genai-prc).")
@click.option("--vendor", default=None, help="Only apps of this vendor id.")
@json_option
def list_apps(policy_path: str | None, category: str | None, vendor: str | None, as_json: bool) -> None:
    """List vendors and apps, with their categories and how many hosts each has.

    \b
    Example:
        aipolicy catalog list
        aipolicy catalog list --category genai-prc
        aipolicy catalog list --vendor deepseek --json
    """
    cat = load_or_fail(policy_path).catalog
    if category and category not in cat.categories:
        raise click.BadParameter(
            f"{category!r} is not a category (known: {', '.join(cat.categories)})", param_hint="--category"
        )
    if vendor and vendor not in cat.vendors:
        raise click.BadParameter(f"{vendor!r} is not a vendor id (see 'aipolicy catalog list')", param_hint="--vendor")
    apps = [
        a
        for a in cat.apps.values()
        if (not category or category in a.categories) and (not vendor or a.vendor == vendor)
    ]
    rows = [_app_dict(cat, a) for a in apps]
    if as_json:
        echo_json({"apps": rows})
        return
    table = Table(title=f"AI-app catalogue: {len(rows)} apps")
    for column in ("App", "Vendor", "Country", "Categories", "Hosts", "Weights"):
        table.add_column(column, no_wrap=True)
    table.add_column("Name")
    for row in rows:
        table.add_row(
            escape(str(row["app"])), escape(str(row["vendor"])), escape(str(row["country"])),
            escape(",".join(row["categories"])), str(len(row["hosts"])), str(len(row["weights"])),  # type: ignore[arg-type]
            escape(str(row["name"])),
        )  # fmt: skip
    stdout.print(table)


@click.command("show")
@click.argument("app_id")
@policy_option
@json_option
def show_app(app_id: str, policy_path: str | None, as_json: bool) -> None:
    """Show one app: every host, weight location and model pattern, with the source.

    \b
    Example:
        aipolicy catalog show deepseek
    """
    cat = load_or_fail(policy_path).catalog
    app = cat.apps.get(app_id)
    if app is None:
        raise click.ClickException(f"no app {app_id!r} in the catalogue (see 'aipolicy catalog list')")
    row = _app_dict(cat, app)
    if as_json:
        echo_json(row)
        return
    table = Table(show_header=False, box=None, title=f"{escape(app.name)} ({escape(app.id)})")
    table.add_column(style="bold")
    table.add_column()
    for key in ("vendor_name", "country", "categories", "hosts", "weights", "models", "source"):
        value = row[key]
        text = "\n".join(value) if isinstance(value, list) else str(value)  # type: ignore[arg-type]
        table.add_row(key.replace("_", " ").capitalize(), escape(text))
    stdout.print(table)
