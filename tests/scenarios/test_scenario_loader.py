"""Broken scenario files are reported by file, 1-based line and field path; good ones load.

A scenario is checked on its own and then against its policy, and both kinds of
problem must reach the user the same way: `file:line: field: message`. Each case
below edits one valid scenario, writes it to disk and checks the one issue the
loader reports; the expected line is marked in the YAML with a `# <-` comment, as
in test_policy_loader.py, so line numbers cannot drift from the text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from router.core.errors import ConfigError, ConfigIssue
from scenarios.policy_files import POLICY_DIR
from scenarios.scenario_files import LIBRARY_DIR, load_scenario
from scenarios.schema import SLO, Scenario, World
from tests.scenarios.editing import MARK, edited, marked_line
from tests.scenarios.editing import write as write_file

BASE = """\
# tiny — a minimal valid scenario that the cases below break one field at a time.
id: tiny
title: Tiny shared-edge outage
description: One oscillating edge outage and a degraded tail against domain-aware.
sources:
  - title: Cloudflare post-mortem
    url: https://example.org/postmortem
t0: "2025-11-18T11:00:00Z"
duration: 2h
policy: domain-aware
world:
  defaults:
    capacity: 400
    ttft: {median: 600ms, p99: 3s}
  deployments:
    gpt-4o@openai:
      capacity: 100
traffic:
  arrivals: {kind: poisson, rate: 20}
  tasks:
    - name: chat
      route: default
faults:
  - id: edge-5xx
    kind: outage
    outcome: edge_5xx
    target: {domains: ["edge:cloudflare"]}
    start: 20m
    end: 1h30m
    shape: {kind: oscillate, period: 5m, duty: 0.5}
  - id: tail
    kind: degrade
    target: {deployments: [gpt-4o@openai]}
    start: 1h30m
    error_rate: 0.05
slos:
  - availability_during_faults >= 0.999
  - recovered == true
"""

EU = ("policy: domain-aware", "policy: eu-resident")
NAIVE = POLICY_DIR / "naive-two-vendor.yaml"


def scenario(*edits: tuple[str, str]) -> str:
    """BASE with each `(old, new)` replaced; `old` must occur exactly once."""
    return edited(BASE, *edits)


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    return write_file(tmp_path, text, name)


def issues_of(path: Path, **kwargs: Any) -> list[ConfigIssue]:
    """The issues `load_scenario` reports for `path` (failing the test if it loads)."""
    with pytest.raises(ConfigError) as caught:
        load_scenario(path, **kwargs)
    assert caught.value.issues, "a ConfigError always carries at least one issue"
    return caught.value.issues


STAGGERED_BLOCK = """\
    shape:
      kind: staggered
      starts:
        gpt-4o@openai: 0
