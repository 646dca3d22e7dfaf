"""The auditor evidence pack, as pure functions: the pack document, and the one import for it.

An auditor (DORA Art. 28(8) and Art. 24/25, NIST AI 600-1 GV-6.2, SOC 2 A1.3/CC9) wants
proof that each fallback is *wired and tested*, in a form they can re-perform and whose
integrity they can check without trusting the tool. This module builds everything in the
pack from data already in memory: the traces of each scenario run, the loaded scenario and
policy, and the metadata the caller collected. It never opens a file, reads a clock or asks
the host anything, so the same inputs always give the same pack (and tests need no disk);
`simulator/evidence.py` does the I/O at the edge.

Pieces (integrity in `pack_integrity`, the matrix in `substitutability`, the pages in
`evidence_report`; all re-exported here):

* `manifest` / `verify` / `verify_pack` — `MANIFEST.sha256` in `sha256sum` format over every
  file of the pack, and the check that names each altered, missing or added file. An auditor
  can re-check with `sha256sum -c MANIFEST.sha256` alone.
* `chain_record` / `chain_problems` — `CHAIN.json` links this pack's manifest hash to the
  previous pack's, so a periodic series of tests is tamper-evident (removing or rewriting a
  pack breaks the next link). The previous hash is also written into `evidence.json`, which
  the manifest covers, so the link cannot be edited in `CHAIN.json` alone.
* `removal_rows` / `complete_matrix` / `substitutability` — the substitutability matrix: for
  each deployment and failure domain of the policy, the fault(s) that removed it and what
  happened to the traffic that depended on it (who served, success rate, TTF, cost and
  quality delta), or "not tested" — a gap is evidence too.
* `scenario_entry`, `control_mapping`, `scope_statement`, `sign_off_block`, `build_pack` —
  the `evidence.json` document (the pack dict itself).
* `report_markdown`, `index_html` — the same content for people; all input text is escaped
  and the HTML carries no script and loads nothing.

Regulatory wording comes from `../shared/reference/providers.md` §5 with its sources; a
requirement is marked `quoted` only when the text is the source's own words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from reports.controls import control_mapping
from reports.drills import drill_summary
from reports.evidence_report import index_html, report_markdown
from reports.pack_integrity import (
    CHAIN_NAME,
    EVIDENCE_NAME,
    MANIFEST_NAME,
    PACK_FORMAT,
    chain_problems,
    chain_record,
    manifest,
    sha256_hex,
    verify,
    verify_pack,
)
from reports.substitutability import (
    NOT_EXERCISED,
    NOT_TESTED,
    VERIFIED_SIMULATED,
    ScenarioRun,
    complete_matrix,
    fault_id,
    removal_rows,
    subjects_of,
    substitutability,
)
from scenarios.scenario_files import LoadedScenario

__all__ = [
    "CHAIN_NAME",
    "CONTRACT_METRICS",
    "EVIDENCE_NAME",
    "MANIFEST_NAME",
    "NOT_EXERCISED",
    "NOT_TESTED",
    "PACK_FORMAT",
    "ScenarioRun",
    "build_pack",
    "chain_problems",
    "chain_record",
    "complete_matrix",
    "control_mapping",
    "index_html",
    "manifest",
    "removal_rows",
    "report_markdown",
    "scenario_entry",
    "scope_statement",
    "sha256_hex",
    "sign_off_block",
    "subjects_of",
    "substitutability",
    "verify",
    "verify_pack",
]

CONTRACT_METRICS: tuple[str, ...] = (
    "requests",
    "availability",
    "availability_during_faults",
    "goodput_rps",
    "amplification",
    "amplification_peak",
    "ttd_s",
    "ttf_s",
    "ttr_s",
    "cost_usd",
    "cost_per_1k_requests_usd",
    "latency_p50_s",
    "latency_p99_s",
    "compliance_violations",
    "truncated_successes",
    "recovered",
)
"""The results.json metrics of DESIGN.md; evidence.json repeats these, runs/ holds the rest."""

# --------------------------------------------------------------------------- the pack document


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, tuples and sets as lists, NaN/inf as None."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_jsonable(v) for v in value)
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    """`_jsonable` for a mapping, typed as the dict it returns."""
    return {str(k): _jsonable(v) for k, v in value.items()}


def scenario_entry(run: ScenarioRun) -> dict[str, Any]:
    """One scenario as evidence.json shows it: declared criteria, results against each, files.

    The SLOs are the pass/fail criteria declared in the scenario file before the run
    (the file is copied into the pack and its hash recorded); each carries the text as
    written, the observed value and whether it held.
    """
    scenario = run.loaded.scenario
    result = run.result
    metrics = result.get("metrics", {})
    evaluated = list(result.get("slos", []))
    texts = run.slo_texts if len(run.slo_texts) == len(scenario.slos) else ()
    slos = []
    for i, slo in enumerate(scenario.slos):
        observed = evaluated[i] if i < len(evaluated) else {}
        slos.append(
            {
                "declared": texts[i] if texts else slo.name,
                "metric": slo.metric,
                "op": slo.op,
                "threshold": slo.value,
                "observed": observed.get("value"),
                "ok": bool(observed.get("ok", False)),
            }
        )
    timings = metrics.get("faults") or []
    faults = []
    for i, fault in enumerate(scenario.faults):
        window = run.context.faults[i] if i < len(run.context.faults) else None
        timing = timings[i] if i < len(timings) and isinstance(timings[i], Mapping) else {}
        faults.append(
            {
                "id": fault_id(run, i),
                "kind": fault.kind,
                "target": {
                    "domains": list(fault.target.domains),
                    "deployments": list(fault.target.deployments),
                },
                "start_s": fault.start,
                "end_s": fault.end,
                "hits": sorted(window.targets) if window is not None else [],
                "ttd_s": timing.get("ttd_s"),
                "ttf_s": timing.get("ttf_s"),
                "ttr_s": timing.get("ttr_s"),
            }
        )
    seeds = result.get("seeds") or [result.get("seed")]
    run_files = (
        [f"{run.run_dir}/{name}" for name in ("results.json", "attempts.csv", "requests.csv")]
        if run.run_dir
        else []
    )
    return _json_dict(
        {
            "id": scenario.id,
            "title": scenario.title,
            "description": scenario.description,
            "t0": scenario.t0,
            "duration_s": scenario.duration,
            "policy": run.loaded.policy.name,
            "file": run.scenario_file,
            "file_sha256": run.scenario_sha256,
            "seeds": seeds,
            "replications": result.get("replications", 1),
            "faults": faults,
            "slos": slos,
            "metrics": {key: metrics.get(key) for key in CONTRACT_METRICS},
            "score": result.get("score"),
            "hard_failures": list(result.get("hard_failures", [])),
            "passed": bool(result.get("passed", False)),
            "sources": [{"title": s.title, "url": s.url} for s in scenario.sources],
            "assumptions": scenario.assumptions,
            "run_dir": run.run_dir,
            "run_files": run_files,
        }
    )


LIVE_SHOWS = (
    "That each fallback is wired (live fallback drills): for every deployment and failure "
    "domain the policy's routes depend on, a fault injected in the fake providers (a vendor "
    "5xx, an edge 5xx or failed name resolution) removed it, and plain chat requests went "
    "through the production HTTP gateway (fresh breakers per drill) with this policy; the "
    "drill records who answered each request (x-blastradius-deployment), the gateway's "
    "reasons for each failure, and how often the fault was applied."
)
"""What `--live` adds to the scope statement's `shows`."""

