"""`report.html`: one run's results as a single self-contained page, from results.json alone.

Why one file with nothing outside it: a run directory gets mailed, attached to a
ticket, archived in an evidence pack and opened years later, offline. So images
are embedded as `data:` URIs, the CSS is inline, there is no script and no link
to the network — and a Content-Security-Policy (`default-src 'none'`) makes a
browser refuse anything else, should a future edit slip one in.

Every string that comes from results (scenario and policy names, deployment ids,
SLO names, reasons) is HTML-escaped: a scenario file is user input, and its name
must not be able to change the page.

The page: title and verdict, the summary table (`id="summary"`, the headline
metrics), the SLO table, hard failures, the plots, per-fault timings, reason
counts and the provider load table.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape
from numbers import Real
from typing import Any

from scenarios.durations import format_duration

__all__ = ["SUMMARY_ROWS", "report_html"]

_Cell = str
_Row = Sequence[_Cell]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: Any, digits: int = 2) -> str:
    """A number as people read it: thousands separated, `digits` decimals unless integral."""
    if _missing(value):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Real):
        number = float(value)
        if number.is_integer() and abs(number) < 1e15:
            return f"{int(number):,}"
        return f"{number:,.{digits}f}"
    return str(value)


def _percent(value: Any) -> str:
    return "—" if _missing(value) else f"{100.0 * float(value):.3f} %"


def _seconds(value: Any) -> str:
    """Seconds in the scenario files' own notation (`1m0.6s`), or `0.25s` under a second."""
    if _missing(value):
        return "—"
    seconds = float(value)
    return format_duration(round(seconds, 1)) if seconds >= 1 else f"{seconds:.2f}s"


def _usd(value: Any) -> str:
    return "—" if _missing(value) else f"${float(value):,.2f}"


def _ratio(value: Any) -> str:
    return "—" if _missing(value) else f"{float(value):.2f}×"


def _yes_no(value: Any) -> str:
    if _missing(value):
        return "—"
    return "yes" if value else "NO"


def _observed(value: Any) -> str:
    """An SLO's observed value: booleans as yes/no, numbers to 4 significant digits."""
    if _missing(value):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Real):
        return f"{float(value):.4g}"
    return str(value)


SUMMARY_ROWS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("requests", "requests", _number),
    ("availability", "availability", _percent),
    ("availability during faults", "availability_during_faults", _percent),
    ("goodput", "goodput_rps", lambda v: "—" if _missing(v) else f"{float(v):.3f} req/s"),
    ("amplification", "amplification", _ratio),
    ("amplification peak (60 s)", "amplification_peak", _ratio),
    ("time to detect (TTD)", "ttd_s", _seconds),
    ("time to fail over (TTF)", "ttf_s", _seconds),
    ("time to return (TTR)", "ttr_s", _seconds),
    ("cost", "cost_usd", _usd),
    ("cost per 1k requests", "cost_per_1k_requests_usd", _usd),
    ("latency p50", "latency_p50_s", _seconds),
    ("latency p99", "latency_p99_s", _seconds),
    ("compliance violations", "compliance_violations", _number),
    ("truncated successes", "truncated_successes", _number),
    ("recovered", "recovered", _yes_no),
)
"""The headline metrics, in page order: (label, results.json metrics key, formatter).
The score follows them, from the result's top level."""

_PROVIDER_COLUMNS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "busy_s": ("busy slot·s", lambda v: _number(v, 0)),
    "wait_s": ("queue wait s", lambda v: _number(v, 1)),
    "served": ("served", _number),
    "queued": ("queued", _number),
    "overloaded": ("overloaded", _number),
    "peak_queue": ("peak queue", _number),
    "utilisation": ("utilisation", lambda v: "—" if _missing(v) else f"{100 * float(v):.1f} %"),
}
"""Known provider statistics (`SimulationResult.providers`) with headers and formats;
other keys are shown as plain numbers under their own name."""

_CAPTION = {
    "timeline": (
        "Timeline in 60 s buckets: success rate; attempts/s stacked by deployment (the black "
        "line is client arrivals, so the gap above it is retries and failovers); cost rate; "
        "p99 latency. Shaded: fault windows (hatched when open-ended)."
    ),
}

