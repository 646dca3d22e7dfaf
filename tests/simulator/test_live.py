"""Live runs: the real gateway against the fake world, compared with the simulated twin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import simulator.live
from scenarios.scenario_files import load_scenario
from simulator.cli import main
from simulator.live import live_context, run_live
from simulator.runner import RunRequest, run_context, run_replications

SCENARIO = Path(__file__).parent / "live_files" / "live-smoke.yaml"


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("live")
    args = ["run", str(SCENARIO), "--live", "--speedup", "3", "--out", str(out)]
    code = main([*args, "--json", str(out / "r.json")])
    assert code == 0
    return json.loads((out / "r.json").read_text()), out


def test_a_live_run_writes_results_trace_journal_and_report(live_run: tuple[dict, Path]) -> None:
    result, _ = live_run
    assert result["engine"] == "live" and result["speedup"] == 3.0
    run_dir = Path(result["run_dir"])
    for name in ("results.json", "attempts.csv", "requests.csv", "journal.jsonl", "report.html"):
        assert (run_dir / name).is_file(), name
    journal = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    failed = [e for e in journal if e["deployment"] == "gpt-4o@openai" and e["outcome"] == "server"]
    assert failed and all(e["source"] == "scenario" for e in failed)


def test_live_and_simulated_runs_of_one_scenario_agree(live_run: tuple[dict, Path]) -> None:
    live, _ = live_run
    sim, _, _ = run_replications(RunRequest(scenario=SCENARIO))
    assert live["metrics"]["requests"] == sim["metrics"]["requests"]  # one traffic plan
    for result in (live, sim):
        metrics = result["metrics"]
        assert metrics["availability"] >= 0.97
        assert metrics["availability_during_faults"] >= 0.95
        assert metrics["ttd_s"] is not None and metrics["ttf_s"] is not None
        assert metrics["recovered"] is True
        assert metrics["attempts_by_deployment"]["claude@anthropic"] > 0
    # the live figures are in real seconds: the router reacts within a few seconds either way
    assert live["metrics"]["ttd_s"] < 3.0


def test_fault_windows_are_compressed_into_real_seconds() -> None:
    loaded = load_scenario(SCENARIO)
    context = live_context(run_context(loaded), 4.0)
    assert context.duration == pytest.approx(6.0)
    assert (context.faults[0].start, context.faults[0].end) == (1.5, 3.5)
    assert context.recovery_window == pytest.approx(2.5)


def test_a_run_too_heavy_for_the_machine_is_refused_with_advice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["run", str(SCENARIO), "--live", "--speedup", "1000"])
    assert code == 2
    err = capsys.readouterr().err
    assert "live-smoke.yaml" in err and "--speedup" in err and "requests/s" in err
    with pytest.raises(Exception, match="positive"):
        run_live(load_scenario(SCENARIO), seed=1, speedup=0.0)


def test_a_policy_the_gateway_cannot_serve_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ValueError("resilience.example: the gateway cannot serve this")

    monkeypatch.setattr(simulator.live, "create_app", refuse)
    code = main(["run", str(SCENARIO), "--live", "--speedup", "3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "live-policy.yaml" in err and "resilience.example" in err and "Traceback" not in err
