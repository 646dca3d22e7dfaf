"""reports.html: the page's structure (html.parser) and the page as a browser renders it.

The browser test runs Debian's headless Chromium on a real run's report.html. It
skips only on a developer machine without Chromium; under CI (`CI` set) a missing
browser is a failure, so CI cannot pass without having looked at the page.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest

from reports.html import SUMMARY_ROWS, report_html
from reports.plots import PNG_SIGNATURE, timeline_png
from tests.reports.traces import attempt, attempts_frame, context, fault, request, requests_frame

CHROMIUM_TIMEOUT_S = 120


class Page(HTMLParser):
    """Start tags with their attributes, the text, and every table's cell texts by row."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self._table = self.tables.setdefault(
                dict(attrs).get("id") or f"table{len(self.tables)}", []
            )
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def column(self, table: str, index: int = 0) -> list[str]:
        return [row[index] for row in self.tables[table][1:]]

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def _png() -> bytes:
    attempts = attempts_frame([attempt("r1", "a", 10.0), attempt("r2", "b", 20.0)])
    requests = requests_frame([request("r1", 10.0), request("r2", 20.0, served_by="b")])
    return timeline_png(attempts, requests, context(fault(15, 30), duration=60), title="t")


def _result(**changes: Any) -> dict[str, Any]:
    """A results.json object with every key the page shows."""
    result: dict[str, Any] = {
        "scenario": "cloudflare-2025-11-18",
        "policy": "domain-aware",
        "engine": "sim",
        "seed": 1,
        "metrics": {
            "requests": 3561,
            "availability": 0.9995,
            "availability_during_faults": 0.98,
            "goodput_rps": 0.99,
            "amplification": 1.03,
            "amplification_peak": 1.45,
            "ttd_s": 60.5,
            "ttf_s": 10.9,
            "ttr_s": None,
            "cost_usd": 34.44,
            "cost_per_1k_requests_usd": 9.67,
            "latency_p50_s": 6.1,
            "latency_p99_s": 33.6,
            "compliance_violations": 0,
            "truncated_successes": 0,
            "recovered": True,
            "attempts_by_deployment": {"gpt-4o@openai": 2336, "claude@bedrock": 1318},
            "reasons": {"breaker_open": 1294, "retry": 56},
            "rejected_reasons": {"tenant_cap": 3},
            "faults": [
                {
                    "start": 1020.0,
                    "end": 2520.0,
                    "open_ended": False,
                    "targets": ["gpt-4o@openai"],
                    "ttd_s": 60.5,
                    "ttf_s": 10.9,
                    "ttr_s": None,
                }
            ],
            "recovery": {
                "baseline": 1.0,
                "start": 3300.0,
                "end": 3600.0,
                "arrivals": 280,
                "availability": 1.0,
                "recovered": True,
            },
        },
        "score": 73.171817,
        "slos": [
            {"name": "availability_during_faults >= 0.999", "ok": False, "value": 0.98,
             "threshold": 0.999},
            {"name": "recovered == true", "ok": True, "value": True, "threshold": True},
        ],
        "hard_failures": [],
        "passed": False,
        "engine_reasons": {"breaker_open": 2588, "client_cancelled": 4},
        "providers": {
            "gpt-4o@openai": {"busy_s": 17849.6, "wait_s": 0.0, "served": 2251,
                              "utilisation": 0.0124},
            "claude@bedrock": {"busy_s": 10734.3, "wait_s": 2.5, "served": 1318,
                               "utilisation": 0.0075},
        },
    }  # fmt: skip
    result.update(changes)
    return result


def test_summary_table_holds_the_headline_metrics() -> None:
    page = Page(report_html(_result(), {"timeline": _png()}))
    labels = page.column("summary")
    assert labels == [label for label, _, _ in SUMMARY_ROWS] + ["score (0–100)"]
    values = dict(zip(labels, page.column("summary", 1), strict=True))
    assert values["availability"] == "99.950 %"
    assert values["availability during faults"] == "98.000 %"
    assert values["amplification peak (60 s)"] == "1.45×"
    assert values["time to detect (TTD)"] == "1m0.5s"
    assert values["time to return (TTR)"] == "—"
    assert values["cost per 1k requests"] == "$9.67"
    assert values["recovered"] == "yes"
    assert values["score (0–100)"] == "73.2"
    for key in ("availability", "ttf_s", "latency_p99_s", "truncated_successes", "score"):
        assert key in page.column("summary", 2)


def test_every_section_is_there() -> None:
    html = report_html(_result(hard_failures=["no recovery after the last fault"]), {})
    page = Page(html)
    text = "".join(page.text)
    for heading in ("Summary", "SLOs (1/2 held)", "Hard failures", "Faults", "Reasons"):
        assert heading in text
    slos = page.tables["table1"]
    assert slos[0] == ["SLO", "observed", "threshold", "result"]
    assert slos[1] == ["availability_during_faults >= 0.999", "0.98", "0.999", "failed"]
    assert slos[2][-1] == "ok"
    assert "no recovery after the last fault" in text
    faults, reasons, providers = (page.tables[f"table{i}"] for i in (2, 3, 4))
    assert faults[1][:4] == ["1", "17m", "42m", "gpt-4o@openai"]
    assert reasons[0] == ["reason", "attempts", "rejected requests", "engine decisions"]
    assert ["breaker_open", "1,294", "0", "2,588"] in reasons
    assert ["tenant_cap", "0", "3", "0"] in reasons
    assert providers[0][:3] == ["deployment", "attempts", "busy slot·s"]
    assert providers[1][:2] == ["gpt-4o@openai", "2,336"]
    assert "failed" in text  # the verdict badge