LIVE_NETWORK = (
    "Real network: the scenario runs exchanged no DNS, TLS, TCP or HTTP traffic (edge, DNS "
    "and connection failures are modelled as attempt outcomes); the live drills used real "
    "HTTP and the harness's own name resolution on this host, against fake providers "
    "speaking each vendor's wire format, without TLS and without the vendors' network paths."
)
"""Replaces the "Real network" limitation when the pack holds live drills."""

SCOPE_CANNOT_SHOW: tuple[str, ...] = (
    "Real vendor behaviour: providers are simulated by the provider behaviour model "
    "(capacity, queueing, latency, error rates and rate limits as each scenario's world "
    "states), not the vendors' systems.",
    "Real network: no DNS, TLS, TCP or HTTP traffic took place; edge, DNS and connection "
    "failures are modelled as attempt outcomes.",
    "Real billing: costs are the policy's list prices × modelled token counts, not invoices; "
    "how a vendor bills failed or cut-short attempts may differ.",
    "Correlated failures that are not modelled: deployments are linked only through the "
    "failure domains the policy declares and the hidden domains a scenario's world adds; a "
    "dependency nobody declared (a shared upstream, identity provider or model host) is not "
    "exercised.",
    "The alternate providers' contracts, quotas, capacity reservations, data migration and "
    "answer quality: an alternate is assumed to take the failed-over load as the scenario's "
    "world says; quality deltas come from the policy's declared scores, not measured answers.",
    "Credentials and accounts: no API key was used, so an expired key, an unprovisioned "
    "alternate account or a missing model entitlement would not show.",
    "The HTTP gateway and client applications: simulated runs drive the router core directly; "
    "manual processing fallbacks are out of scope.",
    "Incidents worse than the scenarios: timelines and intensities come from the cited public "
    "incident reports and the assumptions quoted below.",
)
"""What simulation and fakes cannot show (providers.md §5.5 item 2), stated in every pack."""


