"""What a blocked client sees: an HTML page for browsers, a JSON error for API
clients. Every value taken from the request or the policy is escaped."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping

from ._decision import Decision

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}"
    "h1{font-size:1.5rem;color:#9b1c1c}dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem}"
    "dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}footer{margin-top:2rem;color:#555;font-size:.85rem}"
)


def wants_html(headers: Mapping[str, str]) -> bool:
    """Browsers ask for text/html; SDKs and scripts do not."""
    return "text/html" in headers.get("accept", "").lower()


def block_page(decision: Decision, url: str, title: str) -> str:
    esc = html.escape
    rows = [("Address", url), ("Rule", decision.rule), ("Why", decision.reason)]
    if decision.app_name:
        rows.insert(1, ("App", decision.app_name + (f" ({decision.vendor_name})" if decision.vendor_name else "")))
    directive = decision.directive or {}
    if directive:
        label = " — ".join(v for v in (directive.get("id", ""), directive.get("title", "")) if v)
        rows.append(("Directive", label))
    if decision.contact:
        rows.append(("Questions", decision.contact))
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    reference = directive.get("reference", "")
    link = (
        f'<p><a href="{esc(reference)}" rel="noreferrer">Read the directive</a></p>'
        if reference.startswith(("https://", "http://"))
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{esc(title)}</h1><p>This request was not sent. Your organisation's AI-app policy does not allow it.</p>"
        f"<dl>{items}</dl>{link}"
        f"<footer>aipolicy · policy {esc(decision.policy)}</footer></body></html>"
    )


def json_error(decision: Decision) -> str:
    """An error body in the shape OpenAI- and Anthropic-compatible SDKs surface."""
    subject = decision.app_name or decision.host
    message = f"Blocked by your organisation's AI policy (aipolicy rule {decision.rule}): {decision.reason}"
    if decision.contact:
        message += f" Contact: {decision.contact}."
    body = {
        "type": "error",
        "error": {
            "message": message,
            "type": "permission_error",
            "code": "aipolicy_blocked",
            "param": None,
            "rule": decision.rule,
            "app": subject,
            "directive": (decision.directive or {}).get("id"),
            "policy": decision.policy,
        },
    }
    return json.dumps(body, ensure_ascii=True)
