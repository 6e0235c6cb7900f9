"""A compliance report: one self-contained HTML page from the event log.

    reader = read_events(paths, since=..., until=..., kinds=REPORT_KINDS)
    report = collect_report(reader, EventFilter(), since=..., until=...)
    html = render_report(report, verification=NOT_CHECKED)

``collect_report`` counts in one streaming pass (memory grows with the number of
distinct users, apps, days … never with the number of events); ``render_report``
is pure: data in, an HTML string out. The page has no scripts and loads nothing:
inline CSS, charts drawn as inline SVG, every value from the log HTML-escaped
(log lines are hostile), and a Content-Security-Policy that forbids scripts even
if something slipped through.
"""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aipolicy.eventlog import LogEvent

from ._summary import EventFilter, _Tally, as_text, who

REPORT_KINDS = ("decision", "evasion", "policy_loaded", "policy_rejected")
WARN_ACTIONS = ("warn", "proceed")  # a warning shown, and the user carrying on past it
MAX_CHART_DAYS = 366  # a forged timestamp in year 0001 must not draw 740,000 bars
MAX_LISTED = 100  # rows of the lists that are not top-N (directives, evasion kinds): forged values are endless
_LABEL_CHARACTERS = 48
# C0/C1 controls, zero-width and bidirectional controls: they could reorder or hide what is shown.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


@dataclass(frozen=True)
class Verification:
    """What a check of the log's integrity found (``aipolicy log verify``), shown in its own section.

    ``status``: ``not-checked``, ``verified`` or ``failed``; ``details``: lines such as
    "events.jsonl:120: hash chain broken"."""

    status: str
    message: str
    details: tuple[str, ...] = ()


NOT_CHECKED = Verification(
    "not-checked", "The log's integrity was not checked for this report. Run `aipolicy log verify` on the same files."
)


@dataclass(frozen=True)
class Row:
    """One line of a top-N table: a name and its events."""

    name: str | None
    count: int
    users: int
    first: str
    last: str


@dataclass(frozen=True)
class PolicyVersion:
    hash: str
    events: int  # events that name it (decisions, evasion, policy loads)
    first: str
    last: str


