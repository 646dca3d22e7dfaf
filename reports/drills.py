"""Live fallback drills, as pure functions: which fault removes a subject, and what a drill proved.

A simulated run shows that the router core *would* fail over; an auditor reading DORA Art.
28(8) ("sufficiently tested") or SOC 2 A1.3 also wants to see that the fallback is *wired*:
that the production gateway, over real HTTP, with the policy's real routes, sends traffic
elsewhere when a dependency disappears. A drill does exactly that for one subject of the
substitutability matrix (a deployment or a failure domain): a fresh gateway (fresh
breakers) in front of the fake world, one control-API fault that removes the subject, a
handful of plain chat requests to every route whose chain contains a removed deployment.

`simulator.live.run_drills` does the I/O; this module decides which fault fits a subject
(`drill_fault`), turns what the client saw into the drill's record (`drill_record`), and
marks the matrix rows of drilled subjects (`merge_live`). A drill that cannot pass because a
route has nothing left to fail over to is recorded as failed, with those routes named: a
missing alternative is a finding, not something to leave out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DRILL_FAILED",
    "DRILL_NO_ROUTE",
    "DRILL_PASSED",
    "DrillAnswer",
    "drill_fault",
    "drill_record",
    "drill_routes",
    "drill_summary",
    "merge_live",
]

DRILL_PASSED = "passed"
"""Every request of the drill was answered (200) by a deployment the fault did not remove."""
DRILL_FAILED = "failed"
"""At least one request failed, or was answered by a removed deployment."""
DRILL_NO_ROUTE = "no route depends on it"
"""No route's chain contains a removed deployment: nothing to drill, no verdict."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DrillAnswer:
    """What the drill's client saw for one request: the gateway's status and headers.

    `served_by` is `x-blastradius-deployment` (on an error, the deployment the first
    upstream error came from); `reason` is `x-blastradius-reason` on an error; `error`
    names a failure below HTTP (the gateway did not answer at all).
    """

    route: str
    tenant: str
    status: int | None
    served_by: str | None
    reason: str | None = None
    error: str | None = None
    latency_s: float = 0.0


def drill_fault(subject: str, kind: str, deployments: Sequence[str]) -> dict[str, Any]:
    """The control-API rule (`POST /faults` body) that removes `subject` for every request.

    Each failure domain is removed where it fails in the real world: an `edge:` domain at
    the edge proxy (a 5xx from the CDN, before the vendor), a `dns:` domain in name
    resolution (new connections cannot resolve), any other domain and a deployment as
    the provider's own 5xx.
    """
    if kind == "deployment":
        return {"kind": "server", "target": {"deployments": list(deployments)}}
    if subject.startswith("edge:"):
        return {"kind": "edge_5xx", "target": {"domains": [subject]}}
    if subject.startswith("dns:"):
        return {"kind": "dns", "target": {"domains": [subject]}}
    return {"kind": "server", "target": {"domains": [subject]}}


def drill_routes(
    chains: Mapping[str, Sequence[str]], deployments: Iterable[str]
) -> list[tuple[str, list[str]]]:
    """`(route, deployments left in its chain)` for each route whose chain has a removed one.

    `chains` is route name → targets then fallbacks, as the substitutability matrix reads
    a route; an empty remainder means the route has no alternative left.
    """
    removed = set(deployments)
    out: list[tuple[str, list[str]]] = []
    for name, chain in chains.items():
        if removed & set(chain):
            left = list(dict.fromkeys(d for d in chain if d not in removed))
            out.append((name, left))
    return out


def drill_record(
    *,
    subject: str,
    kind: str,
    deployments: Sequence[str],
    fault: Mapping[str, Any],
    routes: Sequence[tuple[str, Sequence[str]]],
    answers: Sequence[DrillAnswer],
    fault_hits: int | None = None,
    provider_attempts: Mapping[str, Mapping[str, int]] | None = None,
) -> dict[str, Any]:
    """One drill as evidence.json records it, with its verdict.

    Passed only when every request was answered 200 by a deployment the fault did not
    remove; an answer from a removed deployment would mean the fault did not bite, so it
    fails the drill too. `fault_hits` is how many times the fakes applied the fault (the
    control API's count: did the fault bite at all?); `provider_attempts` is the providers'
    side (attempts and outcomes per deployment, from the fakes' journal): proof the removed
    deployments were asked and failed, not merely skipped.
    """
    removed = set(deployments)
    ok = [a for a in answers if a.status == 200]
    served = Counter(a.served_by or "(unknown)" for a in ok)
    from_removed = sorted({a.served_by for a in ok if a.served_by is not None} & removed)
    failed = [a for a in answers if a.status != 200]
    reasons = Counter(a.reason or a.error or f"http {a.status}" for a in failed)
    if not routes:
        verdict = DRILL_NO_ROUTE
    elif answers and not failed and not from_removed:
        verdict = DRILL_PASSED
    else:
        verdict = DRILL_FAILED
    return {
        "subject": subject,
        "kind": kind,
        "deployments": list(deployments),
        "fault": dict(fault),
        "fault_hits": fault_hits,
        "routes": [name for name, _ in routes],
        "no_alternative": [name for name, left in routes if not left],
        "tenants": sorted({a.tenant for a in answers if a.tenant}),
        "requests": len(answers),
        "answered": len(ok),
        "served_by": dict(sorted(served.items(), key=lambda item: (-item[1], item[0]))),
        "served_by_removed": from_removed,
        "failed_reasons": dict(sorted(reasons.items())),
        "provider_attempts": {k: dict(v) for k, v in sorted((provider_attempts or {}).items())},
        "passed": None if verdict == DRILL_NO_ROUTE else verdict == DRILL_PASSED,
        "verdict": verdict,
        "journal": [
            {
                "route": a.route,
                "tenant": a.tenant,
                "status": a.status,
                "served_by": a.served_by,
                "reason": a.reason,
                "error": a.error,
                "latency_s": round(a.latency_s, 4),
            }
            for a in answers
        ],
    }


def merge_live(
    matrix: Sequence[Mapping[str, Any]], drills: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The matrix with `live: "passed" | "failed"` on every row of a drilled subject.

    Subjects no route depends on were not drilled and keep their rows unchanged, so the
    matrix never claims a live test that did not happen.
    """
    verdicts = {
        str(d["subject"]): DRILL_PASSED if d["passed"] else DRILL_FAILED
        for d in drills
        if d.get("passed") is not None
    }
    out: list[dict[str, Any]] = []
    for row in matrix:
        merged = dict(row)
        verdict = verdicts.get(str(row.get("subject")))
        if verdict is not None:
            merged["live"] = verdict
        out.append(merged)
    return out


def drill_summary(drills: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts for the pack's summary: drills run, passed, and the subjects that failed."""
    run = [d for d in drills if d.get("passed") is not None]
    return {
        "live_drills": len(run),
        "live_drills_passed": sum(1 for d in run if d["passed"]),
        "live_drills_failed": [str(d["subject"]) for d in run if not d["passed"]],
    }