def scope_statement(
    loaded: LoadedScenario,
    scenarios: Sequence[Mapping[str, Any]],
    engine: str = "sim",
    *,
    live: bool = False,
) -> dict[str, Any]:
    """What was in scope, what the pack shows, what it cannot, and each scenario's assumptions.

    Auditors weigh simulated evidence by its limits, so the limits are part of the pack,
    never a footnote elsewhere. `live` (the pack holds fallback drills) adds what the
    drills show and states the network limitation as it then is.
    """
    policy = loaded.policy
    cannot_show = list(SCOPE_CANNOT_SHOW)
    if live:
        cannot_show = [LIVE_NETWORK if c.startswith("Real network") else c for c in cannot_show]
    return _json_dict(
        {
            "engine": engine,
            "policy": policy.name,
            "deployments": [
                {
                    "id": d.id,
                    "protocol": d.protocol,
                    "model": d.model,
                    "region": d.region,
                    "residency": d.residency,
                    "domains": list(d.domains),
                }
                for d in policy.deployments
            ],
            "routes": [
                {
                    "name": route.name,
                    "strategy": route.strategy,
                    "chain": [*route.targets, *route.fallbacks],
                }
                for route in policy.routes
            ],
            "shows": [
                "The routing logic and configuration of this policy: the production router core "
                "(the same sans-I/O engine the gateway runs) made every retry, failover, breaker "
                "and budget decision in these runs.",
                "Per run: the fault timeline, the seeds, and a journal of every request and "
                "attempt (runs/), so the same scenario, policy and seed re-performs the same "
                "journal.",
                *([LIVE_SHOWS] if live else []),
            ],
            "cannot_show": cannot_show,
            "assumptions": [
                {"scenario": s.get("id"), "text": s.get("assumptions") or ""} for s in scenarios
            ],
        }
    )


SIGN_OFF_ROLES: tuple[str, ...] = (
    "Test designed by",
    "Test run by",
    "Reviewed by (independent of the router's developers)",
    "Accepted by (accountable owner)",
)


def sign_off_block() -> list[dict[str, str]]:
    """Empty sign-off rows: DORA Art. 24 wants independent testers, SOC 2 an accountable owner.

    Left blank on purpose: the tool cannot attest who reviewed the result.
    """
    return [
        {"responsibility": what, "name": "", "role": "", "date": "", "signature": ""}
        for what in SIGN_OFF_ROLES
    ]


def build_pack(
    *,
    meta: Mapping[str, Any],
    loaded: LoadedScenario,
    scenarios: Sequence[Mapping[str, Any]],
    matrix: Sequence[Mapping[str, Any]],
    inputs: Mapping[str, bytes],
    policy_file: str,
    skipped: Mapping[str, str] | None = None,
    live_drills: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """evidence.json: run metadata, inputs with hashes, scenarios, matrix, controls, scope.

    `meta` is what the caller observed (tool version, git commit, UTC start and end,
    host, arguments, previous manifest hash); `inputs` the copied scenario and policy
    files by pack path; `policy_file` the policy's pack path; `skipped` the library
    scenarios not run because the policy cannot run them (id → why), listed so the
    pack says what it does not cover. `live_drills` (from `--live`; `reports.drills`)
    adds the `live_drills` list and its counts, and a failed drill fails the pack as a
    failed scenario does; None leaves the pack exactly as without `--live`.
    """
    policy_bytes = inputs.get(policy_file)
    seeds = {str(s.get("id")): list(s.get("seeds") or []) for s in scenarios}
    full_meta = {
        "tool": "blastradius",
        "engine": "sim",
        **dict(meta),
        "policy": loaded.policy.name,
        "policy_file": policy_file,
        "policy_sha256": None if policy_bytes is None else sha256_hex(policy_bytes),
        "seeds": seeds,
    }
    failed = [str(s.get("id")) for s in scenarios if not s.get("passed")]
    live = live_drills is not None
    drills = drill_summary(live_drills or [])
    tested = {str(r["subject"]) for r in matrix if r.get("verified") == VERIFIED_SIMULATED}
    subjects = {str(r["subject"]) for r in matrix}
    return _json_dict(
        {
            "format": PACK_FORMAT,
            "title": f"Resilience test evidence: policy {loaded.policy.name}",
            "meta": full_meta,
            "passed": not failed and not drills["live_drills_failed"],
            "summary": {
                "scenarios": len(scenarios),
                "passed": len(scenarios) - len(failed),
                "failed": failed,
                "slos": sum(len(s.get("slos", [])) for s in scenarios),
                "slos_held": sum(
                    1 for s in scenarios for slo in s.get("slos", []) if slo.get("ok")
                ),
                "subjects": len(subjects),
                "subjects_tested": len(tested),
                **(drills if live else {}),
            },
            "inputs": [
                {
                    "path": path,
                    "sha256": sha256_hex(data),
                    "kind": "policy" if path == policy_file else "scenario",
                }
                for path, data in sorted(inputs.items())
            ],
            "scenarios": list(scenarios),
            "skipped": [
                {"scenario": scenario_id, "reason": why}
                for scenario_id, why in sorted((skipped or {}).items())
            ],
            "substitutability": list(matrix),
            **({"live_drills": list(live_drills or [])} if live else {}),
            "controls": control_mapping(scenarios, matrix, live_drills),
            "scope": scope_statement(loaded, scenarios, str(full_meta["engine"]), live=live),
            "sign_off": sign_off_block(),
        }
    )