@dataclass
class Report:
    """Everything the page shows; built by ``collect_report``, drawn by ``render_report``."""

    since: str | None = None
    until: str | None = None
    total: int = 0  # decision events
    users: int = 0
    first: str | None = None
    last: str | None = None
    actions: dict[str, int] = field(default_factory=dict)
    days: dict[str, int] = field(default_factory=dict)  # attempts per UTC day, in day order
    top_users: list[Row] = field(default_factory=list)
    top_apps: list[Row] = field(default_factory=list)
    top_vendors: list[Row] = field(default_factory=list)
    directives: list[Row] = field(default_factory=list)  # most attempts first, up to MAX_LISTED
    directive_count: int = 0  # distinct directives, listed or not
    evasion_total: int = 0
    evasion_kinds: list[Row] = field(default_factory=list)
    evasion_users: list[Row] = field(default_factory=list)
    warned: int = 0
    proceeded: int = 0
    policies: list[PolicyVersion] = field(default_factory=list)  # in order of first appearance
    skipped: int = 0  # unreadable lines (set by the caller from the reader's SkipReport)
    skipped_text: str = ""
    sources: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    generated: str = ""
    current_policy: str | None = None  # hash of the policy file given, if any
    directive_titles: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The figures, for tests and scripts."""
        rows = ("top_users", "top_apps", "top_vendors", "directives", "evasion_kinds", "evasion_users")
        return {
            "total": self.total,
            "users": self.users,
            "first": self.first,
            "last": self.last,
            "actions": dict(self.actions),
            "days": dict(self.days),
            **{name: [row.__dict__ for row in getattr(self, name)] for name in rows},
            "evasion_total": self.evasion_total,
            "warned": self.warned,
            "proceeded": self.proceeded,
            "policies": [policy.__dict__ for policy in self.policies],
            "skipped": self.skipped,
        }


def _add(table: dict[str | None, _Tally], key: str | None, ts: str, user: str | None) -> None:
    tally = table.get(key)
    if tally is None:
        tally = table[key] = _Tally()
    tally.add(ts, user)


def _rows(table: dict[str | None, _Tally], top: int | None) -> list[Row]:
    rows = [Row(key, t.count, len(t.users), t.first, t.last) for key, t in table.items()]
    rows.sort(key=lambda row: (-row.count, row.name is None, row.name or ""))
    return rows if top is None else rows[:top]


def collect_report(
    events: Iterable[LogEvent],
    event_filter: EventFilter | None = None,
    *,
    since: str | None = None,
    until: str | None = None,
    top: int = 10,
) -> Report:
    """Count decision and evasion events (those the filter keeps) and the policy versions seen.

    ``events`` come from a reader asked for ``REPORT_KINDS``. The policy versions are
    those in force in the period, whatever the filter: every event's ``policy`` counts."""
    event_filter = event_filter or EventFilter()
    overall = _Tally()
    tables: dict[str, dict[str | None, _Tally]] = {
        name: {} for name in ("user", "app", "vendor", "directive", "evasion", "evasion_user")
    }
    users, apps, vendors, directives = tables["user"], tables["app"], tables["vendor"], tables["directive"]
    actions: dict[str, int] = {}
    days: dict[str, int] = {}
    policies: dict[str | None, _Tally] = {}
    evasion_total = 0
    for ts, data, _, _ in events:
        policy = data.get("policy")
        if policy and type(policy) is str:
            _add(policies, policy, ts, None)
        kind = data.get("event")
        if kind not in ("decision", "evasion") or (event_filter and not event_filter.matches(data)):
            continue
        user = data.get("user")
        if not user or type(user) is not str:
            user = who(data)
        if kind == "evasion":
            evasion_total += 1
            _add(tables["evasion"], as_text(data.get("evasion")), ts, user)
            _add(tables["evasion_user"], user, ts, user)
            continue
        overall.add(ts, user)
        action = as_text(data.get("action")) or "?"
        actions[action] = actions.get(action, 0) + 1
        days[ts[:10]] = days.get(ts[:10], 0) + 1
        _add(users, user, ts, user)
        _add(apps, as_text(data.get("app")), ts, user)
        _add(vendors, as_text(data.get("vendor")), ts, user)
        _add(directives, as_text(data.get("directive")), ts, user)
    return Report(
        since=since,
        until=until,
        total=overall.count,
        users=len(overall.users),
        first=overall.first if overall.count else None,
        last=overall.last if overall.count else None,
        actions=dict(sorted(actions.items(), key=lambda item: (-item[1], item[0]))),
        days=dict(sorted(days.items())),
        top_users=_rows(users, top),
        top_apps=_rows(apps, top),
        top_vendors=_rows(vendors, top),
        directives=_rows({key: tally for key, tally in directives.items() if key is not None}, MAX_LISTED),
        directive_count=len(directives) - (None in directives),
        evasion_total=evasion_total,
        evasion_kinds=_rows(tables["evasion"], MAX_LISTED),
        evasion_users=_rows(tables["evasion_user"], top),
        warned=actions.get("warn", 0),
        proceeded=actions.get("proceed", 0),
        policies=[
            PolicyVersion(name, t.count, t.first, t.last)
            for name, t in sorted(policies.items(), key=lambda item: (item[1].first, item[0]))
            if name is not None
        ],
    )


# --- rendering ----------------------------------------------------------------------------------


def _text(value: object, limit: int | None = None) -> str:
    """A value from the log, ready for HTML: controls removed, clipped, escaped (quotes too)."""
    text = _CONTROL.sub("", as_text(value) or "")
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=True)


def _name(value: str | None, limit: int | None = None) -> str:
    return _text(value, limit) if value else '<span class="none">(none)</span>'


def _when(ts: str | None) -> str:
    return _text(f"{ts[:10]} {ts[11:19]}") if ts else "—"


def _count(number: int) -> str:
    return f"{number:,}"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def _day_range(days: Mapping[str, int]) -> tuple[list[tuple[str, int]], int]:
    """Every day from the first to the last with attempts (at most MAX_CHART_DAYS), and how many were left out."""
    dates = []
    for day in days:
        try:
            dates.append(datetime.date.fromisoformat(day))
        except ValueError:  # a forged day such as 2026-02-31
            continue
    if not dates:
        return [], 0
    first, last = min(dates), max(dates)
    span = (last - first).days + 1
    start = max(first, last - datetime.timedelta(days=MAX_CHART_DAYS - 1))
    shown = [(start + datetime.timedelta(days=n)).isoformat() for n in range((last - start).days + 1)]
    left_out = sum(1 for date in dates if date < start)
    return [(day, days.get(day, 0)) for day in shown], left_out if span > MAX_CHART_DAYS else 0


