"""The evidence pack for people: `report.md` and `index.html`.

The same content as `evidence.json`; every input string is escaped, and the HTML
carries no script and loads nothing.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from scenarios.durations import format_duration

# --------------------------------------------------------------------------- for people


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fmt_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    number = _num(value)
    return f"{number:.6g}" if number is not None else str(value)


def _fmt_pct(value: Any) -> str:
    number = _num(value)
    return "—" if number is None else f"{100 * number:.3f} %"


def _fmt_s(value: Any) -> str:
    number = _num(value)
    return "—" if number is None else f"{number:.1f} s"


def _fmt_usd_delta(row: Mapping[str, Any]) -> str:
    delta = _num(row.get("cost_delta_usd"))
    if delta is None:
        return "—"
    pct = _num(row.get("cost_delta_pct"))
    text = f"{delta:+.6f} $/req"
    return text if pct is None else f"{text} ({pct:+.1f} %)"


def _fmt_quality(value: Any) -> str:
    number = _num(value)
    return "—" if number is None else f"{number:+.3f}"


def _served(row: Mapping[str, Any]) -> str:
    served = row.get("served_by") or {}
    return ", ".join(f"{name} ({count})" for name, count in served.items()) or "—"


def _fmt_t(value: Any) -> str:
    """A time from scenario start as the scenario files write it (`17m`, `2h30m`)."""
    number = _num(value)
    return "—" if number is None else format_duration(number)


def _window(row: Mapping[str, Any]) -> str:
    window = row.get("window_s")
    if not window:
        return "—"
    return f"{_fmt_t(window[0])} – {_fmt_t(window[1])}"


class _Code(str):
    """A cell holding a literal (an id, a hash, an SLO as written): shown verbatim as code."""

    __slots__ = ()


def _verdict(ok: Any) -> str:
    return "PASS" if ok else "FAIL"


def _meta_rows(pack: Mapping[str, Any]) -> list[list[str]]:
    meta = pack.get("meta", {})
    keys = (
        ("pack id", "pack_id"),
        ("tool", "tool"),
        ("tool version", "tool_version"),
        ("git commit", "git_commit"),
        ("engine", "engine"),
        ("policy", "policy"),
        ("policy file", "policy_file"),
        ("policy sha256", "policy_sha256"),
        ("started (UTC)", "started_utc"),
        ("finished (UTC)", "finished_utc"),
        ("host", "host"),
        ("python", "python"),
        ("overrides (--set)", "overrides"),
        ("previous pack's manifest sha256", "previous_manifest_sha256"),
    )
    rows: list[list[str]] = []
    for label, key in keys:
        if key not in meta:
            continue
        value = meta[key]
        if isinstance(value, list):
            rows.append([label, _Code(" ".join(str(v) for v in value)) if value else "none"])
        else:
            rows.append([label, "—" if value is None else _Code(value)])
    seeds = meta.get("seeds") or {}
    rows.append(["seeds", "; ".join(f"{k}: {v}" for k, v in seeds.items()) or "—"])
    return rows


def _slo_rows(scenario: Mapping[str, Any]) -> list[list[str]]:
    return [
        [
            _Code(slo.get("declared", "")),
            _fmt_value(slo.get("observed")),
            _verdict(slo.get("ok")),
        ]
        for slo in scenario.get("slos", [])
    ]


def _fault_rows(scenario: Mapping[str, Any]) -> list[list[str]]:
    return [
        [
            _Code(f.get("id")),
            str(f.get("kind")),
            _Code(", ".join(f.get("hits") or [])),
            _fmt_t(f.get("start_s")),
            _fmt_t(f.get("end_s")) if f.get("end_s") is not None else "open-ended",
            _fmt_s(f.get("ttd_s")),
            _fmt_s(f.get("ttf_s")),
            _fmt_s(f.get("ttr_s")),
        ]
        for f in scenario.get("faults", [])
    ]


MATRIX_HEADERS = (
    "removed",
    "kind",
    "scenario / fault",
    "window",
    "served by (ok attempts)",
    "success rate",
    "TTF",
    "cost delta",
    "quality delta",
    "verified",
)
FAULT_HEADERS = ("fault", "kind", "hits", "start", "end", "TTD", "TTF", "TTR")
DRILL_HEADERS = (
    "removed",
    "fault",
    "routes",
    "requests",
    "answered",
    "served by",
    "failed (gateway reason)",
    "fault applied",
    "verdict",
)
CONTROL_HEADERS = ("framework", "control", "requirement", "evidenced by", "in this pack", "status")
SIGN_OFF_HEADERS = ("responsibility", "name", "role", "date", "signature")


def _matrix_rows(pack: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for row in pack.get("substitutability", []):
        where = "—" if row.get("scenario") is None else f"{row['scenario']} / {row['fault']}"
        served = _served(row)
        rows.append(
            [
                _Code(row.get("subject")),
                str(row.get("kind")),
                where if where == "—" else _Code(where),
                _window(row),
                served if served == "—" else _Code(served),
                _fmt_pct(row.get("success_rate")),
                _fmt_s(row.get("ttf_s")),
                _fmt_usd_delta(row),
                _fmt_quality(row.get("quality_delta")),
                _verified(row),
            ]
        )
    return rows


def _verified(row: Mapping[str, Any]) -> str:
    """`verified`, plus the live drill's verdict on rows of a drilled subject."""
    live = row.get("live")
    verified = str(row.get("verified"))
    return verified if live is None else f"{verified}; live drill {live}"


