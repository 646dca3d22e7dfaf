"""The built-in scenario library: every file loads and keeps the library's conventions.

Library scenarios are replayed incidents that users run by id and auditors read as
evidence, so each must load against its own policy, cite where its timeline comes
from, open with the comment that says what it covers, and keep its faults and SLOs
inside what the simulator and reports understand. scenarios/README.md ("Writing a
library scenario") points here for the conventions.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scenarios.faults import Staggered
from scenarios.scenario_files import LIBRARY_DIR, find_scenario, library, load_scenario
from scenarios.schema import METRICS, Scenario

LIBRARY = library()
IDS = [path.stem for path in LIBRARY]

EXPECTED = {
    "cloudflare-2025-11-18",
    "cloudflare-2025-12-05",
    "cf-gcp-2025-06-12",
    "aws-use1-dns-2025-10-20",
    "openai-2024-12-11",
    "openai-2024-12-04",
    "openai-2025-06-10",
    "anthropic-2026-06-cluster",
    "model-withdrawal",
    "failover-saturation",
    "budget-runaway",
    "eu-residency-under-outage",
    "quarter-availability",
    "soc-24x7-cost",
}
"""The scenarios the library promises (its issue); more are welcome."""

HEADER = re.compile(r"^# (?P<id>[a-z0-9][a-z0-9-]*) — \S")


def _scenario(path: Path) -> Scenario:
    return load_scenario(path).scenario


def _opening_comment(path: Path) -> str:
    """The comment lines a file starts with, joined, without their `#`."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines)


def test_the_library_holds_the_promised_scenarios() -> None:
    missing = sorted(EXPECTED - set(IDS))
    assert not missing, f"missing from {LIBRARY_DIR}: {', '.join(missing)}"


def test_library_is_in_name_order_and_found_by_id() -> None:
    assert sorted(LIBRARY) == LIBRARY
    for path in LIBRARY:
        assert find_scenario(path.stem) == path


@pytest.mark.parametrize("path", LIBRARY, ids=IDS)
def test_library_scenario_loads(path: Path) -> None:
    loaded = load_scenario(path)
    assert loaded.scenario.id == path.stem, "the library file is <id>.yaml"


@pytest.mark.parametrize("path", LIBRARY, ids=IDS)
def test_library_scenario_cites_a_source_with_a_url(path: Path) -> None:
    urls = [source.url for source in _scenario(path).sources if source.url]
    assert urls, "at least one source must have a url"
    assert all(url.startswith(("https://", "http://")) for url in urls), urls


@pytest.mark.parametrize("path", LIBRARY, ids=IDS)
def test_library_scenario_opens_with_its_id(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = HEADER.match(first)
    assert match, f"first line must be '# <id> — <what it is>', got {first!r}"
    assert match["id"] == path.stem == _scenario(path).id


@pytest.mark.parametrize("path", LIBRARY, ids=IDS)
def test_library_scenario_says_what_it_covers_and_what_a_good_policy_shows(path: Path) -> None:
    """STYLE.md: every scenario file opens with what it covers, what happens, what good is."""
    opening = _opening_comment(path).lower()
    for topic in ("what it covers", "what happens", "good policy"):
        assert topic in opening, f"the opening comment should say {topic!r}"


@pytest.mark.parametrize("path", LIBRARY, ids=IDS)
def test_library_faults_lie_within_the_run(path: Path) -> None:
    scenario = _scenario(path)
    for i, fault in enumerate(scenario.faults):
        where = f"faults[{i}] ({fault.id or fault.kind})"
        assert 0 <= fault.start < scenario.duration, where
        end = scenario.duration if fault.end is None else fault.end
        assert fault.start < end <= scenario.duration, where
        if isinstance(fault.shape, Staggered):
            length = end - fault.start
            assert all(offset < length for offset in fault.shape.starts.values()), where
            assert all(offset <= length for offset in fault.shape.ends.values()), where
    for start, end in scenario.fault_windows:
        assert 0 <= start < end <= scenario.duration


@pytest.mark.parametrize("path", LIBRARY, ids=IDS)
def test_library_slos_name_known_metrics(path: Path) -> None:
    scenario = _scenario(path)
    assert scenario.slos, "a library scenario states what a good policy keeps"
    unknown = [slo.name for slo in scenario.slos if slo.metric not in METRICS]
    assert not unknown
