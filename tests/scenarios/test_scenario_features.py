"""Language features added for the library: piecewise curves, shared random outages,
pinned bursts and route lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.core.errors import ConfigError
from scenarios.faults import Outage, RandomOutages, level_at
from scenarios.policy_files import load_policy
from scenarios.scenario_files import LIBRARY_DIR, load_scenario
from scenarios.schema import Task


def outage(shape: dict[str, object], **fields: object) -> Outage:
    data = {"kind": "outage", "target": {"domains": ["vendor:x"]}, "shape": shape, **fields}
    return Outage.model_validate(data)


@pytest.mark.parametrize(
    ("now", "level"),
    [
        (99, 0.0),
        (100, 0.0),
        (130, 0.5),
        (160, 1.0),
        (280, 0.75),
        (400, 0.5),
        (999, 0.5),
        (1000, 0.0),
    ],
)
def test_piecewise_interpolates_between_points(now: float, level: float) -> None:
    fault = outage(
        {"kind": "piecewise", "points": [["0s", 0], ["1m", 1], ["5m", 0.5]]}, start=100, end=1000
    )
    assert level_at(fault, now, member="a", seed=1, fault_index=0) == pytest.approx(level)


def test_piecewise_offsets_must_increase() -> None:
    with pytest.raises(ValueError, match="increase"):
        outage({"kind": "piecewise", "points": [["1m", 0], ["30s", 1]]})


def test_shared_random_outages_hit_every_member_together() -> None:
    shape = {"kind": "random", "availability": 0.9, "median_outage": "10m", "p90_outage": "30m"}
    shared = outage({**shape, "shared": True})
    separate = outage(shape)
    assert isinstance(shared.shape, RandomOutages) and shared.shape.shared
    times = range(0, 86400 * 5, 600)

    def down(fault: Outage, member: str) -> list[float]:
        return [level_at(fault, t, member=member, seed=3, fault_index=0) for t in times]

    assert down(shared, "a") == down(shared, "b")
    assert any(down(shared, "a"))
    assert down(separate, "a") != down(separate, "b")


def test_task_route_list_takes_the_first_route_the_policy_has() -> None:
    task = Task(name="triage", route=("triage", "default"))
    assert task.route_in({"default", "triage"}) == "triage"
    assert task.route_in({"default"}) == "default"
    assert task.route_in({"other"}) is None
    assert Task.model_validate({"name": "t", "route": "solo"}).route == ("solo",)


def test_a_tiered_scenario_also_runs_against_a_single_route_policy() -> None:
    path = LIBRARY_DIR / "soc-24x7-cost.yaml"
    tiered = load_scenario(path)
    single = load_scenario(path, policy="single-vendor")
    routes = {route.name for route in single.policy.routes}
    assert {task.route_in(routes) for task in single.scenario.traffic.tasks} == {"default"}
    tiered_routes = {route.name for route in tiered.policy.routes}
    assert {task.route_in(tiered_routes) for task in tiered.scenario.traffic.tasks} == {
        "triage",
        "investigation",
        "escalation",
    }
    assert load_policy(tiered.policy_path).name == "cost-cascade"


SCENARIO = """\
id: pinned
title: pinned burst
description: a burst pinned to one tenant and task
sources: [a source]
duration: 1h
policy: multi-tenant
traffic:
  arrivals:
    kind: bursts
    rate: 1
    bursts:
      - {start: 10m, duration: 5m, rate: 5, tenant: TENANT, task: TASK}
  tenants: {agents: 0.5, support: 0.5}
  tasks:
    - {name: chat, route: default}
"""


@pytest.mark.parametrize(
    ("tenant", "task", "error"),
    [
        ("agents", "chat", None),
        (
            "nobody",
            "chat",
            "traffic.arrivals.bursts[0].tenant: no tenant 'nobody' in traffic.tenants",
        ),
        (
            "agents",
            "nothing",
            "traffic.arrivals.bursts[0].task: no task 'nothing' in traffic.tasks",
        ),
    ],
)
def test_bursts_pinned_to_a_tenant_and_task_are_checked(
    tmp_path: Path, tenant: str, task: str, error: str | None
) -> None:
    path = tmp_path / "pinned.yaml"
    path.write_text(SCENARIO.replace("TENANT", tenant).replace("TASK", task), encoding="utf-8")
    if error is None:
        load_scenario(path)
        return
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    assert [str(issue) for issue in caught.value.issues] == [f"{path}:12: {error}"]