_ALT = {
    "timeline": (
        "Timeline per minute: success rate, attempts per second stacked by deployment, "
        "cost rate and p99 latency, with fault windows shaded"
    ),
    "heatmap": "Heatmap of resilience scores, scenarios by policies",
    "sweep": "A metric plotted against a swept parameter",
}

_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1d2125; background: #f6f7f9; margin: 0; }
main { max-width: 1160px; margin: 0 auto; padding: 24px 28px 48px; background: #fff;
       min-height: 100vh; box-sizing: border-box; }
h1 { font-size: 1.55rem; margin: 0 0 4px; }
h2 { font-size: 1.15rem; margin: 28px 0 8px; padding-bottom: 4px;
     border-bottom: 1px solid #e3e6ea; }
p.lede { margin: 0 0 6px; color: #444; }
p.meta { margin: 0 0 14px; color: #667; font-size: 0.9rem; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: 600;
         font-size: 0.85rem; vertical-align: middle; margin-left: 6px; }
.pass { background: #dff3e4; color: #1a6b32; }
.fail { background: #fbe0e0; color: #a11d1d; }
table { border-collapse: collapse; margin: 6px 0 4px; font-size: 0.92rem; }
th, td { padding: 4px 12px; text-align: left; border-bottom: 1px solid #eceef1; }
thead th { background: #f1f3f5; font-weight: 600; border-bottom: 1px solid #d5d9de; }
thead th.num { text-align: right; }
tbody th { white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.key, code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.82rem;
               color: #667; }
td.ok { color: #1a6b32; font-weight: 600; }
td.failed { color: #a11d1d; font-weight: 600; }
tr.score th, tr.score td { font-weight: 700; border-top: 2px solid #d5d9de; }
ul.hard li { color: #a11d1d; font-weight: 600; }
p.none { color: #667; margin: 4px 0; }
figure { margin: 10px 0 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; }
figcaption { color: #667; font-size: 0.88rem; margin-top: 4px; }
.grid { display: flex; flex-wrap: wrap; gap: 8px 40px; align-items: flex-start; }
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _esc(value: Any) -> str:
    return escape(str(value), quote=True)


def _table(
    header: Sequence[str],
    rows: Iterable[_Row],
    *,
    numeric: Iterable[int] = (),
    table_id: str | None = None,
    row_classes: Sequence[str] | None = None,
    cell_classes: Mapping[tuple[int, int], str] | None = None,
) -> str:
    """An HTML table; every cell is escaped here, so callers pass plain text."""
    right = set(numeric)
    out = [f'<table id="{_esc(table_id)}">' if table_id else "<table>", "<thead><tr>"]
    for c, h in enumerate(header):
        attr = ' class="num"' if c in right else ""
        out.append(f'<th scope="col"{attr}>{_esc(h)}</th>')
    out.append("</tr></thead><tbody>")
    for r, row in enumerate(rows):
        css = row_classes[r] if row_classes and row_classes[r] else ""
        out.append(f'<tr class="{css}">' if css else "<tr>")
        for c, cell in enumerate(row):
            classes = ["num"] if c in right else []
            if cell_classes and (r, c) in cell_classes:
                classes.append(cell_classes[(r, c)])
            attr = f' class="{" ".join(classes)}"' if classes else ""
            tag = "th" if c == 0 else "td"
            scope = ' scope="row"' if c == 0 else ""
            out.append(f"<{tag}{scope}{attr}>{_esc(cell)}</{tag}>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _none(text: str) -> str:
    return f'<p class="none">{_esc(text)}</p>'


# --------------------------------------------------------------------------- sections


def _summary(result: Mapping[str, Any]) -> str:
    metrics: Mapping[str, Any] = result.get("metrics") or {}
    intervals: Mapping[str, Any] = result.get("intervals") or {}
    rows: list[list[str]] = []
    for label, key, fmt in SUMMARY_ROWS:
        row = [label, fmt(metrics.get(key)), key]
        if intervals:
            low_high = intervals.get(key)
            row.insert(2, f"{fmt(low_high[0])} – {fmt(low_high[1])}" if low_high else "")
        rows.append(row)
    score_row = ["score (0–100)", _number(result.get("score"), 1), "score"]
    if intervals:
        score_row.insert(2, "")
    rows.append(score_row)
    header = ["metric", "value", "results.json key"]
    if intervals:
        header.insert(2, "95 % interval")
    classes = [""] * (len(rows) - 1) + ["score"]
    key_column = len(header) - 1
    cells = {(r, key_column): "key" for r in range(len(rows))}
    table = _table(
        header,
        rows,
        numeric=(1,),
        table_id="summary",
        row_classes=classes,
        cell_classes=cells,
    )
    recovery = metrics.get("recovery")
    note = ""
    if isinstance(recovery, Mapping):
        note = (
            '<p class="none">Recovery check: availability '
            f"{_esc(_percent(recovery.get('availability')))} over "
            f"{_esc(_number(recovery.get('arrivals')))} requests arriving in "
            f"[{_esc(_seconds(recovery.get('start')))}, {_esc(_seconds(recovery.get('end')))}) "
            f"against a pre-fault baseline of {_esc(_percent(recovery.get('baseline')))}.</p>"
        )
    return f"<section><h2>Summary</h2>{table}{note}</section>"


def _slos(result: Mapping[str, Any]) -> str:
    slos: Sequence[Mapping[str, Any]] = result.get("slos") or []
    if not slos:
        return f"<section><h2>SLOs</h2>{_none('The scenario declares no SLOs.')}</section>"
    rows = [
        [
            str(slo.get("name", "")),
            _observed(slo.get("value")),
            _observed(slo.get("threshold")),
            "ok" if slo.get("ok") else "failed",
        ]
        for slo in slos
    ]
    cells = {(r, 3): "ok" if slo.get("ok") else "failed" for r, slo in enumerate(slos)}
    held = sum(1 for slo in slos if slo.get("ok"))
    table = _table(
        ["SLO", "observed", "threshold", "result"], rows, numeric=(1, 2), cell_classes=cells
    )
    return f"<section><h2>SLOs ({held}/{len(slos)} held)</h2>{table}</section>"


def _hard_failures(result: Mapping[str, Any]) -> str:
    failures: Sequence[Any] = result.get("hard_failures") or []
    if not failures:
        body = _none("None: no compliance violation, no truncated success, no metastability.")
    else:
        items = "".join(f"<li>{_esc(f)}</li>" for f in failures)
        body = f'<ul class="hard">{items}</ul><p class="none">A hard failure scores 0.</p>'
    return f"<section><h2>Hard failures</h2>{body}</section>"


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _mime(name: str, data: bytes) -> str:
    """The image's type from its first bytes; anything unknown is refused (ValueError)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.lstrip()[:5] in (b"<svg ", b"<?xml"):
        return "image/svg+xml"
    raise ValueError(f"image {name!r} is not PNG, JPEG or SVG")


def _images(result: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    if not images:
        return ""
    run = f"{result.get('scenario', '')} / {result.get('policy', '')}"
    replications = result.get("replications")
    figures = []
    for name, data in images.items():
        alt = f"{_ALT.get(name, name)} ({run})"
        uri = f"data:{_mime(name, data)};base64,{base64.b64encode(data).decode('ascii')}"
        size = _png_size(data)
        dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
        caption = _CAPTION.get(name, name)
        if name == "timeline" and isinstance(replications, int) and replications > 1:
            caption += f" First replication (seed {result.get('seed')}) of {replications}."
        figures.append(
            f'<figure><img src="{uri}" alt="{_esc(alt)}"{dims}>'
            f"<figcaption>{_esc(caption)}</figcaption></figure>"
        )
    return f"<section><h2>Plots</h2>{''.join(figures)}</section>"


def _faults(metrics: Mapping[str, Any]) -> str:
    faults: Sequence[Mapping[str, Any]] = metrics.get("faults") or []
    if not faults:
        return f"<section><h2>Faults</h2>{_none('The scenario injects no faults.')}</section>"
    rows = [
        [
            str(i),
            _seconds(f.get("start")),
            _seconds(f.get("end")) + (" (open-ended)" if f.get("open_ended") else ""),
            ", ".join(str(t) for t in f.get("targets") or []) or "—",
            _seconds(f.get("ttd_s")),
            _seconds(f.get("ttf_s")),
            _seconds(f.get("ttr_s")),
        ]
        for i, f in enumerate(faults, start=1)
    ]
    table = _table(
        ["#", "start", "end", "deployments hit", "TTD", "TTF", "TTR"],
        rows,
        numeric=(1, 2, 4, 5, 6),
    )
    return f"<section><h2>Faults</h2>{table}</section>"


def _reasons(result: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    sources = [
        ("attempts", metrics.get("reasons")),
        ("rejected requests", metrics.get("rejected_reasons")),
        ("engine decisions", result.get("engine_reasons")),
    ]
    present = [(label, counts) for label, counts in sources if isinstance(counts, Mapping)]
    names = sorted({str(k) for _, counts in present for k in counts})
    if not names:
        return f"<section><h2>Reasons</h2>{_none('No decision gave a reason.')}</section>"
    rows = [[name, *(_number(counts.get(name, 0)) for _, counts in present)] for name in names]
    table = _table(
        ["reason", *(label for label, _ in present)],
        rows,
        numeric=range(1, len(present) + 1),
    )
    return f"<section><h2>Reasons</h2>{table}</section>"


def _providers(result: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    providers: Mapping[str, Mapping[str, Any]] = result.get("providers") or {}
    attempts: Mapping[str, Any] = metrics.get("attempts_by_deployment") or {}
    names = list(providers) + [name for name in attempts if name not in providers]
    if not names:
        return f"<section><h2>Provider load</h2>{_none('No provider statistics.')}</section>"
    keys = list(dict.fromkeys(k for stats in providers.values() for k in stats))
    header = ["deployment", "attempts"] + [_PROVIDER_COLUMNS.get(k, (k, _number))[0] for k in keys]
    rows = []
    for name in names:
        stats = providers.get(name, {})
        row = [name, _number(attempts.get(name, 0))]
        row.extend(_PROVIDER_COLUMNS.get(k, (k, _number))[1](stats.get(k)) for k in keys)
        rows.append(row)
    table = _table(header, rows, numeric=range(1, len(header)))
    return f"<section><h2>Provider load</h2>{table}</section>"


def _heading(result: Mapping[str, Any], title: str | None) -> str:
    scenario, policy = result.get("scenario", "?"), result.get("policy", "?")
    passed = result.get("passed")
    badge = (
        '<span class="badge pass">passed</span>'
        if passed
        else '<span class="badge fail">failed</span>'
        if passed is not None
        else ""
    )
    meta = [f"engine {result.get('engine', '?')}", f"seed {result.get('seed', '?')}"]
    if isinstance(result.get("replications"), int):
        meta.append(f"{result['replications']} replications (means, 95 % intervals)")
    if result.get("wall_s") is not None:
        meta.append(f"simulated in {_number(result.get('wall_s'), 1)} s wall time")
    lede = f'<p class="lede">{_esc(title)}</p>' if title else ""
    return (
        f"<header><h1>{_esc(scenario)} / {_esc(policy)}{badge}</h1>{lede}"
        f'<p class="meta">{_esc(" · ".join(meta))}</p></header>'
    )


def report_html(
    result: Mapping[str, Any], images: Mapping[str, bytes], *, title: str | None = None
) -> str:
    """The run's page: a complete HTML document as text, with `images` embedded.

    `result` is a results.json object (DESIGN.md "Contracts"; the extra keys
    `hard_failures`, `providers`, `engine_reasons`, `intervals` are shown when
    present). `images` maps a name (`timeline`, ...) to PNG (or JPEG/SVG) bytes,
    shown in order. `title` is a line under the heading, such as the scenario's title.
    """
    metrics: Mapping[str, Any] = result.get("metrics") or {}
    page_title = f"blastradius: {result.get('scenario', '?')} / {result.get('policy', '?')}"
    body = "".join(
        [
            _heading(result, title),
            _summary(result),
            _slos(result),
            _hard_failures(result),
            _images(result, images),
            _faults(metrics),
            _reasons(result, metrics),
            _providers(result, metrics),
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="blastradius">'
        f"<title>{_esc(page_title)}</title><style>{_CSS}</style></head>\n"
        f"<body><main>{body}</main></body></html>\n"
    )
