"""`blastradius run` and `blastradius sweep` as a user calls them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from simulator.cli import main

SMALL = ["--set", "traffic.arrivals.rate=1", "--set", "duration=1h"]


def test_run_writes_results_json_and_a_run_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    code = main(
        [
            "run",
            "cloudflare-2025-12-05",
            "--out",
            str(out),
            "--json",
            str(tmp_path / "r.json"),
            *SMALL,
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    result = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    for key in ("scenario", "policy", "engine", "seed", "metrics", "score", "slos", "passed"):
        assert key in result
    assert result["engine"] == "sim" and result["policy"] == "domain-aware"
    run_dir = Path(result["run_dir"])
    assert {p.name for p in run_dir.iterdir()} >= {
        "results.json",
        "attempts.csv",
        "requests.csv",
        "timeline.png",
        "report.html",
    }
    assert (run_dir / "timeline.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert 'id="summary"' in (run_dir / "report.html").read_text(encoding="utf-8")
    with (run_dir / "requests.csv").open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header[:4] == ["request_id", "tenant", "route", "task"]
    assert "cloudflare-2025-12-05" in printed and "run dir:" in printed
    assert f"report: {run_dir / 'report.html'}" in printed


def test_failed_slos_exit_1_and_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            "cloudflare-2025-11-18",
            "--policy",
            "naive-two-vendor",
            "--out",
            str(tmp_path),
            "--set",
            "traffic.arrivals.rate=0.5",
            "--set",
            "duration=4h",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 1
    assert "SLO failed: cloudflare-2025-11-18 / naive-two-vendor: availability_during_faults" in (
        printed
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "no-such-scenario"], "no such file or library scenario"),
        (["run", "cloudflare-2025-12-05", "--set", "traffic.arrivals.rate=-1"], "traffic"),
        (["run", "cloudflare-2025-12-05", "--set", "nonsense"], "expected KEY=VALUE"),
    ],
)
def test_bad_input_exits_2_without_a_traceback(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_replications_report_a_mean_and_an_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            "cloudflare-2025-12-05",
            "--out",
            str(tmp_path),
            "--replications",
            "3",
            "--json",
            str(tmp_path / "r.json"),
            *SMALL,
        ]
    )
    capsys.readouterr()
    assert code in (0, 1)
    result = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert result["replications"] == 3 and result["seeds"] == [1, 2, 3]
    low, high = result["intervals"]["availability"]
    assert low <= result["metrics"]["availability"] <= high


def test_sweep_writes_one_row_per_cell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "sweep",
            "cloudflare-2025-12-05",
            "--workers",
            "2",
            "--out",
            str(tmp_path),
            "--grid",
            "resilience.retries.max_attempts_per_deployment=1,2",
            "--grid",
            "traffic.arrivals.rate=0.5,1",
            "--set",
            "duration=1h",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    table = tmp_path / "sweep--cloudflare-2025-12-05--domain-aware" / "sweep.csv"
    with table.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert {float(row["traffic.arrivals.rate"]) for row in rows} == {0.5, 1.0}
    assert {row["resilience.retries.max_attempts_per_deployment"] for row in rows} == {"1", "2"}
    assert "availability" in printed
    assert (table.parent / "sweep.png").read_bytes().startswith(b"\x89PNG")