def test_images_are_data_uris_with_alt_text() -> None:
    png = _png()
    page = Page(report_html(_result(), {"timeline": png, "extra": png}))
    images = page.find("img")
    assert len(images) == 2
    for attrs in images:
        src = attrs["src"] or ""
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == png
        assert (attrs.get("alt") or "").strip()
    assert images[0]["width"] == "1100" and images[0]["height"] == "900"


def test_page_is_self_contained() -> None:
    html = report_html(_result(), {"timeline": _png()})
    assert "<script" not in html.lower()
    page = Page(html)
    for _, attrs in page.tags:
        for name in ("src", "href", "action", "srcset", "data"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http://", "https://", "//")), (name, value)
    assert not page.find("link") and not page.find("iframe") and not page.find("object")
    (csp,) = [a for a in page.find("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in (csp["content"] or "")


def test_strings_from_results_are_escaped() -> None:
    hostile = _result(
        scenario="<b>&",
        policy='p"olicy',
        slos=[{"name": "<script>alert(1)</script>", "ok": True, "value": 1, "threshold": 1}],
        providers={"<i>dep</i>": {"served": 1}},
        engine_reasons={"<u>why</u>": 1},
        hard_failures=["<em>bad</em> & worse"],
    )
    html = report_html(hostile, {"timeline": _png()}, title="<h2>title</h2>")
    assert "<b>&" not in html and "&lt;b&gt;&amp;" in html
    assert "<script" not in html.lower()
    page = Page(html)
    made = {tag for tag, _ in page.tags}
    assert not made & {"b", "i", "u", "em", "script"}
    assert len(page.find("h2")) == 7  # the sections' own headings; the title made none
    text = "".join(page.text)
    for raw in ("<b>&", 'p"olicy', "<script>alert(1)</script>", "<i>dep</i>", "<u>why</u>"):
        assert raw in text
    assert "<b>&" in (page.find("img")[0]["alt"] or "")


def test_missing_metrics_and_replications() -> None:
    result = _result(replications=3, seeds=[1, 2, 3], intervals={"availability": [0.99, 1.0]})
    result["metrics"] = {"availability": 0.995}
    page = Page(report_html(result, {"timeline": _png()}))
    header = page.tables["summary"][0]
    assert header == ["metric", "value", "95 % interval", "results.json key"]
    rows = {row[0]: row for row in page.tables["summary"][1:]}
    assert rows["availability"][2] == "99.000 % – 100.000 %"
    assert rows["time to fail over (TTF)"][1] == "—"
    assert "First replication (seed 1) of 3" in "".join(page.text)


def test_unknown_image_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="'blob'"):
        report_html(_result(), {"blob": b"not an image"})


# --------------------------------------------------------------------------- headless Chromium


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary; skip without one on a developer machine, fail under CI."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("CI is set but no chromium binary is on PATH (.ci/run installs Debian's)")
    pytest.skip("no chromium or chromium-browser on PATH and CI unset (apt-get install chromium)")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, small run written by the runner: the page the browser must render."""
    from scenarios.overrides import parse_override
    from scenarios.scenario_files import LIBRARY_DIR
    from simulator.runner import RunRequest, run_context, run_replications, run_title, write_run_dir

    request = RunRequest(
        scenario=LIBRARY_DIR / "cloudflare-2025-12-05.yaml",
        overrides=tuple(parse_override(s) for s in ("traffic.arrivals.rate=1", "duration=1h")),
    )
    result, sim, loaded = run_replications(request)
    out = tmp_path_factory.mktemp("run")
    return write_run_dir(
        out, result, sim, context=run_context(loaded), title=run_title(loaded, result["seed"])
    )


@pytest.fixture
def profile() -> Iterator[str]:
    """A throwaway Chromium profile directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as directory:
        yield directory


def _headless(binary: str, profile: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    return done


def test_chromium_renders_the_summary_table_and_images(
    chromium: str, run_dir: Path, profile: str
) -> None:
    binary = chromium
    page = run_dir / "report.html"
    assert (run_dir / "timeline.png").read_bytes().startswith(PNG_SIGNATURE)
    dom = _headless(binary, profile, "--dump-dom", page.as_uri()).stdout
    assert 'id="summary"' in dom
    parsed = Page(dom)
    images = parsed.find("img")
    assert len(images) == 1 and dom.count("<img") == 1
    assert all((a["src"] or "").startswith("data:image/png;base64,") for a in images)
    assert parsed.tables["summary"][1][0] == "requests"


def test_chromium_screenshot_of_the_page_is_not_blank(
    chromium: str, run_dir: Path, profile: str
) -> None:
    binary = chromium
    shot = Path(profile) / "page.png"
    _headless(
        binary,
        profile,
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        (run_dir / "report.html").as_uri(),
    )
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    pixels = np.asarray(matplotlib.image.imread(shot))
    assert pixels.shape[:2] == (2000, 1280)
    assert float(pixels[..., :3].std()) > 0.05  # text, tables and the plot, not one colour
