"""What a blocked client sees: an HTML page for browsers, a JSON error for API
clients. Every value taken from the request or the policy is escaped."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping

from aipolicy.decision import Decision

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


def json_error(
    decision: Decision,
    *,
    lead: str = "Blocked by your organisation's AI policy",
    kind: str = "permission_error",
    code: str = "aipolicy_blocked",
    hint: str = "",
) -> str:
    """An error body in the shape OpenAI- and Anthropic-compatible SDKs surface."""
    subject = decision.app_name or decision.host
    message = f"{lead} (aipolicy rule {decision.rule}): {decision.reason}"
    if hint:
        message += f" {hint}"
    if decision.contact:
        message += f" Contact: {decision.contact}."
    body = {
        "type": "error",
        "error": {
            "message": message,
            "type": kind,
            "code": code,
            "param": None,
            "rule": decision.rule,
            "app": subject,
            "directive": (decision.directive or {}).get("id"),
            "policy": decision.policy,
        },
    }
    return json.dumps(body, ensure_ascii=True)


def warn_page(
    decision: Decision,
    url: str,
    *,
    action: str,
    token: str,
    return_to: str,
    justification: str,
    message: str = "",
    remember: str = "",
    error: str = "",
) -> str:
    """The interstitial of a ``warn`` rule: what the app is, why it is discouraged, and a form
    that acknowledges the warning (with a justification when the policy asks for one)."""
    esc = html.escape
    subject = decision.app_name or decision.host
    rows = [("Address", url), ("App", subject), ("Rule", decision.rule), ("Why", decision.reason)]
    directive = decision.directive or {}
    if directive.get("id"):
        rows.append(("Directive", directive["id"]))
    if decision.contact:
        rows.append(("Questions", decision.contact))
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    field = ""
    if justification != "none":
        required = " required" if justification == "required" else ""
        label = "Business justification" + (" (required)" if required else " (optional)")
        field = (
            f'<label for="j">{label}</label>'
            f'<textarea id="j" name="justification" rows="3" maxlength="500"{required}></textarea>'
        )
    problem = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    note = f"<p>{esc(message)}</p>" if message else ""
    lasts = f" Your acknowledgement lasts {esc(remember)}." if remember else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Check before you continue: {esc(subject)}</title><style>{_STYLE}{_WARN_STYLE}</style></head><body>"
        f'<h1 class="warn">Check before you continue</h1>{note}'
        f"<p>Your organisation's AI policy asks you to confirm before using {esc(subject)}. "
        f"Do not enter confidential or personal data.{lasts} Your choice is recorded.</p>"
        f"<dl>{items}</dl>{problem}"
        f'<form method="post" action="{esc(action)}">'
        f'<input type="hidden" name="token" value="{esc(token)}">'
        f'<input type="hidden" name="return" value="{esc(return_to)}">'
        f'{field}<button type="submit">I understand, continue</button></form>'
        f"<footer>aipolicy · policy {esc(decision.policy)}</footer></body></html>"
    )


_WARN_STYLE = (
    "h1.warn{color:#8a4b00}label{display:block;font-weight:600;margin-top:1rem}"
    "textarea{width:100%;box-sizing:border-box;font:inherit}button{margin-top:1rem;font:inherit;padding:.4rem 1rem}"
    ".error{color:#9b1c1c;font-weight:600}"
)