def day_chart(days: Mapping[str, int]) -> str:
    """Attempts per day as an SVG bar chart, with the figures in each bar's title and axis labels."""
    series, left_out = _day_range(days)
    if not series:
        return '<p class="none">No attempts in this period.</p>'
    peak = max(count for _, count in series) or 1
    width, height, left, bottom, top_gap = 720, 220, 44, 36, 12
    plot_width, plot_height = width - left - 8, height - bottom - top_gap
    step = plot_width / len(series)
    bar = max(step * 0.8, 0.5)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"'
        f' aria-labelledby="days-title"><title id="days-title">Attempts per day, {_text(series[0][0])} to '
        f"{_text(series[-1][0])}; most on one day: {_count(peak)}</title>",
        f'<line class="axis" x1="{left}" y1="{top_gap}" x2="{left}" y2="{top_gap + plot_height}"/>',
        f'<line class="axis" x1="{left}" y1="{top_gap + plot_height}" x2="{width - 8}" y2="{top_gap + plot_height}"/>',
        f'<text class="tick" x="{left - 6}" y="{top_gap + 4}" text-anchor="end">{_count(peak)}</text>',
        f'<text class="tick" x="{left - 6}" y="{top_gap + plot_height}" text-anchor="end">0</text>',
        f'<line class="grid" x1="{left}" y1="{top_gap}" x2="{width - 8}" y2="{top_gap}"/>',
    ]
    label_every = max(1, len(series) // 8)
    for index, (day, count) in enumerate(series):
        x = left + index * step + (step - bar) / 2
        bar_height = plot_height * count / peak
        y = top_gap + plot_height - bar_height
        parts.append(
            f'<rect class="bar" x="{x:.2f}" y="{y:.2f}" width="{bar:.2f}" height="{bar_height:.2f}">'
            f"<title>{_text(day)}: {_count(count)}</title></rect>"
        )
        if len(series) <= 31 and count:  # few bars: write each figure above its bar
            parts.append(
                f'<text class="tick" x="{left + (index + 0.5) * step:.2f}" y="{y - 3:.2f}" '
                f'text-anchor="middle">{_count(count)}</text>'
            )
        if index % label_every == 0 or index == len(series) - 1:
            if index % label_every and index % label_every < label_every / 2:
                continue  # the last day, too close to the previous label
            parts.append(
                f'<text class="tick" x="{left + (index + 0.5) * step:.2f}" y="{height - bottom + 16}" '
                f'text-anchor="middle">{_text(day[5:])}</text>'
            )
    parts.append("</svg>")
    if left_out:
        parts.append(
            f'<p class="note">{_count(left_out)} earlier day(s) with attempts are not drawn (see the table).</p>'
        )
    return "".join(parts)


def bar_chart(rows: Sequence[Row], title: str) -> str:
    """Horizontal bars, one per row, the name and the count written beside each bar."""
    if not rows:
        return '<p class="none">None.</p>'
    peak = max(row.count for row in rows) or 1
    row_height, label_width, bar_width, width = 22, 230, 380, 700
    height = row_height * len(rows) + 4
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{_text(title)}</title>"
    ]
    for index, row in enumerate(rows):
        y = index * row_height + 2
        length = max(bar_width * row.count / peak, 1)
        name = _text(row.name, _LABEL_CHARACTERS) if row.name else "(none)"
        parts.append(
            f'<text class="label" x="{label_width - 8}" y="{y + 15}" text-anchor="end">{name}</text>'
            f'<rect class="bar" x="{label_width}" y="{y + 3}" width="{length:.2f}" height="{row_height - 7}">'
            f"<title>{_text(row.name) or '(none)'}: {_count(row.count)}</title></rect>"
            f'<text class="value" x="{label_width + length + 6:.2f}" y="{y + 15}">{_count(row.count)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    head = "".join(f'<th scope="col">{header}</th>' for header in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _row_table(rows: Sequence[Row], what: str, total: int) -> str:
    return _table(
        (what, "Attempts", "Share", "Users", "First seen", "Last seen"),
        (
            (
                _name(row.name),
                _count(row.count),
                _percent(row.count, total),
                _count(row.users),
                _when(row.first),
                _when(row.last),
            )
            for row in rows
        ),
        "numbers",
    )


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{title}</h2>{body}</section>'


def _figure(anchor: str, label: str, value: str) -> str:
    return f'<div class="figure"><dt>{label}</dt><dd id="{anchor}">{value}</dd></div>'


_STYLE = """
:root{color-scheme:light;--ink:#1b1f24;--muted:#57606a;--bar:#2f5d8a;--line:#d0d7de;--bad:#a40e26;--good:#116329}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--ink);
margin:0 auto;max-width:1000px;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);
padding-bottom:4px}
.meta{color:var(--muted);margin:0 0 12px}
dl.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px;margin:12px 0}
.figure{border:1px solid var(--line);border-radius:6px;padding:8px 12px}
.figure dt{color:var(--muted);font-size:12px}.figure dd{margin:0;font-size:22px;font-weight:600}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
table.numbers td:not(:first-child),table.numbers th:not(:first-child){text-align:right;white-space:nowrap}
.chart{width:100%;height:auto;display:block;margin:8px 0}
.chart .bar{fill:var(--bar);stroke:#000;stroke-width:.5}
.chart .axis{stroke:var(--ink);stroke-width:1}.chart .grid{stroke:var(--line);stroke-dasharray:3 3}
.chart text{font:11px system-ui,sans-serif;fill:var(--ink)}.chart .label{font-size:12px}
.none,.note{color:var(--muted)}
.status{font-weight:700;padding:2px 8px;border:2px solid currentColor;border-radius:4px;display:inline-block}
.status-verified{color:var(--good)}.status-failed{color:var(--bad)}.status-not-checked{color:var(--muted)}
.days{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:2px 16px;margin:4px 0}
.days div{display:flex;justify-content:space-between;border-bottom:1px dotted var(--line)}.days dd{margin:0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px}
footer{margin-top:32px;color:var(--muted);font-size:12px}
@media print{
 body{max-width:none;padding:0;font-size:11pt}
 .chart .bar{fill:#555;stroke:#000}
 section{break-inside:avoid-page}
 h2{break-after:avoid}
 .figure{border-color:#000}
 a{color:inherit;text-decoration:none}
}
"""


def _header(report: Report) -> str:
    period = f"{_when(report.since) if report.since else 'the beginning of the log'} → {_when(report.until) if report.until else 'now'} (UTC)"
    filters = ", ".join(_text(item) for item in report.filters) or "none (every recorded attempt)"
    sources = ", ".join(f"<code>{_text(source)}</code>" for source in report.sources) or "—"
    return (
        "<header><h1>AI-app policy: compliance report</h1>"
        f'<p class="meta">Period: {period}. Generated {_text(report.generated) or "—"}.</p>'
        f'<p class="meta">Filters: {filters}. Logs read: {sources}.</p></header>'
    )


def _totals(report: Report) -> str:
    blocked = report.actions.get("block", 0)
    figures = [
        _figure("total-attempts", "Attempts recorded", _count(report.total)),
        _figure("total-blocked", "Blocked", _count(blocked)),
        _figure("total-users", "Distinct users", _count(report.users)),
        _figure("total-evasion", "Evasion attempts", _count(report.evasion_total)),
        _figure("total-warned", "Warned", _count(report.warned)),
        _figure("total-skipped", "Unreadable log lines", _count(report.skipped)),
    ]
    actions = _table(
        ("Action", "Attempts", "Share"),
        ((_text(action), _count(count), _percent(count, report.total)) for action, count in report.actions.items()),
        "numbers",
    )
    seen = f'<p class="meta">First attempt: {_when(report.first)}; last attempt: {_when(report.last)}.</p>'
    skipped = f'<p class="note">{_text(report.skipped_text)}</p>' if report.skipped_text else ""
    return _section("totals", "Totals", f'<dl class="figures">{"".join(figures)}</dl>{seen}{actions}{skipped}')


def _per_day(report: Report) -> str:
    items = "".join(f"<div><dt>{_text(day)}</dt><dd>{_count(count)}</dd></div>" for day, count in report.days.items())
    listing = f'<dl class="days" aria-label="Attempts on each day with attempts">{items}</dl>' if items else ""
    return _section("per-day", "Attempts per day", day_chart(report.days) + listing)


def _tops(report: Report) -> str:
    blocks = []
    for anchor, title, rows, what in (
        ("top-users", "Top users", report.top_users, "User (or client address)"),
        ("top-apps", "Top apps", report.top_apps, "App"),
        ("top-vendors", "Top vendors", report.top_vendors, "Vendor"),
    ):
        blocks.append(_section(anchor, title, bar_chart(rows, title) + _row_table(rows, what, report.total)))
    return "".join(blocks)


def _directives(report: Report) -> str:
    rows = report.directives
    if not rows:
        return _section("directives", "By directive", '<p class="none">No attempt fell under a directive.</p>')
    table = _table(
        ("Directive", "Title", "Attempts", "Users", "First seen", "Last seen"),
        (
            (
                _name(row.name),
                _text(report.directive_titles.get(row.name or "", "")),
                _count(row.count),
                _count(row.users),
                _when(row.first),
                _when(row.last),
            )
            for row in rows
        ),
        "numbers",
    )
    more = report.directive_count - len(rows)
    note = (
        f'<p class="note">{_count(more)} more directive(s) with fewer attempts are not listed.</p>' if more > 0 else ""
    )
    return _section("directives", "By directive", bar_chart(rows, "Attempts by directive") + table + note)


def _evasion(report: Report) -> str:
    if not report.evasion_total:
        body = '<p class="none">No evasion attempts recorded.</p>'
    else:
        body = (
            f"<p>{_count(report.evasion_total)} request(s) showed signs of hiding where they went "
            "(a bare IP with an AI app's TLS name, a TLS name that differs from the Host header, "
            "a DNS-over-HTTPS resolver).</p>"
            + _row_table(report.evasion_kinds, "Kind", report.evasion_total)
            + "<h3>Who</h3>"
            + _row_table(report.evasion_users, "User (or client address)", report.evasion_total)
        )
    return _section("evasion", "Evasion attempts", body)


def _warnings(report: Report) -> str:
    if not (report.warned or report.proceeded):
        body = '<p class="none">No warn-and-proceed events recorded.</p>'
    else:
        body = (
            f'<p>Warned: <strong id="warned">{_count(report.warned)}</strong>; '
            f'proceeded after a warning: <strong id="proceeded">{_count(report.proceeded)}</strong> '
            f"({_percent(report.proceeded, report.warned)} of warnings).</p>"
        )
    return _section("warnings", "Warn and proceed", body)


def _policies(report: Report) -> str:
    if not report.policies:
        return _section("policies", "Policy versions in force", '<p class="none">No policy hash recorded.</p>')
    rows = [
        (
            f"<code>{_text(policy.hash)}</code>"
            + (" (the policy file given)" if policy.hash == report.current_policy else ""),
            _count(policy.events),
            _when(policy.first),
            _when(policy.last),
        )
        for policy in report.policies
    ]
    note = '<p class="note">Every event records the hash of the policy that decided it; this lists each hash seen in the period, whatever the filters.</p>'
    return _section(
        "policies",
        "Policy versions in force",
        _table(("Policy hash", "Events", "First seen", "Last seen"), rows, "numbers") + note,
    )


def _verification(verification: Verification) -> str:
    labels = {"verified": "Verified", "failed": "FAILED", "not-checked": "Not checked"}
    status = verification.status if verification.status in labels else "not-checked"
    details = "".join(f"<li><code>{_text(line)}</code></li>" for line in verification.details)
    body = (
        f'<p><span id="verification-status" class="status status-{status}">{labels[status]}</span> '
        f"{_text(verification.message)}</p>" + (f"<ul>{details}</ul>" if details else "")
    )
    return _section("verification", "Log verification", body)


def render_report(report: Report, verification: Verification = NOT_CHECKED) -> str:
    """The whole page: no scripts, no external resources, everything from the log escaped."""
    body = "".join(
        (
            _header(report),
            _totals(report),
            _per_day(report),
            _tops(report),
            _directives(report),
            _evasion(report),
            _warnings(report),
            _policies(report),
            _verification(verification),
            "<footer>Generated by aipolicy from the proxy's event log. Times are UTC.</footer>",
        )
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>AI-app policy report{(' ' + _text(report.since[:10])) if report.since else ''}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )
