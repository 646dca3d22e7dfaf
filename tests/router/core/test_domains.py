"""Failure-domain detector: members failing together make one suspected outage.

Table tests read as small incident timelines: which members of which domain
failed or succeeded when, and whether the shared domain ends up suspect.
"""

from __future__ import annotations

from typing import Any

import pytest

from router.core.domains import DomainDetector, DomainVerdict
from router.core.policy import DomainSettings

# deployments by index and the failure domains each depends on
A, B, C, D, SOLO = 0, 1, 2, 3, 4
DOMAINS: dict[int, tuple[str, ...]] = {
    A: ("vendor:openai", "edge:cloudflare"),
    B: ("vendor:anthropic", "edge:cloudflare"),
    C: ("vendor:gemini", "edge:cloudflare", "cloud:gcp"),
    D: ("vendor:mistral", "cloud:gcp"),
    SOLO: ("vendor:solo",),
}
EDGE = "edge:cloudflare"


def detector(**overrides: Any) -> DomainDetector:
    fields: dict[str, Any] = {"window_s": 30.0, "min_deployments": 2, "probe_interval_s": 15.0}
    fields.update(overrides)
    return DomainDetector(DOMAINS, DomainSettings(**fields))


Event = tuple[float, int, str]  # (at, deployment, "fail" | "ok")


def replay(d: DomainDetector, events: list[Event]) -> None:
    for at, deployment, what in events:
        d.record(at, deployment, failure=what == "fail", probe=False)


@pytest.mark.parametrize(
    ("events", "suspected"),
    [
        pytest.param([(1, A, "fail"), (2, B, "fail")], (EDGE,), id="two-members-fail"),
        pytest.param(
            [(1, A, "fail"), (1.5, C, "ok"), (2, B, "fail")], (), id="member-success-between"
        ),
        pytest.param(
            [(1, A, "fail"), (1.5, A, "ok"), (2, B, "fail")], (), id="same-member-recovers-between"
        ),
        pytest.param([(1, A, "fail"), (2, A, "fail"), (3, A, "fail")], (), id="one-member-only"),
        pytest.param([(1, A, "fail"), (40, B, "fail")], (), id="too-far-apart"),
        pytest.param(
            [(1, A, "fail"), (40, B, "fail"), (45, A, "fail")], (EDGE,), id="again-within-window"
        ),
        pytest.param(
            [(1, A, "fail"), (1.5, B, "ok"), (2, A, "fail"), (3, B, "fail")],
            (EDGE,),
            id="failures-after-the-success-count",
        ),
        pytest.param([(1, A, "fail"), (2, B, "fail"), (3, A, "ok")], (), id="a-success-clears"),
        pytest.param(
            [(1, A, "fail"), (2, B, "fail"), (3, D, "ok")], (EDGE,), id="success-elsewhere"
        ),
        pytest.param([(1, C, "fail"), (2, D, "fail")], ("cloud:gcp",), id="other-shared-domain"),
        pytest.param([(1, A, "fail"), (2, B, "fail"), (3, C, "fail")], (EDGE,), id="three-members"),
        pytest.param(
            [(1, C, "fail"), (2, A, "fail"), (3, D, "fail")],
            ("cloud:gcp", EDGE),
            id="one-member-in-two-domains",
        ),
        pytest.param([(1, SOLO, "fail"), (2, SOLO, "fail")], (), id="untracked-domain"),
    ],
)
def test_suspicion_timelines(events: list[Event], suspected: tuple[str, ...]) -> None:
    d = detector()
    replay(d, events)
    assert d.suspected() == suspected


@pytest.mark.parametrize(
    ("failing", "suspect"),
    [((A, B), False), ((A, B, C), True), ((A, A, B), False)],
)
def test_min_deployments_counts_distinct_members(failing: tuple[int, ...], suspect: bool) -> None:
    d = detector(min_deployments=3)
    replay(d, [(float(i), who, "fail") for i, who in enumerate(failing)])
    assert (EDGE in d.suspected()) is suspect


def test_only_domains_shared_by_enough_members_are_tracked() -> None:
    assert detector().tracked == ("cloud:gcp", EDGE)
    assert detector(min_deployments=3).tracked == (EDGE,)
    assert DomainDetector({0: ("vendor:x",)}, DomainSettings()).tracked == ()


@pytest.mark.parametrize("deployment", [SOLO, 99])
def test_untracked_deployments_are_always_allowed(deployment: int) -> None:
    d = detector()
    replay(d, [(t, deployment, "fail") for t in range(10)])
    assert d.admit(10.0, deployment) == DomainVerdict.ALLOW


def suspect_edge_at(t: float) -> DomainDetector:
    d = detector(probe_interval_s=15.0)
    replay(d, [(t - 1, A, "fail"), (t, B, "fail")])
    assert d.suspected() == (EDGE,)
    return d


def test_members_are_skipped_until_the_probe_interval() -> None:
    d = suspect_edge_at(10.0)
    assert d.admit(10.0, A) == DomainVerdict.SKIP
    assert d.admit(24.9, C) == DomainVerdict.SKIP
    assert d.admit(11.0, D) == DomainVerdict.ALLOW  # only in cloud:gcp, which is fine