"""

# (scenario text with the expected line marked, expected field path, message fragment)
CASES = [
    pytest.param(
        scenario(("    kind: outage\n", f"    kind: explosion {MARK}\n")),
        "faults[0].kind",
        "unknown kind; expected one of 'outage', 'degrade'",
        id="unknown-fault-kind",
    ),
    pytest.param(
        scenario(
            ("id: tiny", f"id: tiny {MARK}"),
            (BASE[BASE.index("\ntraffic:") : BASE.index("\nfaults:")], ""),
        ),
        "traffic",
        "Field required",
        id="missing-traffic-points-at-the-document",
    ),
    pytest.param(
        scenario(("duration: 2h", f"duration: 2 hours {MARK}")),
        "duration",
        "'2 hours' is not a duration: use seconds (90) or text like '600ms', '90s', '25m'",
        id="bad-duration-text",
    ),
    pytest.param(
        scenario(("start: 20m", f"start: 11:20 {MARK}")),
        "faults[0].start",
        "'11:20' is not a duration",
        id="clock-time-is-not-read-as-base-60-seconds",
    ),
    pytest.param(
        scenario(("end: 1h30m", f"end: 10m {MARK}")),
        "faults[0].end",
        "end must be after start",
        id="fault-end-before-start",
    ),
    pytest.param(
        scenario(("    start: 1h30m", f"    start: 3h {MARK}")),
        "faults[1].start",
        "starts after the run ends",
        id="fault-start-after-duration",
    ),
    pytest.param(
        scenario(("end: 1h30m", f"end: 2h30m {MARK}")),
        "faults[0].end",
        "ends after the run ends (leave end out instead)",
        id="fault-end-after-duration",
    ),
    pytest.param(
        scenario(('["edge:cloudflare"]}', f'["edge:cloudfare"]}} {MARK}')),
        "faults[0].target",
        "selects no deployment of policy 'domain-aware'",
        id="fault-target-typo-selects-nothing",
    ),
    pytest.param(
        scenario(('["edge:cloudflare"]}', f'["Cloudflare"]}} {MARK}')),
        "faults[0].target.domains",
        "failure domain 'Cloudflare' must look like 'kind:name'",
        id="bad-domain-label",
    ),
    pytest.param(
        scenario(
            (
                "shape: {kind: oscillate, period: 5m, duty: 0.5}",
                "shape: {kind: random, availability: 0.99, median_outage: 10m, p90_outage: 5m} "
                + MARK,
            )
        ),
        "faults[0].shape",
        "p90_outage must be ≥ median_outage",
        id="random-p90-below-median",
    ),
    pytest.param(
        scenario(
            ("    error_rate: 0.05\n", f"    error_rate: 0.05\n    outcome_code: 500 {MARK}\n")
        ),
        "faults[1].outcome_code",
        "unknown field (check its spelling and place)",
        id="unknown-field-inside-a-fault",
    ),
    pytest.param(
        scenario(
            (
                "    shape: {kind: oscillate, period: 5m, duty: 0.5}\n",
                STAGGERED_BLOCK + f"        gemini-2.5-pro@vertex-us-central1: 5m {MARK}\n",
            )
        ),
        "faults[0].shape.starts.gemini-2.5-pro@vertex-us-central1",
        "not a member of this fault's target",
        id="staggered-member-not-in-target",
    ),
    pytest.param(
        scenario(
            (
                "    shape: {kind: oscillate, period: 5m, duty: 0.5}\n",
                STAGGERED_BLOCK + f"      ends:\n        gpt-4o@openai: 2h {MARK}\n",
            )
        ),
        "faults[0].shape.ends.gpt-4o@openai",
        "ends after the fault ends",
        id="staggered-member-ends-after-the-fault",
    ),
    pytest.param(
        scenario(
            (
                "    shape: {kind: oscillate, period: 5m, duty: 0.5}\n",
                "    shape:\n      kind: staggered\n      starts:\n        gpt-4o@openai: 10m\n"
                f"      ends:\n        gpt-4o@openai: 5m {MARK}\n",
            )
        ),
        "faults[0].shape.ends.gpt-4o@openai",
        "ends before this member starts",
        id="staggered-member-ends-before-it-starts",
    ),
    pytest.param(
        scenario(
            (
                "slos:\n",
                "  - kind: content_filter\n    target: {deployments: [gpt-4o@openai]}\n"
                f"    task: code {MARK}\nslos:\n",
            )
        ),
        "faults[2].task",
        "no task 'code' in traffic.tasks",
        id="content-filter-task-not-in-tasks",
    ),
    pytest.param(
        scenario(("  - recovered == true", f"  - recoverd == true {MARK}")),
        "slos[1].metric",
        "unknown metric 'recoverd'; known: requests, availability",
        id="unknown-slo-metric",
    ),
    pytest.param(
        scenario((">= 0.999", f"=> 0.999 {MARK}")),
        "slos[0]",
        "'availability_during_faults => 0.999' is not 'metric op value'",
        id="malformed-slo",
    ),
    pytest.param(
        scenario(("recovered == true", f"availability >= high {MARK}")),
        "slos[1]",
        "'high' in 'availability >= high' is not a number or true/false",
        id="slo-value-not-a-number",
    ),
    pytest.param(
        scenario(("recovered == true", f"availability >= nan {MARK}")),
        "slos[1]",
        "'nan' in 'availability >= nan' is not a number or true/false",
        id="slo-value-nan",
    ),
    pytest.param(
        scenario(("      route: default", f"      route: summarise {MARK}")),
        "traffic.tasks[0].route",
        "policy 'domain-aware' has no route 'summarise'",
        id="task-route-not-in-policy",
    ),
    pytest.param(
        scenario(
            EU,
            (
                "  arrivals: {kind: poisson, rate: 20}\n",
                "  arrivals: {kind: poisson, rate: 20}\n"
                f"  tenants: {{eu-bank: 3, acme: 1}} {MARK}\n",
            ),
        ),
        "traffic.tenants.acme",
        "policy 'eu-resident' has no tenant 'acme'",
        id="traffic-tenant-unknown",
    ),
    pytest.param(
        scenario(EU, ("traffic:", f"traffic: {MARK}")),
        "traffic.tenants",
        "policy 'eu-resident' has tenants; traffic must name them",
        id="policy-with-tenants-but-traffic-names-none",
    ),
    pytest.param(
        scenario(("policy: domain-aware", f"policy: domain-awre {MARK}")),
        "policy",
        "no policy 'domain-awre' (a shipped name or a path relative to this file)",
        id="unknown-policy-name",
    ),
    pytest.param(
        scenario(("policy: domain-aware", f"policy: ../policies/mine.yaml {MARK}")),
        "policy",
        "no policy '../policies/mine.yaml'",
        id="missing-policy-path",
    ),
    pytest.param(
        scenario(
            (
                "arrivals: {kind: poisson, rate: 20}",
                f"arrivals: {{kind: csv, file: arrivals.csv}} {MARK}",
            )
        ),
        "traffic.arrivals.file",
        "no such file 'arrivals.csv'",
        id="csv-arrivals-file-missing",
    ),
    pytest.param(
        scenario(
            (
                "  arrivals: {kind: poisson, rate: 20}\n",
                "  arrivals:\n    kind: bursts\n    rate: 10\n    bursts:\n"
                f"      - start: 3h {MARK}\n        duration: 10m\n        rate: 100\n",
            )
        ),
        "traffic.arrivals.bursts[0].start",
        "starts after the run ends",
        id="burst-after-the-run",
    ),
    pytest.param(
        scenario(
            (
                "ttft: {median: 600ms, p99: 3s}",
                f"ttft: {{median: 600ms, p99: 3s, quantiles: [[0.5, 0.6], [0.99, 3]]}} {MARK}",
            )
        ),
        "world.defaults.ttft",
        "give either median and p99, or quantiles",
        id="latency-both-forms",
    ),
    pytest.param(
        scenario(("ttft: {median: 600ms, p99: 3s}", f"ttft: {{}} {MARK}")),
        "world.defaults.ttft",
        "give either median and p99, or quantiles",
        id="latency-neither-form",
    ),
    pytest.param(
        scenario(("ttft: {median: 600ms, p99: 3s}", f"ttft: {{median: 3s, p99: 600ms}} {MARK}")),
        "world.defaults.ttft",
        "need 0 < median ≤ p99",
        id="latency-median-above-p99",
    ),
    pytest.param(
        scenario(("ttft: {median: 600ms, p99: 3s}", f"ttft: {{median: 600ms}} {MARK}")),
        "world.defaults.ttft",
        "a lognormal latency needs both median and p99",
        id="latency-median-without-p99",
    ),
    pytest.param(
        scenario(
            (
                "ttft: {median: 600ms, p99: 3s}",
                f"ttft: {{quantiles: [[0.5, 3.0], [0.99, 1.0]]}} {MARK}",
            )
        ),
        "world.defaults.ttft",
        "quantiles need ≥ 2 [q, seconds] points, both increasing",
        id="quantiles-not-increasing",
    ),
    pytest.param(
        scenario(
            (
                "  tasks:\n    - name: chat\n      route: default\n",
                f"  tasks: {MARK}\n    - name: chat\n      route: default\n    - name: chat\n",
            )
        ),
        "traffic.tasks",
        "task names must be unique; repeated: chat",
        id="duplicate-task-names",
    ),
    pytest.param(
        scenario(("id: tiny", f"id: Tiny {MARK}")),
        "id",
        "id must be lowercase letters, digits and dashes",
        id="bad-id-uppercase",
    ),
    pytest.param(
        scenario(('t0: "2025-11-18T11:00:00Z"', f't0: "18/11/2025 11:00" {MARK}')),
        "t0",
        "t0 must be an ISO 8601 time, e.g. 2025-11-18T11:00:00Z",
        id="bad-t0",
    ),
    pytest.param(
        scenario(("      capacity: 100", f"      capacity: lots {MARK}")),
        "world.deployments.gpt-4o@openai.capacity",
        "valid integer",
        id="world-override-bad-field",
    ),
    pytest.param(
        scenario(("      capacity: 100", f"      capasity: 100 {MARK}")),
        "world.deployments.gpt-4o@openai.capasity",
        "unknown field (check its spelling and place)",
        id="world-override-misspelled-field",
    ),
    pytest.param(
        scenario(("  - title: Cloudflare post-mortem", f"  - title: '' {MARK}")),
        "sources[0].title",
        "at least 1 character",
        id="empty-source-title",
    ),
]


@pytest.mark.parametrize(("text", "field", "message"), CASES)
def test_broken_scenario_names_file_line_and_field(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    path = write(tmp_path, text)
    [issue] = issues_of(path)
    assert (issue.file, issue.line, issue.field) == (str(path), marked_line(text), field), issue
    assert message in issue.message, issue
    assert str(issue) == f"{path}:{issue.line}: {field}: {issue.message}"


def test_the_message_reads_like_the_contract(tmp_path: Path) -> None:
    """DESIGN.md: "message names file, line and field" — spelled out once, in full."""
    path = write(tmp_path, scenario(('["edge:cloudflare"]}', '["edge:cloudfare"]}')))
    assert [str(issue) for issue in issues_of(path)] == [
        f"{path}:27: faults[0].target: selects no deployment of policy 'domain-aware'"
    ]


def test_every_cross_check_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = scenario(
        ("      route: default", "      route: summarise"),
        ('["edge:cloudflare"]}', '["edge:cloudfare"]}'),
        ("    start: 1h30m", "    start: 3h"),
    )
    issues = issues_of(write(tmp_path, text))
    assert [(issue.line, issue.field) for issue in issues] == [
        (22, "traffic.tasks[0].route"),
        (27, "faults[0].target"),
        (34, "faults[1].start"),
    ], "in file order"


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    [issue] = issues_of(tmp_path / "nope.yaml")
    assert issue.file == str(tmp_path / "nope.yaml") and "cannot read" in issue.message


def test_a_list_is_not_a_scenario(tmp_path: Path) -> None:
    [issue] = issues_of(write(tmp_path, "- id: tiny\n"))
    assert (issue.line, issue.field) == (1, "")
    assert "a scenario must be a mapping" in issue.message


# -- files that load ------------------------------------------------------------------------


def test_base_scenario_loads(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, BASE))
    assert loaded.scenario.id == "tiny"
    assert loaded.policy.name == "domain-aware"
    assert loaded.policy_path == POLICY_DIR / "domain-aware.yaml"


def test_the_library_example_loads() -> None:
    loaded = load_scenario(LIBRARY_DIR / "cloudflare-2025-11-18.yaml")
    scenario = loaded.scenario
    assert (scenario.id, scenario.duration, loaded.policy.name) == (
        "cloudflare-2025-11-18",
        7 * 3600.0,
        "domain-aware",
    )
    assert [fault.kind for fault in scenario.faults] == ["outage"]
    assert scenario.fault_windows == [(1200.0, 12600.0)]
    assert all(source.url for source in scenario.sources)


def test_policy_override_loads_against_another_policy(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, BASE), policy=NAIVE)
    assert loaded.policy.name == "naive-two-vendor"
    assert loaded.policy_path == NAIVE
    assert loaded.scenario.policy == "domain-aware", "the file still names its own policy"


FAULT_ON_VERTEX = """\
  - id: vertex-only
    kind: outage
    target: {deployments: [gemini-2.5-pro@vertex-us-central1]}
    start: 1h
