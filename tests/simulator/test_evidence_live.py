"""`blastradius evidence --live`: fallback drills over real HTTP, written into the pack.

The tiny live policy has an OpenAI primary and an Anthropic fallback, both behind
edge:cloudflare: removing either vendor must leave the other answering, and removing the
shared edge must fail honestly (nothing is left). Each drill starts and stops its own
gateway; the fake world is stopped when the runner returns (its try/finally).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from reports.drills import (
    DRILL_FAILED,
    DRILL_NO_ROUTE,
    DRILL_PASSED,
    DrillAnswer,
    drill_fault,
    drill_record,
    drill_routes,
    merge_live,
)
from simulator.cli import main
from simulator.evidence import add_parser

FILES = Path(__file__).parent / "live_files"
SCENARIO = FILES / "live-smoke.yaml"
POLICY = FILES / "live-policy.yaml"


def evidence(out: Path, *extra: str) -> int:
    return main(["evidence", str(SCENARIO), "--policy", str(POLICY), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def live_pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("evidence-live") / "pack"
    code = evidence(out, "--live")
    return code, out, json.loads((out / "evidence.json").read_text())


def drill_of(pack: dict[str, Any], subject: str) -> dict[str, Any]:
    return next(d for d in pack["live_drills"] if d["subject"] == subject)


def test_losing_the_primary_is_answered_by_the_fallback(
    live_pack: tuple[int, Path, dict[str, Any]],
) -> None:
    _, _, pack = live_pack
    drill = drill_of(pack, "gpt-4o@openai")
    assert drill["fault"] == {"kind": "server", "target": {"deployments": ["gpt-4o@openai"]}}
    assert drill["routes"] == ["default"]
    assert drill["requests"] == drill["answered"] == 6
    assert drill["served_by"] == {"claude@anthropic": 6}
    assert drill["served_by_removed"] == [] and drill["passed"] is True
    assert drill["fault_hits"] > 0  # the fault really bit
    assert drill["provider_attempts"]["gpt-4o@openai"] == {"server": drill["fault_hits"]}
    assert drill_of(pack, "vendor:openai")["served_by"] == {"claude@anthropic": 6}


def test_losing_the_shared_edge_fails_honestly(
    live_pack: tuple[int, Path, dict[str, Any]],
) -> None:
    code, _, pack = live_pack
    drill = drill_of(pack, "edge:cloudflare")
    assert drill["fault"]["kind"] == "edge_5xx"
    assert drill["answered"] == 0 and drill["passed"] is False
    assert drill["verdict"] == DRILL_FAILED
    assert drill["no_alternative"] == ["default"]
    assert sum(drill["failed_reasons"].values()) == drill["requests"] == 6
    # a failed drill fails the pack, as a failed scenario would
    assert code == 1 and pack["passed"] is False
    assert pack["summary"]["live_drills"] == 5
    assert pack["summary"]["live_drills_failed"] == ["edge:cloudflare"]
    assert pack["scenarios"][0]["passed"] is True


def test_matrix_rows_of_drilled_subjects_carry_the_verdict(
    live_pack: tuple[int, Path, dict[str, Any]],
) -> None:
    _, _, pack = live_pack
    live = {row["subject"]: row["live"] for row in pack["substitutability"]}
    assert live == {
        "gpt-4o@openai": "passed",
        "claude@anthropic": "passed",
        "edge:cloudflare": "failed",
        "vendor:anthropic": "passed",
        "vendor:openai": "passed",
    }
    assert pack["meta"]["arguments"]["live"] is True
    art_28 = next(c for c in pack["controls"] if c["control"] == "Art. 28(8)")
    assert "evidence.json#live_drills" in art_28["where"]
    assert "4/5 passed" in art_28["status"]


def test_the_live_pack_verifies_and_shows_the_drills(
    live_pack: tuple[int, Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = live_pack
    capsys.readouterr()
    assert main(["evidence", "verify", str(out)]) == 0
    assert "intact" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "## Live fallback drills" in report
    assert "| `edge:cloudflare` | `edge_5xx on edge:cloudflare` |" in report
    assert "FAIL (no alternative left: default)" in report
    assert "Live fallback drills: 4/5 passed over real HTTP." in report
    page = (out / "index.html").read_text()
    assert 'id="live-fallback-drills"' in page and "claude@anthropic (6)" in page


def test_without_live_the_pack_has_no_drills(tmp_path: Path) -> None:
    assert evidence(tmp_path / "pack") == 0
    pack = json.loads((tmp_path / "pack" / "evidence.json").read_text())
    assert "live_drills" not in pack and "live_drills" not in pack["summary"]
    assert all("live" not in row for row in pack["substitutability"])
    assert "live" not in pack["meta"]["arguments"]
    assert "Live fallback drills" not in (tmp_path / "pack" / "report.md").read_text()


def test_live_without_a_drill_runner_is_bad_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="blastradius")
    add_parser(parser.add_subparsers(dest="command", required=True))
    argv = ["evidence", str(SCENARIO), "--policy", str(POLICY), "--out", str(tmp_path / "p")]
    args = parser.parse_args([*argv, "--live"])
    assert args.run(args) == 2
    assert "--live" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


# --------------------------------------------------------------------------- pure pieces


@pytest.mark.parametrize(
    ("subject", "kind", "fault", "target"),
    [
        ("a@x", "deployment", "server", {"deployments": ["a@x"]}),
        ("edge:cloudflare", "domain", "edge_5xx", {"domains": ["edge:cloudflare"]}),
        ("dns:aws/us-east-1", "domain", "dns", {"domains": ["dns:aws/us-east-1"]}),
        ("vendor:openai", "domain", "server", {"domains": ["vendor:openai"]}),
    ],
)
def test_each_subject_is_removed_where_it_fails(
    subject: str, kind: str, fault: str, target: dict[str, list[str]]
) -> None:
    assert drill_fault(subject, kind, ["a@x"]) == {"kind": fault, "target": target}


def test_routes_name_what_is_left_in_their_chain() -> None:
    chains = {"chat": ["a", "b"], "solo": ["a"], "other": ["c"]}
    assert drill_routes(chains, ["a"]) == [("chat", ["b"]), ("solo", [])]
    assert drill_routes(chains, ["z"]) == []


def _answer(status: int | None, served_by: str | None, reason: str | None = None) -> DrillAnswer:
    return DrillAnswer(route="chat", tenant="", status=status, served_by=served_by, reason=reason)


def _record(answers: list[DrillAnswer], routes: Any = (("chat", ["b"]),)) -> dict[str, Any]:
    return drill_record(
        subject="a",
        kind="deployment",
        deployments=["a"],
        fault=drill_fault("a", "deployment", ["a"]),
        routes=list(routes),
        answers=answers,
    )


def test_a_drill_passes_only_when_every_answer_comes_from_an_alternate() -> None:
    assert _record([_answer(200, "b")] * 3)["verdict"] == DRILL_PASSED
    failed = _record([_answer(200, "b"), _answer(502, "a", "attempts_exhausted")])
    assert failed["verdict"] == DRILL_FAILED
    assert failed["failed_reasons"] == {"attempts_exhausted": 1}
    leaked = _record([_answer(200, "a")])
    assert leaked["passed"] is False and leaked["served_by_removed"] == ["a"]
    untouched = _record([], routes=())
    assert untouched["verdict"] == DRILL_NO_ROUTE and untouched["passed"] is None


def test_merge_live_marks_only_drilled_subjects() -> None:
    matrix = [
        {"subject": "a", "verified": "simulated"},
        {"subject": "a", "verified": "simulated"},
        {"subject": "edge:x", "verified": "not tested"},
        {"subject": "unused", "verified": "not tested"},
    ]
    drills = [
        {"subject": "a", "passed": True},
        {"subject": "edge:x", "passed": False},
        {"subject": "unused", "passed": None},
    ]
    merged = merge_live(matrix, drills)
    assert [row.get("live") for row in merged] == ["passed", "passed", "failed", None]
    assert "live" not in matrix[0]  # the input is not changed
