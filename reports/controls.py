"""Which control of which framework each part of the evidence pack evidences.

DORA Art. 28(8) and RTS 2024/1773 Art. 10 (exit strategies and their testing), DORA Art.
24/25 (testing) and 11(6) (switchover), NIST AI 600-1 GV-6.2 (third-party contingency),
SOC 2 A1.3 and CC9.1/CC9.2, ISO/IEC 42001: the wording comes from
`../shared/reference/providers.md` §5 with its sources, and a requirement is marked
`quoted` only when the text is the source's own words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reports.pack_integrity import CHAIN_NAME, MANIFEST_NAME
from reports.substitutability import VERIFIED_SIMULATED

__all__ = ["control_mapping"]


def _control(
    framework: str,
    control: str,
    title: str,
    requirement: str,
    quoted: bool,
    source: str,
    evidence: str,
    where: Sequence[str],
    status: str,
) -> dict[str, Any]:
    return {
        "framework": framework,
        "control": control,
        "title": title,
        "requirement": requirement,
        "quoted": quoted,
        "source": source,
        "evidence": evidence,
        "where": list(where),
        "status": status,
    }


DORA = "DORA (Regulation (EU) 2022/2554)"
NIST = "NIST AI 600-1 (GenAI Profile)"
NIST_RMF = "NIST AI RMF 1.0 (AI 100-1)"
SOC2 = "SOC 2 (AICPA TSC 2017, rev. 2022)"
ISO = "ISO/IEC 42001:2023"


def control_mapping(
    scenarios: Sequence[Mapping[str, Any]],
    matrix: Sequence[Mapping[str, Any]],
    live_drills: Sequence[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Control id → what in this pack evidences it, with a status computed from the pack.

    The requirement texts are from providers.md §5; `quoted` is True only for the
    source's own words (the rest are summaries). The mapping says what the pack can
    support; whether the control is met is the auditor's judgement. `live_drills`
    (a `--live` pack) joins every control the matrix evidences: the drills show the
    same fallbacks wired in the real gateway.
    """
    n = len(scenarios)
    passed = sum(1 for s in scenarios if s.get("passed"))
    slos = [slo for s in scenarios for slo in s.get("slos", [])]
    slos_ok = sum(1 for slo in slos if slo.get("ok"))
    subjects = {str(r["subject"]) for r in matrix}
    tested_rows = [r for r in matrix if r.get("verified") == VERIFIED_SIMULATED]
    tested = {str(r["subject"]) for r in tested_rows}
    with_alternate = {str(r["subject"]) for r in tested_rows if r.get("alternates")}
    vendors = {s for s in subjects if s.startswith(("vendor:", "edge:", "cloud:"))}
    vendors_tested = vendors & tested
    faults = [f for s in scenarios for f in s.get("faults", [])]
    kinds = sorted({str(f.get("kind")) for f in faults})
    switchovers = [f for f in faults if f.get("ttf_s") is not None]
    returns = [f for f in faults if f.get("ttr_s") is not None]
    recovered = [s for s in scenarios if (s.get("metrics") or {}).get("recovered") is True]
    recovery_defined = [
        s for s in scenarios if (s.get("metrics") or {}).get("recovered") is not None
    ]
    matrix_status = (
        f"{len(tested)}/{len(subjects)} deployments and failure domains removed by a fault while "
        f"traffic depended on them; {len(with_alternate)} of them served by an alternate"
    )
    runs_status = f"{n} scenario run(s); {passed}/{n} passed; {slos_ok}/{len(slos)} SLOs held"
    m = ["evidence.json#substitutability", "report.md#substitutability-matrix"]
    if live_drills is not None:
        drilled = [d for d in live_drills if d.get("passed") is not None]
        held = sum(1 for d in drilled if d.get("passed"))
        matrix_status += f"; live fallback drills over real HTTP: {held}/{len(drilled)} passed"
        m += ["evidence.json#live_drills", "report.md#live-fallback-drills"]
    r = ["evidence.json#scenarios", "report.md#results-against-pre-declared-criteria", "runs/"]
    integrity = [MANIFEST_NAME, CHAIN_NAME, "report.md#integrity"]
    return [
        _control(
            DORA,
            "Art. 28(8)",
            "Exit strategies",
            "Exit plans shall be comprehensive, documented and, in accordance with the criteria "
            "set out in Article 4(2), shall be sufficiently tested and reviewed periodically. "
            "Financial entities shall identify alternative solutions and develop transition "
            "plans … and shall have appropriate contingency measures in place to maintain "
            "business continuity.",
            True,
            "https://streamlex.eu/articles/dora-en-art-28",
            "Substitutability matrix: for each deployment and failure domain, the scenario "
            "that removed it, which alternates served, success rate, TTF, cost and quality "
            "delta; untested alternatives are listed as gaps.",
            m,
            matrix_status,
        ),
        _control(
            "Commission Delegated Regulation (EU) 2024/1773 (RTS)",
            "Art. 10",
            "Exit plans: periodic review and testing",
            "Exit plans shall be periodically reviewed and tested, considering unforeseen and "
            "persistent service interruptions, inappropriate or failed service delivery and "
            'unexpected termination; the plan must be "realistic, feasible, based on plausible '
            'scenarios and reasonable assumptions".',
            False,
            "https://www.springlex.eu/en/packages/dora/rts-tisp-regulation/article-10/",
            "Exit-plan testing: scenario runs that remove each provider dependency (fault "
            "kinds below; outage ≈ interruption, degrade/stream faults ≈ failed delivery, "
            "withdraw ≈ termination), with each scenario's assumptions quoted in the scope "
            "statement and the hash chain showing the periodic series.",
            [*m, "report.md#scope-and-limitations", CHAIN_NAME],
            f"fault kinds exercised: {', '.join(kinds) or 'none'}",
        ),
        _control(
            DORA,
            "Art. 24",
            "Digital operational resilience testing programme",
            "A risk-based testing programme; tests by independent parties; procedures to "
            "prioritise, classify and remedy issues and to validate that weaknesses are fully "
            "addressed; appropriate tests of all ICT systems supporting critical or important "
            "functions at least yearly.",
            False,
            "https://www.springlex.eu/en/packages/dora/dora-regulation/article-24/",
            "Scenario runs with pass/fail criteria (SLOs) declared in the scenario files before "
            "the run (files copied and hashed), results against each; the sign-off block "
            "records who designed, ran and independently reviewed the test.",
            [*r, "report.md#sign-off"],
            runs_status,
        ),
        _control(
            DORA,
            "Art. 25",
            "Testing of ICT tools and systems",
            "Scenario-based tests, compatibility, performance and end-to-end testing among "
            "the tests the programme provides for.",
            False,
            "https://www.springlex.eu/en/packages/dora/dora-regulation/article-25/",
            "Each scenario is a scenario-based test of the production router core (the policy "
            "engine that serves traffic) against simulated providers; per-request and "
            "per-attempt journals in runs/.",
            r,
            runs_status,
        ),
        _control(
            DORA,
            "Art. 11(6)",
            "Response and recovery: switchover tests",
            "Test ICT business continuity and response and recovery plans at least yearly and "
            "after substantive changes, including switchover scenarios.",
            False,
            "https://atlas.valendir.com/articles/art-11",
            "Switchover tests: per fault, time to detect (TTD), time to fail over to an "
            "alternate (TTF) and time to return to the primary after the fault (TTR).",
            [*r, *m],
            f"{len(switchovers)}/{len(faults)} fault(s) with a measured switchover (TTF); "
            f"{len(returns)} with a measured return (TTR)",
        ),
        _control(
            "Commission Delegated Regulation (EU) 2024/1774 (RTS)",
            "Art. 25",
            "Testing of the ICT business continuity plans",
            'Tests "contain the testing of ICT services provided by ICT third-party service '
            'providers", include switchover to redundant capacity and consider "insolvency '
            'or failures of the ICT third-party service providers".',
            False,
            "https://advisera.com/cdr-2024-1774/testing-of-the-ict-business-continuity-plans",
            "Faults that remove whole vendor:, edge: and cloud: failure domains, and the "
            "switchover each caused.",
            m,
            f"{len(vendors_tested)}/{len(vendors)} vendor/edge/cloud domains removed",
        ),
        _control(
            NIST,
            "GV-6.2-001",
            "Value-chain risks and fallbacks",
            "Document GAI risks associated with system value chain to identify over-reliance "
            "on third-party data and to identify fallbacks.",
            True,
            "NIST AI 600-1 (extracted copies; see providers.md §5.2)",
            "The failure-domain inventory (every vendor:, edge:, cloud:, region:, dns: and "
            "model: label the policy depends on) and, per domain, the fallback that served when "
            "it was removed; a domain with no alternate shows over-reliance.",
            [*m, "evidence.json#scope"],
            matrix_status,
        ),
        _control(
            NIST,
            "GV-6.2-003",
            "Third-party incident response plans",
            "Establish incident response plans for third-party GAI technologies: … Define "
            "ownership of GAI incident response functions; Rehearse third-party GAI incident "
            "response plans at a regular cadence; Improve incident response plans based on "
            "retrospective learning; …",
            True,
            "NIST AI 600-1 (extracted copies; see providers.md §5.2)",
            "Each scenario replays a real third-party incident (sources listed per scenario) "
            "as a rehearsal; the hash chain links successive packs to show the cadence; the "
            "sign-off block names the owner.",
            [*r, CHAIN_NAME, "report.md#sign-off"],
            runs_status,
        ),
        _control(
            NIST,
            "GV-6.2-006",
            "Rollover and fallback testing",
            "Establish policies and procedures to test and manage risks related to rollover "
            "and fallback technologies for GAI systems, acknowledging that rollover and "
            "fallback may include manual processing.",
            True,
            "NIST AI 600-1 (extracted copies; see providers.md §5.2)",
            "Third-party contingency tested per deployment and domain (substitutability "
            "matrix); manual processing is out of scope (see the scope statement).",
            [*m, "report.md#scope-and-limitations"],
            matrix_status,
        ),
        _control(
            NIST_RMF,
            "GOVERN 6.2",
            "Third-party contingency processes",
            "Contingency processes are in place to handle failures or incidents in third-party "
            "data or AI systems deemed to be high-risk.",
            True,
            "https://documentations.seclea.com/nist-ai-risk-management-framework/"
            "grn-6-managing-3rd-party-risk/grn-6.2-3rd-party-contingency",
            "The policy's fallback chains (copied under policy/) exercised by the scenarios.",
            [*m, "policy/"],
            matrix_status,
        ),
        _control(
            SOC2,
            "A1.3",
            "Recovery plan testing",
            "The entity tests recovery plan procedures supporting system recovery to meet its "
            "objectives.",
            True,
            "http://www.compliancewiki.org/article/57/soc-2-recovery-testing-a1-3-251.html",
            "Recovery testing: the recovery (metastability) check and TTR per scenario, against "
            "objectives declared before the run; re-tests after a change link to earlier packs "
            "through the hash chain.",
            [*r, CHAIN_NAME],
            f"recovered in {len(recovered)}/{len(recovery_defined)} scenario(s) where a fault "
            "ended before the run did",
        ),
        _control(
            SOC2,
            "CC9.1",
            "Risk mitigation for business disruptions",
            "The entity identifies, selects and develops risk mitigation activities for risks "
            "arising from potential business disruptions.",
            False,
            "https://auditsuisse.com/vendor-management-for-soc-2-compliance",
            "Availability during faults and the resilience score per scenario: the mitigation "
            "(fallback routing) measured under the disruption.",
            r,
            runs_status,
        ),
        _control(
            SOC2,
            "CC9.2",
            "Vendor and business partner risk",
            "The entity assesses and manages risks associated with vendors and business partners.",
            True,
            "https://auditsuisse.com/vendor-management-for-soc-2-compliance",
            "Vendor risk: the matrix rows for vendor:, edge: and cloud: domains (what losing "
            "each vendor did to success rate, cost and quality).",
            m,
            f"{len(vendors_tested)}/{len(vendors)} vendor/edge/cloud domains removed",
        ),
        _control(
            ISO,
            "A.10.3",
            "Suppliers",
            "The organisation shall establish a process to ensure that its usage of services, "
            "products or materials provided by suppliers aligns with the responsible "
            "development and use of AI systems.",
            True,
            "https://controlstack.au/controls/iso42001-annex-a-10-3-manage-suppliers-to-support-"
            "responsible-ai-use/",
            "The supplier deployments in scope (policy copy, scope statement) and the tested "
            "behaviour when each is lost.",
            ["policy/", "evidence.json#scope", *m],
            matrix_status,
        ),
        _control(
            ISO,
            "7.5",
            "Control of documented information (clause wording not verified)",
            "Documented information is available, protected and its integrity preserved.",
            False,
            "ISO/IEC 42001:2023 clause structure (text not retrieved; providers.md §5.4)",
            "Integrity: SHA-256 of every file in MANIFEST.sha256, the hash chain to the previous "
            "pack, and `blastradius evidence verify` (or `sha256sum -c`) to re-check.",
            integrity,
            "manifest and chain written with this pack",
        ),
    ]