slos:
"""


def test_a_fault_outside_the_override_policy_is_allowed(tmp_path: Path) -> None:
    """A world describes the provider universe; an override policy may use part of it."""
    path = write(tmp_path, scenario(("slos:\n", FAULT_ON_VERTEX)))
    assert load_scenario(path).scenario.faults[2].id == "vertex-only"
    assert load_scenario(path, policy=NAIVE).policy.name == "naive-two-vendor"


def test_the_same_fault_is_an_error_under_the_scenarios_own_policy(tmp_path: Path) -> None:
    text = scenario(
        ("slos:\n", FAULT_ON_VERTEX), ("policy: domain-aware", "policy: naive-two-vendor")
    )
    [issue] = issues_of(write(tmp_path, text))
    assert (issue.line, issue.field) == (38, "faults[2].target")
    assert issue.message == "selects no deployment of policy 'naive-two-vendor'"


def test_policy_path_relative_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "mine.yaml").write_text(NAIVE.read_text(encoding="utf-8"))
    (tmp_path / "scenarios").mkdir()
    text = scenario(("policy: domain-aware", "policy: ../policies/mine.yaml"))
    loaded = load_scenario(write(tmp_path / "scenarios", text))
    assert loaded.policy.name == "mine"


def test_hidden_domains_count_as_targets(tmp_path: Path) -> None:
    """A fault on a dependency the policy does not know about still selects its deployment."""
    text = scenario(
        ("      capacity: 100\n", "      capacity: 100\n      hidden_domains: [dns:vendor/x]\n"),
        ('["edge:cloudflare"]}', '["dns:vendor/x"]}'),
    )
    assert load_scenario(write(tmp_path, text)).scenario.faults[0].target.domains == (
        "dns:vendor/x",
    )


def test_staggered_members_by_domain_and_id_load(tmp_path: Path) -> None:
    text = scenario(
        (
            "    shape: {kind: oscillate, period: 5m, duty: 0.5}\n",
            STAGGERED_BLOCK
            + "        edge:cloudflare: 10m\n      ends:\n        gpt-4o@openai: 1h\n",
        )
    )
    shape = load_scenario(write(tmp_path, text)).scenario.faults[0].shape
    assert shape.kind == "staggered"


def test_csv_arrivals_next_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "arrivals.csv").write_text("arrival_s\n0.5\n1.0\n", encoding="utf-8")
    text = scenario(("{kind: poisson, rate: 20}", "{kind: csv, file: arrivals.csv}"))
    assert load_scenario(write(tmp_path, text)).scenario.traffic.arrivals.kind == "csv"


def test_unquoted_t0_is_still_an_iso_time(tmp_path: Path) -> None:
    """YAML turns an unquoted timestamp into a datetime; the scenario keeps it as ISO text."""
    text = scenario(('t0: "2025-11-18T11:00:00Z"', "t0: 2025-11-18T11:00:00Z"))
    assert load_scenario(write(tmp_path, text)).scenario.t0 == "2025-11-18T11:00:00+00:00"


def test_fault_windows_run_open_ended_faults_to_the_end(tmp_path: Path) -> None:
    scenario_ = load_scenario(write(tmp_path, BASE)).scenario
    assert scenario_.fault_windows == [(1200.0, 5400.0), (5400.0, 7200.0)]


# -- the world: defaults, then per-deployment overrides field by field -----------------------


def test_world_for_deployment_merges_field_by_field() -> None:
    world = World.model_validate(
        {
            "defaults": {"capacity": 400, "queue": 800, "error_rate": 0.01},
            "deployments": {
                "claude@bedrock": {"capacity": 150, "hidden_domains": ["cloud:gcp"]},
                "gpt@azure": {"queue": 400},
            },
        }
    )
    claude = world.for_deployment("claude@bedrock")
    assert (claude.capacity, claude.queue, claude.error_rate) == (150, 800, 0.01)
    assert claude.hidden_domains == ("cloud:gcp",)
    gpt = world.for_deployment("gpt@azure")
    assert (gpt.capacity, gpt.queue) == (400, 400), "an override equal to the class default wins"
    assert world.for_deployment("anything-else") == world.defaults
    assert world.defaults.ttft.median == 0.6, "fields left out of defaults keep the class default"


# -- SLOs: written as text, checked against observed values ----------------------------------


def slo(text: str) -> SLO:
    """One SLO parsed the way a scenario file's `slos` list parses it."""
    data = {
        "id": "x",
        "title": "x",
        "description": "x",
        "sources": ["x"],
        "duration": 60,
        "policy": "domain-aware",
        "traffic": {"arrivals": {"kind": "poisson", "rate": 1}},
        "slos": [text],
    }
    return Scenario.model_validate(data).slos[0]