def test_one_probe_per_interval() -> None:
    d = suspect_edge_at(10.0)
    assert d.admit(25.0, A) == DomainVerdict.PROBE
    assert d.admit(25.0, B) == DomainVerdict.SKIP  # a probe is in flight
    d.record(30.0, A, failure=True, probe=True)
    assert d.suspected() == (EDGE,)
    assert d.admit(31.0, B) == DomainVerdict.SKIP  # next probe at 25 + 15
    assert d.admit(40.0, B) == DomainVerdict.PROBE
    d.record(41.0, B, failure=True, probe=True)
    assert d.admit(54.9, C) == DomainVerdict.SKIP
    assert d.admit(55.0, C) == DomainVerdict.PROBE


def test_a_successful_probe_clears_the_domain() -> None:
    d = suspect_edge_at(10.0)
    assert d.admit(25.0, B) == DomainVerdict.PROBE
    d.record(26.0, B, failure=False, probe=True)
    assert d.suspected() == ()
    assert [d.admit(26.0, who) for who in (A, B, C)] == [DomainVerdict.ALLOW] * 3
    assert d.suspicions == [(10.0, EDGE, True), (26.0, EDGE, False)]


def test_an_abandoned_probe_frees_the_slot() -> None:
    d = suspect_edge_at(10.0)
    assert d.admit(25.0, A) == DomainVerdict.PROBE
    d.release_probe(A)
    assert d.admit(40.0, B) == DomainVerdict.PROBE


def test_a_member_of_two_suspect_domains_probes_both() -> None:
    d = detector()
    replay(d, [(1, A, "fail"), (2, B, "fail"), (3, D, "fail"), (4, C, "fail")])
    assert d.suspected() == ("cloud:gcp", EDGE)
    assert d.admit(10.0, C) == DomainVerdict.SKIP
    assert d.admit(19.0, C) == DomainVerdict.PROBE  # both intervals have passed
    assert d.admit(19.0, D) == DomainVerdict.SKIP  # gcp's probe is in flight
    assert d.admit(19.0, A) == DomainVerdict.SKIP  # and so is the edge's
    d.record(20.0, C, failure=False, probe=True)
    assert d.suspected() == ()


def test_failures_while_suspect_do_not_re_log() -> None:
    d = suspect_edge_at(10.0)
    replay(d, [(11.0, C, "fail"), (12.0, A, "fail")])
    assert d.suspicions == [(10.0, EDGE, True)]


def test_a_probe_never_sent_lets_another_member_probe_at_once() -> None:
    """The engine releases a domain probe when the member's breaker or limiter then refuses.

    The domain was not probed at all, so the next member may probe right away, as a
    breaker's released probe slot is free at once; otherwise a member whose breaker
    stays open (a withdrawn model: a day) holds its healthy siblings hostage.
    """
    d = suspect_edge_at(10.0)
    assert d.admit(25.0, A) == DomainVerdict.PROBE
    d.release_probe(A)
    assert d.admit(25.0, B) == DomainVerdict.PROBE
    assert d.admit(25.0, C) == DomainVerdict.SKIP
    d.record(26.0, B, failure=False, probe=True)
    assert d.suspected() == ()


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
def test_a_probe_ending_frees_only_the_domains_it_probed(ending: str) -> None:
    """X sits in two domains and probes d1; d2 turns suspect later and W probes it.

    When X's probe ends, d2's probe (W's) must stay in flight: one probe per domain.
    """
    x, y, z, w = 0, 1, 2, 3
    d = DomainDetector(
        {x: ("d:1", "d:2"), y: ("d:1",), z: ("d:2",), w: ("d:2",)},
        DomainSettings(window_s=30.0, min_deployments=2, probe_interval_s=15.0),
    )
    replay(d, [(1, y, "fail"), (2, x, "fail")])
    assert d.suspected() == ("d:1",)
    assert d.admit(17.0, x) == DomainVerdict.PROBE
    replay(d, [(18, z, "fail")])
    assert d.suspected() == ("d:1", "d:2")
    assert d.admit(33.0, w) == DomainVerdict.PROBE
    if ending == "failed":
        d.record(34.0, x, failure=True, probe=True)
    else:
        d.release_probe(x)
    assert d.admit(34.0, y) == DomainVerdict.PROBE  # d1 is free to probe again
    assert d.admit(50.0, z) == DomainVerdict.SKIP  # W still probes d2
    d.record(51.0, w, failure=True, probe=True)
    assert d.admit(51.0, z) == DomainVerdict.PROBE


@pytest.mark.parametrize(
    ("failing", "suspected"),
    [
        ((0, 1), ("vendor:openai",)),  # both OpenAI: the vendor, not the cloud they share
        ((1, 2), ("cloud:azure",)),  # OpenAI-on-Azure and Mistral-on-Azure: the cloud
        ((0, 1, 2), ("cloud:azure", "vendor:openai")),
    ],
)
def test_the_narrowest_shared_domain_takes_the_blame(
    failing: tuple[int, ...], suspected: tuple[str, ...]
) -> None:
    """Two OpenAI deployments failing say `vendor:openai`, so Azure's other models stay in play."""
    d = DomainDetector(
        {
            0: ("vendor:openai", "cloud:azure"),
            1: ("vendor:openai", "cloud:azure"),
            2: ("vendor:mistral", "cloud:azure"),
        },
        DomainSettings(),
    )
    replay(d, [(float(i), who, "fail") for i, who in enumerate(failing)])
    assert d.suspected() == suspected
