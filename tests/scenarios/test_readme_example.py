"""The annotated example in scenarios/README.md is a real, valid scenario."""

from __future__ import annotations

import re
from pathlib import Path

from scenarios.scenario_files import load_scenario

README = Path(__file__).resolve().parents[2] / "scenarios" / "README.md"


def test_annotated_example_loads(tmp_path: Path) -> None:
    (example,) = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    path = tmp_path / "example.yaml"
    path.write_text(example, encoding="utf-8")
    loaded = load_scenario(path)
    scenario = loaded.scenario
    assert scenario.id == "cloudflare-2025-11-18"
    assert loaded.policy.name == "domain-aware"
    world = scenario.world.for_deployment("claude-sonnet-4@bedrock-us-east-1")
    assert world.capacity == 150 and world.hidden_domains == ("cloud:gcp",)
    assert world.queue == 800
    assert [slo.name for slo in scenario.slos] == [
        "availability_during_faults >= 0.999",
        "amplification_peak <= 2",
        "recovered == true",
    ]