def _fault_text(fault: Mapping[str, Any]) -> str:
    target = fault.get("target") or {}
    on = [*target.get("deployments", []), *target.get("domains", [])]
    return f"{fault.get('kind')} on {', '.join(str(t) for t in on)}"


def _drill_rows(pack: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for d in pack.get("live_drills", []):
        served = ", ".join(f"{name} ({n})" for name, n in (d.get("served_by") or {}).items())
        reasons = ", ".join(f"{why} ({n})" for why, n in (d.get("failed_reasons") or {}).items())
        passed = d.get("passed")
        verdict = str(d.get("verdict")) if passed is None else _verdict(passed)
        lonely = d.get("no_alternative") or []
        if lonely:
            verdict += f" (no alternative left: {', '.join(str(r) for r in lonely)})"
        removed = ", ".join(d.get("served_by_removed") or [])
        if removed:
            verdict += f" (answered by removed {removed})"
        hits = d.get("fault_hits")
        rows.append(
            [
                _Code(d.get("subject")),
                _Code(_fault_text(d.get("fault") or {})),
                _Code(", ".join(d.get("routes") or [])) if d.get("routes") else "—",
                str(d.get("requests", 0)),
                str(d.get("answered", 0)),
                _Code(served) if served else "—",
                _Code(reasons) if reasons else "—",
                "—" if hits is None else f"{hits} time(s)",
                verdict,
            ]
        )
    return rows


DRILLS_TEXT = (
    "Proof that each fallback is wired, over real HTTP: for each deployment and failure domain "
    "of the policy, a fresh gateway (fresh breakers) with this policy in front of fake providers "
    "speaking each vendor's wire format; one fault in the fakes removes the subject (a vendor "
    "5xx, an edge 5xx, or failed name resolution), then plain chat requests go to every route "
    "whose chain contains a removed deployment. A drill passes when every request is answered "
    "by a deployment that was not removed; a route with no alternative left fails, as a finding. "
    "Served by is the gateway's x-blastradius-deployment header; failure reasons its "
    "x-blastradius-reason header; fault applied is how often the fakes applied the fault."
)


def _drills_line(summary: Mapping[str, Any]) -> str:
    """The summary's sentence on live drills; empty for a pack without them."""
    if "live_drills" not in summary:
        return ""
    return (
        f"Live fallback drills: {summary.get('live_drills_passed', 0)}/"
        f"{summary.get('live_drills', 0)} passed over real HTTP."
    )


def _control_rows(pack: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for c in pack.get("controls", []):
        requirement = str(c.get("requirement", ""))
        requirement = f"“{requirement}”" if c.get("quoted") else f"(summary) {requirement}"
        rows.append(
            [
                str(c.get("framework")),
                f"{c.get('control')} — {c.get('title')}",
                f"{requirement} Source: {c.get('source')}",
                str(c.get("evidence")),
                _Code(" ".join(c.get("where") or [])),
                str(c.get("status")),
            ]
        )
    return rows


def _skipped_rows(pack: Mapping[str, Any]) -> list[list[str]]:
    return [[_Code(row.get("scenario")), str(row.get("reason"))] for row in pack.get("skipped", [])]


def _sign_off_rows(pack: Mapping[str, Any]) -> list[list[str]]:
    return [
        [str(row.get(key, "")) for key in ("responsibility", "name", "role", "date", "signature")]
        for row in pack.get("sign_off", [])
    ]


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")
_BACKTICKS = re.compile(r"`+")


def _md(text: Any) -> str:
    """Text safe in Markdown prose and table cells: HTML escaped, markup characters escaped.

    Escaping `<` and `&` stops raw HTML (Markdown renderers pass it through); escaping
    the emphasis, link, code and pipe characters keeps a scenario's text from changing
    the document's structure.
    """
    escaped = html.escape(str(text), quote=False)
    escaped = _MD_SPECIAL.sub(r"\\\1", escaped)
    return " ".join(escaped.split())


def _code_span(text: Any, *, in_table: bool = True) -> str:
    """A literal as a code span: shown exactly (no HTML, no markup), on one line.

    The fence is one backtick longer than any run inside; pipes are still escaped in
    tables because GitHub splits cells before it reads code spans.
    """
    body = " ".join(str(text).split())
    if not body:
        return ""
    if in_table:
        body = body.replace("|", "\\|")
    longest = max((len(run) for run in _BACKTICKS.findall(body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


_PLAIN_URL = re.compile(r"^https?://[^\s<>`\\]+$")


def _md_source(source: Mapping[str, Any]) -> str:
    """`title: <url>`; a URL that is not plainly one is shown as code, never as a link."""
    title = _md(source.get("title", ""))
    url = source.get("url")
    if not url:
        return title
    shown = f"<{url}>" if _PLAIN_URL.match(str(url)) else _code_span(url, in_table=False)
    return f"{title}: {shown}"


def _md_cell(cell: str) -> str:
    return (_code_span(cell) if isinstance(cell, _Code) else _md(cell)) or " "


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in headers) + " |"]
    lines.append("|" + "---|" * len(headers))
    for row in rows:
        lines.append("| " + " | ".join(_md_cell(cell) for cell in row) + " |")
    return [*lines, ""]


INTEGRITY_TEXT = (
    "Every file of this pack except MANIFEST.sha256 and CHAIN.json is listed with its SHA-256 in "
    "MANIFEST.sha256 (sha256sum format). CHAIN.json holds the SHA-256 of MANIFEST.sha256 and of "
    "the previous pack's manifest; the previous link is also recorded in evidence.json, which "
    "the manifest covers. To check: `blastradius evidence verify DIR` (exit 0 intact, 1 naming "
    "each altered, missing or added file), or `sha256sum -c MANIFEST.sha256` inside the pack and "
    "`sha256sum MANIFEST.sha256` compared with CHAIN.json's manifest_sha256. To re-perform a "
    "run: `blastradius run SCENARIO --policy POLICY --seed N` with the copied files and seeds "
    "reproduces the same journal."
)


def report_markdown(pack: Mapping[str, Any]) -> str:
    """report.md: the pack for people reading text (and rendering Markdown).

    Every value from the inputs (titles, assumptions, ids) is escaped, so a scenario
    cannot inject markup or break a table.
    """
    summary = pack.get("summary", {})
    verdict = "PASS" if pack.get("passed") else "FAIL"
    out = [f"# {_md(pack.get('title', 'Resilience test evidence'))}", ""]
    out += [
        f"**Result: {verdict}** — {summary.get('passed', 0)}/{summary.get('scenarios', 0)} "
        f"scenario(s) passed, {summary.get('slos_held', 0)}/{summary.get('slos', 0)} SLOs held; "
        f"{summary.get('subjects_tested', 0)}/{summary.get('subjects', 0)} deployments and "
        f"failure domains removed by a fault while traffic depended on them. Engine: "
        f"{_md(pack.get('meta', {}).get('engine', 'sim'))} (simulated providers)."
        f"{' ' + _md(_drills_line(summary)) if _drills_line(summary) else ''}",
        "",
        "## Run metadata",
        "",
    ]
    out += _md_table(("field", "value"), _meta_rows(pack))
    out += ["## Inputs", ""]
    out += _md_table(
        ("file", "kind", "sha256"),
        [
            [_Code(i.get("path")), str(i.get("kind")), _Code(i.get("sha256"))]
            for i in pack.get("inputs", [])
        ],
    )
    out += [
        "## Results against pre-declared criteria",
        "",
        "The pass/fail criteria are each scenario's SLOs as written in its file, which was "
        "copied into this pack (hash above) before the run started.",
        "",
    ]
    for s in pack.get("scenarios", []):
        out += [f"### {_md(s.get('id'))} — {_md(s.get('title'))}: {_verdict(s.get('passed'))}", ""]
        out += [_md(s.get("description", "")), ""]
        out += [
            f"File {_code_span(s.get('file'), in_table=False)}; seeds "
            f"{_md(', '.join(str(seed) for seed in s.get('seeds', [])))}; score "
            f"{_fmt_value(s.get('score'))}; run files: "
            f"{', '.join(_code_span(f, in_table=False) for f in s.get('run_files', []))}.",
            "",
        ]
        out += _md_table(("declared SLO (as written)", "observed", "result"), _slo_rows(s))
        if s.get("hard_failures"):
            out += [f"Hard failures: {_md('; '.join(s['hard_failures']))}", ""]
        if s.get("faults"):
            out += _md_table(FAULT_HEADERS, _fault_rows(s))
        out += ["Sources:", ""]
        out += [f"- {_md_source(src)}" for src in s.get("sources", [])]
        out += [""]
    if pack.get("skipped"):
        out += ["### Not run", ""]
        out += _md_table(("scenario", "why"), _skipped_rows(pack))
    out += [
        "## Substitutability matrix",
        "",
        "For each deployment and failure domain of the policy: the fault that removed it (hit "
        "every deployment carrying it), the deployments that then answered the traffic of the "
        "routes depending on it, that traffic's success rate, time to fail over, cost per "
        "request against before the first fault, and quality delta (declared quality scores of "
        "the alternates minus the removed; — when the policy declares none).",
        "",
    ]
    out += _md_table(MATRIX_HEADERS, _matrix_rows(pack))
    if "live_drills" in pack:
        out += ["## Live fallback drills", "", _md(DRILLS_TEXT), ""]
        out += _md_table(DRILL_HEADERS, _drill_rows(pack))
    out += ["## Control mapping", ""]
    out += _md_table(CONTROL_HEADERS, _control_rows(pack))
    scope = pack.get("scope", {})
    out += ["## Scope and limitations", "", "What this pack shows:", ""]
    out += [f"- {_md(item)}" for item in scope.get("shows", [])]
    out += ["", "What simulation and fake providers cannot show:", ""]
    out += [f"- {_md(item)}" for item in scope.get("cannot_show", [])]
    out += ["", "Each scenario's assumptions, as written:", ""]
    for a in scope.get("assumptions", []):
        out += [
            f"**{_md(a.get('scenario'))}**",
            "",
            f"> {_md(a.get('text') or '(none stated)')}",
            "",
        ]
    out += ["## Integrity", "", _md(INTEGRITY_TEXT), ""]
    out += ["## Sign-off", ""]
    out += _md_table(SIGN_OFF_HEADERS, _sign_off_rows(pack))
    return "\n".join(out).rstrip() + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:80rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border:1px solid #bbb;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#eee}
.pass{color:#064;font-weight:bold} .fail{color:#a00;font-weight:bold}
td.blank{min-width:10rem;height:2.5rem}
blockquote{border-left:4px solid #ccc;margin:.5rem 0;padding:.2rem 1rem;color:#444}
code{background:#f4f4f4;padding:0 .2rem}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, blank: bool = False
) -> list[str]:
    out = ["<table>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>"]
    for row in rows:
        cells = []
        for cell in row:
            cls = {"PASS": "pass", "FAIL": "fail"}.get(cell, "blank" if blank and not cell else "")
            attr = f' class="{cls}"' if cls else ""
            text = f"<code>{_e(cell)}</code>" if isinstance(cell, _Code) and cell else _e(cell)
            cells.append(f"<td{attr}>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return [*out, "</table>"]


def index_html(pack: Mapping[str, Any]) -> str:
    """index.html: one self-contained page (inline CSS, no script, nothing fetched).

    A Content-Security-Policy forbids scripts and network loads, and every value is
    HTML-escaped, so the page is safe to open from an untrusted pack.
    """
    summary = pack.get("summary", {})
    verdict = "PASS" if pack.get("passed") else "FAIL"
    title = _e(pack.get("title", "Resilience test evidence"))
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<p><strong class="{verdict.lower()}">Result: {verdict}</strong> — '
        f"{_e(summary.get('passed', 0))}/{_e(summary.get('scenarios', 0))} scenario(s) passed, "
        f"{_e(summary.get('slos_held', 0))}/{_e(summary.get('slos', 0))} SLOs held; "
        f"{_e(summary.get('subjects_tested', 0))}/{_e(summary.get('subjects', 0))} deployments "
        "and failure domains removed by a fault while traffic depended on them. Engine: "
        f"{_e(pack.get('meta', {}).get('engine', 'sim'))} (simulated providers)."
        f"{' ' + _e(_drills_line(summary)) if _drills_line(summary) else ''}</p>",
        '<h2 id="run-metadata">Run metadata</h2>',
    ]
    out += _html_table(("field", "value"), _meta_rows(pack))
    out += ['<h2 id="inputs">Inputs</h2>']
    out += _html_table(
        ("file", "kind", "sha256"),
        [
            [_Code(i.get("path")), str(i.get("kind")), _Code(i.get("sha256"))]
            for i in pack.get("inputs", [])
        ],
    )
    out += [
        '<h2 id="results">Results against pre-declared criteria</h2>',
        "<p>The pass/fail criteria are each scenario's SLOs as written in its file, which was "
        "copied into this pack (hash above) before the run started.</p>",
    ]
    for s in pack.get("scenarios", []):
        out += [
            f"<h3>{_e(s.get('id'))} — {_e(s.get('title'))}: {_verdict(s.get('passed'))}</h3>",
            f"<p>{_e(s.get('description', ''))}</p>",
            f"<p>File <code>{_e(s.get('file'))}</code>; seeds {_e(s.get('seeds'))}; score "
            f"{_e(_fmt_value(s.get('score')))}; run files: "
            f"{_e(', '.join(s.get('run_files', [])))}.</p>",
        ]
        out += _html_table(("declared SLO (as written)", "observed", "result"), _slo_rows(s))
        if s.get("hard_failures"):
            out += [f"<p>Hard failures: {_e('; '.join(s['hard_failures']))}</p>"]
        if s.get("faults"):
            out += _html_table(FAULT_HEADERS, _fault_rows(s))
        sources = [
            f"<li>{_e(src.get('title'))} — {_e(src.get('url') or '')}</li>"
            for src in s.get("sources", [])
        ]
        out += ["<p>Sources:</p><ul>", *sources, "</ul>"]
    if pack.get("skipped"):
        out += ["<h3>Not run</h3>"]
        out += _html_table(("scenario", "why"), _skipped_rows(pack))
    out += [
        '<h2 id="substitutability-matrix">Substitutability matrix</h2>',
        "<p>For each deployment and failure domain of the policy: the fault that removed it, "
        "the deployments that then answered the traffic of the routes depending on it, that "
        "traffic's success rate, time to fail over, cost per request against before the first "
        "fault, and quality delta (— when the policy declares no quality scores).</p>",
    ]
    out += _html_table(MATRIX_HEADERS, _matrix_rows(pack))
    if "live_drills" in pack:
        out += [
            '<h2 id="live-fallback-drills">Live fallback drills</h2>',
            f"<p>{_e(DRILLS_TEXT)}</p>",
        ]
        out += _html_table(DRILL_HEADERS, _drill_rows(pack))
    out += ['<h2 id="control-mapping">Control mapping</h2>']
    out += _html_table(CONTROL_HEADERS, _control_rows(pack))
    scope = pack.get("scope", {})
    out += ['<h2 id="scope">Scope and limitations</h2>', "<p>What this pack shows:</p><ul>"]
    out += [f"<li>{_e(item)}</li>" for item in scope.get("shows", [])]
    out += ["</ul><p>What simulation and fake providers cannot show:</p><ul>"]
    out += [f"<li>{_e(item)}</li>" for item in scope.get("cannot_show", [])]
    out += ["</ul><p>Each scenario's assumptions, as written:</p>"]
    for a in scope.get("assumptions", []):
        out += [
            f"<h4>{_e(a.get('scenario'))}</h4>",
            f"<blockquote>{_e(a.get('text') or '(none stated)')}</blockquote>",
        ]
    out += ['<h2 id="integrity">Integrity</h2>', f"<p>{_e(INTEGRITY_TEXT)}</p>"]
    out += ['<h2 id="sign-off">Sign-off</h2>']
    out += _html_table(SIGN_OFF_HEADERS, _sign_off_rows(pack), blank=True)
    out += ["</body></html>"]
    return "\n".join(out) + "\n"
