"""The evidence pack's pure parts: manifest and verify, hash chain, matrix, controls, report."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

import pytest

from reports.evidence import (
    CHAIN_NAME,
    MANIFEST_NAME,
    NOT_EXERCISED,
    NOT_TESTED,
    ScenarioRun,
    build_pack,
    chain_problems,
    chain_record,
    index_html,
    manifest,
    removal_rows,
    report_markdown,
    scenario_entry,
    sha256_hex,
    subjects_of,
    substitutability,
    verify,
    verify_pack,
)
from reports.metrics import FaultWindow, RunContext
from scenarios.scenario_files import LIBRARY_DIR, hidden_domains, load_scenario, targets_of
from tests.reports.traces import attempt, attempts_frame, request, requests_frame

FILES: dict[str, bytes] = {
    "evidence.json": b'{"meta": {"previous_manifest_sha256": null}}\n',
    "report.md": b"# report\n",
    "runs/x/results.json": b'{"passed": true}\n',
    "runs/x/attempts.csv": b"request_id\n",
}


# --------------------------------------------------------------------------- manifest and verify


def test_manifest_is_sha256sum_format_sorted_by_path() -> None:
    text = manifest(FILES)
    lines = text.splitlines()
    assert text.endswith("\n")
    assert [line.split("  ", 1)[1] for line in lines] == sorted(FILES)
    for line in lines:
        digest, path = line.split("  ", 1)
        assert digest == hashlib.sha256(FILES[path]).hexdigest()


def test_manifest_skips_itself_and_the_chain_file() -> None:
    files = {**FILES, MANIFEST_NAME: b"x", CHAIN_NAME: b"{}"}
    assert manifest(files) == manifest(FILES)


@pytest.mark.parametrize("bad", ["../escape", "/etc/passwd", "a//b", "a/./b", "new\nline", "a\\b"])
def test_manifest_refuses_paths_that_are_not_plain_relative(bad: str) -> None:
    with pytest.raises(ValueError, match="not a relative pack path"):
        manifest({bad: b""})


def test_an_intact_pack_verifies() -> None:
    assert verify(FILES, manifest(FILES)) == []


def test_one_changed_byte_is_named() -> None:
    text = manifest(FILES)
    original = FILES["runs/x/results.json"]
    flipped = bytes([original[0] ^ 0x01]) + original[1:]
    assert verify({**FILES, "runs/x/results.json": flipped}, text) == [
        "altered: runs/x/results.json"
    ]


def test_a_removed_file_is_named() -> None:
    text = manifest(FILES)
    files = {k: v for k, v in FILES.items() if k != "report.md"}
    assert verify(files, text) == ["missing: report.md"]


def test_an_added_file_is_named_but_not_the_manifest_or_chain() -> None:
    text = manifest(FILES)
    files = {**FILES, "runs/x/extra.csv": b"1\n", MANIFEST_NAME: text.encode(), CHAIN_NAME: b"{}"}
    assert verify(files, text) == ["added: runs/x/extra.csv"]


def test_several_problems_are_each_named_in_path_order() -> None:
    text = manifest(FILES)
    files = dict(FILES)
    files["report.md"] = b"# edited\n"
    del files["evidence.json"]
    files["a-new-file"] = b""
    assert verify(files, text) == [
        "added: a-new-file",
        "missing: evidence.json",
        "altered: report.md",
    ]


def test_malformed_and_duplicate_manifest_lines_are_reported() -> None:
    text = manifest(FILES) + "not a hash line\n" + manifest({"report.md": FILES["report.md"]})
    problems = verify(FILES, text)
    assert any("line 5" in p and "not '<sha256>" in p for p in problems)
    assert any("report.md listed twice" in p for p in problems)


def test_binary_mode_lines_of_sha256sum_are_accepted() -> None:
    text = manifest(FILES).replace("  ", " *")
    assert verify(FILES, text) == []


# --------------------------------------------------------------------------- hash chain


def test_chain_record_links_this_manifest_to_the_previous_one() -> None:
    text = manifest(FILES)
    first = chain_record(text, None)
    assert first["manifest_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert first["previous_manifest_sha256"] is None
    second = chain_record("other\n", first["manifest_sha256"])
    assert second["previous_manifest_sha256"] == first["manifest_sha256"]
    assert second["manifest_sha256"] == sha256_hex(b"other\n")
    with pytest.raises(ValueError, match="64 lower-case hex"):
        chain_record(text, "not-a-hash")


def _pack_files(previous: str | None = None) -> dict[str, bytes]:
    files = dict(FILES)
    files["evidence.json"] = json.dumps({"meta": {"previous_manifest_sha256": previous}}).encode()
    text = manifest(files)
    files[MANIFEST_NAME] = text.encode()
    files[CHAIN_NAME] = json.dumps(chain_record(text, previous)).encode()
    return files


def test_an_intact_chained_pack_has_no_problems() -> None:
    assert verify_pack(_pack_files()) == []
    assert verify_pack(_pack_files("ab" * 32)) == []


def test_chain_problems_name_the_chain_file() -> None:
    files = _pack_files()
    assert chain_problems({k: v for k, v in files.items() if k != CHAIN_NAME}) == [
        f"missing: {CHAIN_NAME}"
    ]
    wrong_hash = json.loads(files[CHAIN_NAME])
    wrong_hash["manifest_sha256"] = "00" * 32
    problems = chain_problems({**files, CHAIN_NAME: json.dumps(wrong_hash).encode()})
    assert problems == [f"altered: {CHAIN_NAME} (manifest_sha256 does not match {MANIFEST_NAME})"]
    relinked = json.loads(files[CHAIN_NAME])
    relinked["previous_manifest_sha256"] = "cd" * 32
    problems = chain_problems({**files, CHAIN_NAME: json.dumps(relinked).encode()})
    assert problems == [
        f"altered: {CHAIN_NAME} (previous_manifest_sha256 differs from evidence.json)"
    ]
    assert chain_problems({**files, CHAIN_NAME: b"garbage"}) == [
        f"altered: {CHAIN_NAME} (not a chain record)"
    ]


def test_an_edited_manifest_breaks_the_chain() -> None:
    files = _pack_files()
    edited = files[MANIFEST_NAME] + b""  # same content: fine
    assert verify_pack({**files, MANIFEST_NAME: edited}) == []
    text = (
        files[MANIFEST_NAME]
        .decode()
        .replace(sha256_hex(FILES["report.md"]), sha256_hex(b"# forged\n"))
    )
    forged = {**files, "report.md": b"# forged\n", MANIFEST_NAME: text.encode()}
    # The manifest now agrees with the forged file, but the chain record does not.
    assert verify_pack(forged) == [
        f"altered: {CHAIN_NAME} (manifest_sha256 does not match {MANIFEST_NAME})"
    ]


# --------------------------------------------------------------------------- matrix


def _escalation(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "route": "escalation", "task": "escalation"}


def _withdrawal_run() -> ScenarioRun:
    """model-withdrawal with cost-cascade (quality scores), and a small hand-made trace.

    Claude Opus 4.5 is withdrawn at 2 h for good. Before: two escalations answered by
    Opus at $0.10. During: gpt-5 answers two ($0.05), gemini-2.5-pro one ($0.08), one
    fails; a triage request in the window is not on the escalation route.
    """
    loaded = load_scenario(LIBRARY_DIR / "model-withdrawal.yaml")
    opus = "claude-opus-4.5@anthropic"
    attempts = [
        attempt("e1", opus, 100.0, cost=0.10),
        attempt("e2", opus, 200.0, cost=0.10),
        attempt("e3", opus, 7300.0, outcome="model_gone"),
        attempt("e3", "gpt-5@openai", 7301.0, 7310.0, cost=0.05, number=2),
        attempt("e4", "gpt-5@openai", 7400.0, cost=0.05),
        attempt("e5", "gemini-2.5-pro@vertex-us-central1", 7500.0, cost=0.08),
        attempt("e6", opus, 7600.0, outcome="model_gone"),
    ]
    requests = [
        request("e1", 100.0, served_by=opus),
        request("e2", 200.0, served_by=opus),
        request("e3", 7300.0, served_by="gpt-5@openai", attempts=2),
        request("e4", 7400.0, served_by="gpt-5@openai"),
        request("e5", 7500.0, served_by="gemini-2.5-pro@vertex-us-central1"),
        request("e6", 7600.0, final="error"),
    ]
    triage_attempt = attempt("t1", "gpt-4.1-nano@openai", 7700.0, cost=0.001)
    triage_request = request("t1", 7700.0, served_by="gpt-4.1-nano@openai")
    hidden = hidden_domains(loaded.scenario, loaded.policy)
    (withdraw,) = loaded.scenario.faults
    window = FaultWindow(
        start=withdraw.start,
        end=loaded.scenario.duration,
        targets=frozenset(targets_of(withdraw, loaded.policy, hidden)),
        open_ended=True,
    )
    context = RunContext(
        duration=loaded.scenario.duration,
        faults=(window,),
        recovery_window=loaded.scenario.recovery_window,
        primaries=frozenset({opus}),
    )
    return ScenarioRun(
        loaded=loaded,
        context=context,
        result={"seed": 1, "metrics": {}, "slos": [], "passed": True, "score": 90.0},
        attempts=attempts_frame([*map(_escalation, attempts), triage_attempt]),
        requests=requests_frame([*map(_escalation, requests), triage_request]),
        scenario_file="scenarios/model-withdrawal.yaml",
        run_dir="runs/model-withdrawal",
    )


def test_matrix_row_for_a_withdrawn_model_from_a_hand_made_trace() -> None:
    run = _withdrawal_run()
    rows = {row["subject"]: row for row in removal_rows(run)}
    assert set(rows) == {"claude-opus-4.5@anthropic", "model:claude-opus-4.5"}
    row = rows["claude-opus-4.5@anthropic"]
    assert row["kind"] == "deployment"
    assert (row["scenario"], row["fault"], row["fault_kind"]) == (
        "model-withdrawal",
        "opus-4.5-retired",
        "withdraw",
    )
    assert row["routes"] == ["escalation"]
    assert row["requests"] == 4  # e3..e6; the triage request is not on the route
    assert row["success_rate"] == pytest.approx(0.75)
    assert row["served_by"] == {"gpt-5@openai": 2, "gemini-2.5-pro@vertex-us-central1": 1}
    assert row["alternates"] == ["gpt-5@openai", "gemini-2.5-pro@vertex-us-central1"]
    assert row["ttf_s"] == pytest.approx(7310.0 - 7200.0)
    assert row["pre_fault_cost_per_request_usd"] == pytest.approx(0.10)
    assert row["cost_per_request_usd"] == pytest.approx((0.05 + 0.05 + 0.08) / 4)
    assert row["cost_delta_usd"] == pytest.approx(0.045 - 0.10)
    assert row["cost_delta_pct"] == pytest.approx(-55.0)
    assert row["quality_removed"] == pytest.approx(0.88)
    assert row["quality_serving"] == pytest.approx((2 * 0.86 + 0.84) / 3)
    assert row["quality_delta"] == pytest.approx((2 * 0.86 + 0.84) / 3 - 0.88)
    assert row["verified"] == "simulated"
    assert rows["model:claude-opus-4.5"]["served_by"] == row["served_by"]


def test_the_matrix_lists_untested_subjects_as_gaps() -> None:
    run = _withdrawal_run()
    matrix = substitutability([run])
    subjects = [s for s, _, _ in subjects_of(run.loaded)]
    assert [row["subject"] for row in matrix] == subjects  # one row each here
    by_subject = {row["subject"]: row for row in matrix}
    gap = by_subject["gpt-5@openai"]
    assert gap["verified"] == NOT_TESTED and gap["scenario"] is None and gap["served_by"] == {}
    # A domain is removed only when every deployment carrying it is hit.
    assert by_subject["vendor:anthropic"]["verified"] == NOT_TESTED
    json.dumps(matrix, allow_nan=False)


def test_a_removed_subject_without_traffic_is_not_claimed_as_tested() -> None:
    run = _withdrawal_run()
    run = dataclasses.replace(run, requests=run.requests[run.requests["route"] != "escalation"])
    rows = removal_rows(run)
    assert rows and all(row["verified"] == NOT_EXERCISED for row in rows)
    assert all(row["success_rate"] is None for row in rows)


def test_quality_delta_is_none_without_quality_scores() -> None:
    loaded = load_scenario(LIBRARY_DIR / "cloudflare-2025-12-05.yaml")
    window = FaultWindow(start=1020.0, end=2520.0, targets=frozenset({"gpt-4o@openai"}))
    run = ScenarioRun(
        loaded=loaded,
        context=RunContext(5400.0, (window,), 1800.0, frozenset({"gpt-4o@openai"})),
        result={},
        attempts=attempts_frame(
            [
                attempt("r1", "gpt-4o@openai", 10.0, cost=0.01),
                attempt("r2", "claude-sonnet-4@bedrock-us-east-1", 1100.0, cost=0.02),
            ]
        ),
        requests=requests_frame(
            [
                request("r1", 10.0, served_by="gpt-4o@openai"),
                request("r2", 1100.0, served_by="claude-sonnet-4@bedrock-us-east-1"),
            ]
        ),
    )
    (row,) = [r for r in removal_rows(run) if r["subject"] == "gpt-4o@openai"]
    assert row["quality_delta"] is None
    assert row["cost_delta_pct"] == pytest.approx(100.0)
    assert row["alternates"] == ["claude-sonnet-4@bedrock-us-east-1"]


# --------------------------------------------------------------------------- pack and report

HOSTILE = "<script>alert('x')</script> | *bold* [link](http://evil) `tick` & more"


def _pack(hostile: bool = False) -> dict[str, Any]:
    run = _withdrawal_run()
    if hostile:
        scenario = run.loaded.scenario.model_copy(
            update={"assumptions": HOSTILE, "title": HOSTILE, "description": HOSTILE}
        )
        run = dataclasses.replace(run, loaded=dataclasses.replace(run.loaded, scenario=scenario))
    slos = [
        {"name": slo.name, "ok": i != 1, "value": 0.5, "threshold": slo.value}
        for i, slo in enumerate(run.loaded.scenario.slos)
    ]
    run = dataclasses.replace(
        run,
        result={**run.result, "slos": slos, "passed": False},
        slo_texts=tuple(f"{slo['name']}  # as written {i}" for i, slo in enumerate(slos)),
        scenario_sha256="ab" * 32,
    )
    entry = scenario_entry(run)
    inputs = {"policy/cost-cascade.yaml": b"policy", "scenarios/model-withdrawal.yaml": b"s"}
    return build_pack(
        meta={
            "tool_version": "0.1.0",
            "git_commit": None,
            "started_utc": "2026-01-01T00:00:00Z",
            "finished_utc": "2026-01-01T00:00:05Z",
            "host": "test-host",
            "previous_manifest_sha256": None,
        },
        loaded=run.loaded,
        scenarios=[entry],
        matrix=substitutability([run]),
        inputs=inputs,
        policy_file="policy/cost-cascade.yaml",
    )


def test_the_pack_is_plain_json_with_run_metadata() -> None:
    pack = _pack()
    assert json.loads(json.dumps(pack, allow_nan=False)) == pack
    meta = pack["meta"]
    assert meta["engine"] == "sim" and meta["tool"] == "blastradius"
    assert meta["policy_sha256"] == sha256_hex(b"policy")
    assert meta["seeds"] == {"model-withdrawal": [1]}
    assert pack["passed"] is False and pack["summary"]["failed"] == ["model-withdrawal"]
    (scenario,) = pack["scenarios"]
    assert scenario["file"] == "scenarios/model-withdrawal.yaml"
    assert scenario["run_files"] == [
        "runs/model-withdrawal/results.json",
        "runs/model-withdrawal/attempts.csv",
        "runs/model-withdrawal/requests.csv",
    ]
    assert scenario["slos"][0]["declared"].endswith("# as written 0")
    assert [slo["ok"] for slo in scenario["slos"]][:2] == [True, False]
    assert scenario["assumptions"] in [a["text"] for a in pack["scope"]["assumptions"]]


def test_declared_slos_fall_back_to_the_parsed_form_without_the_written_text() -> None:
    entry = scenario_entry(_withdrawal_run())
    assert [slo["declared"] for slo in entry["slos"]][:2] == [
        "availability_during_faults >= 0.999",
        "amplification_peak <= 1.2",
    ]


CONTROLS = (
    "Art. 28(8)",
    "Art. 10",
    "Art. 24",
    "Art. 25",
    "Art. 11(6)",
    "GV-6.2-001",
    "GV-6.2-003",
    "GV-6.2-006",
    "A1.3",
    "CC9.1",
    "CC9.2",
    "A.10.3",
)


def test_the_control_table_maps_each_framework_control_to_pack_content() -> None:
    pack = _pack()
    controls = {c["control"]: c for c in pack["controls"]}
    for control in CONTROLS:
        assert control in controls, control
        assert controls[control]["evidence"] and controls[control]["where"]
        assert controls[control]["status"]
    assert "substitutability" in " ".join(controls["Art. 28(8)"]["where"])
    assert controls["Art. 28(8)"]["quoted"] is True
    assert "alternative solutions" in controls["Art. 28(8)"]["requirement"]
    assert (
        "Rehearse third-party GAI incident response plans" in controls["GV-6.2-003"]["requirement"]
    )


def test_report_and_page_hold_the_sign_off_block_and_the_control_table() -> None:
    pack = _pack()
    markdown = report_markdown(pack)
    page = index_html(pack)
    assert "## Sign-off" in markdown and "| responsibility | name | role | date | signature |" in (
        markdown
    )
    sign_off_rows = [line for line in markdown.splitlines() if line.startswith("| Test ")]
    assert len(sign_off_rows) == 2 and all(
        line.endswith("|   |   |   |   |") for line in sign_off_rows
    )
    assert "## Control mapping" in markdown and "## Substitutability matrix" in markdown
    for control in CONTROLS:
        assert control in markdown and control in page
    assert 'id="sign-off"' in page and "<th>signature</th>" in page
    assert "<script" not in page.lower()
    assert "## Scope and limitations" in markdown and "Real billing" in markdown


def _table_widths(markdown: str) -> set[int]:
    widths = set()
    for line in markdown.splitlines():
        if line.startswith("|"):
            widths.add(len(re.findall(r"(?<!\\)\|", line)))
    return widths


def test_report_and_page_escape_scenario_text() -> None:
    pack = _pack(hostile=True)
    markdown = report_markdown(pack)
    page = index_html(pack)
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert "<script" not in page.lower() and "&lt;script&gt;" in page
    assert "[link](http://evil)" not in markdown
    assert "default-src 'none'" in page  # nothing loads, nothing runs
    assert "http://" not in re.sub(r">[^<]*<", "><", page)  # no URL in any tag or attribute
    # Every table row still has its header's column count: the pipe did not split a cell.
    for block in markdown.split("\n\n"):
        if block.startswith("|"):
            assert len(_table_widths(block)) == 1, block