@pytest.mark.parametrize(
    ("text", "metric", "op", "value", "name"),
    [
        ("availability >= 0.9", "availability", ">=", 0.9, "availability >= 0.9"),
        ("recovered == true", "recovered", "==", True, "recovered == true"),
        ("recovered != false", "recovered", "!=", False, "recovered != false"),
        ("  amplification_peak<=2.0 ", "amplification_peak", "<=", 2.0, "amplification_peak <= 2"),
        ("ttd_s < 30", "ttd_s", "<", 30.0, "ttd_s < 30"),
        ("cost_usd > 1e3", "cost_usd", ">", 1000.0, "cost_usd > 1000"),
    ],
)
def test_slo_parsing(text: str, metric: str, op: str, value: float | bool, name: str) -> None:
    parsed = slo(text)
    assert (parsed.metric, parsed.op, parsed.value, parsed.name) == (metric, op, value, name)
    assert type(parsed.value) is type(value)


@pytest.mark.parametrize(
    ("text", "observed", "holds"),
    [
        ("availability >= 0.9", 0.9, True),
        ("availability >= 0.9", 0.8999, False),
        ("availability > 0.9", 0.9, False),
        ("amplification_peak <= 2", 2.0, True),
        ("amplification_peak < 2", 2.0, False),
        ("compliance_violations == 0", 0, True),
        ("compliance_violations == 0", 1, False),
        ("compliance_violations != 0", 1, True),
        ("recovered == true", True, True),
        ("recovered == true", False, False),
        ("recovered == false", False, True),
        ("ttd_s <= 30", None, False),
        ("ttd_s >= 0", None, False),
    ],
)
def test_slo_holds(text: str, observed: float | bool | None, holds: bool) -> None:
    assert slo(text).holds(observed) is holds
