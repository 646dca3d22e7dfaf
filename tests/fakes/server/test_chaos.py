from random import Random

import pytest

from fakes.server.chaos import (
    FAULT_KINDS,
    Chaos,
    ChaosRegistry,
    RuleSpec,
    TargetSpec,
    chaos_from_directive,
    spec_problems,
)
from fakes.server.wire import ErrorKind, split_directive


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", ("gpt-4o", None)),
        ("gpt-4o~stream_cut", ("gpt-4o", "stream_cut")),
        ("anthropic.claude-v1:0~reset", ("anthropic.claude-v1:0", "reset")),
        ("gpt-4o~", ("gpt-4o", None)),
    ],
)
def test_a_directive_rides_on_the_model_name(model: str, expected: tuple[str, str | None]) -> None:
    assert split_directive(model) == expected


@pytest.mark.parametrize(
    ("directive", "chaos"),
    [
        ("stream_cut", Chaos("stream_cut", "directive")),
        ("stream_cut-5", Chaos("stream_cut", "directive", after_tokens=5)),
        ("rate_limited", Chaos("rate_limited", "directive", retry_after_s=2.0)),
        ("rate_limited-3", Chaos("rate_limited", "directive", retry_after_s=3.0)),
        ("slow_first_token-2.5", Chaos("slow_first_token", "directive", delay_s=2.5)),
        ("slow_tokens-0.1", Chaos("slow_tokens", "directive", per_token_s=0.1)),
        ("teapot", None),
        ("stream_cut-x", None),
    ],
)
def test_directives_parse_into_faults(directive: str, chaos: Chaos | None) -> None:
    assert chaos_from_directive(directive) == chaos


def test_every_error_kind_but_the_prompt_filter_is_a_fault_kind() -> None:
    for kind in ErrorKind:
        if kind is not ErrorKind.CONTENT_FILTER:
            assert kind.value in FAULT_KINDS
            assert Chaos(kind.value, "directive").error is kind
    assert Chaos("content_filter", "directive").error is None


def test_bad_rules_are_refused_naming_the_field() -> None:
    spec, problems = spec_problems({"kind": "explode", "probability": 2, "extra": 1})
    assert spec is None
    assert any(p.startswith("kind:") for p in problems)
    assert any(p.startswith("probability:") for p in problems)
    assert any(p.startswith("extra:") for p in problems)


def test_rules_match_by_deployment_domain_or_host_and_count_hits() -> None:
    registry = ChaosRegistry()
    by_domain = registry.add(RuleSpec(kind="server", target=TargetSpec(domains=("vendor:openai",))))
    registry.add(RuleSpec(kind="reset", target=TargetSpec(hosts=("api.anthropic.com",))))
    rng = Random(1)
    hit = registry.pick("gpt-4o@openai", ["vendor:openai"], "api.openai.com", rng)
    assert hit is not None and hit.kind == "server" and hit.source == f"rule:{by_domain.id}"
    hit = registry.pick("claude@anthropic", ["vendor:anthropic"], "api.anthropic.com", rng)
    assert hit is not None and hit.kind == "reset"
    assert registry.pick("gemini@google", ["vendor:google"], "googleapis", rng) is None
    assert by_domain.as_json()["hits"] == 1
    assert registry.remove(by_domain.id) and not registry.remove(by_domain.id)
    assert registry.reset() == 1 and registry.rules() == []


def test_probability_is_the_share_of_requests_hit() -> None:
    registry = ChaosRegistry()
    registry.add(RuleSpec(kind="server", probability=0.25))
    rng = Random(7)
    hits = sum(registry.pick("d", [], "h", rng) is not None for _ in range(4000))
    assert 850 < hits < 1150


def test_edge_rules_are_left_to_the_edge() -> None:
    registry = ChaosRegistry()
    registry.add(RuleSpec(kind="edge_5xx", target=TargetSpec(domains=("edge:cloudflare",))))
    rng = Random(1)
    assert registry.pick("d", ["edge:cloudflare"], "h", rng) is None
    edge = registry.pick_edge("edge:cloudflare", "h", rng, kinds=frozenset({"edge_5xx"}))
    assert edge is not None and edge.kind == "edge_5xx"
    assert registry.pick_edge("edge:akamai", "h", rng, kinds=frozenset({"edge_5xx"})) is None


def test_dns_rules_fail_lookups_of_covered_hosts_only() -> None:
    registry = ChaosRegistry()
    registry.add(RuleSpec(kind="dns", target=TargetSpec(domains=("dns:aws/us-east-1",))))
    rng = Random(1)
    east = [("claude@bedrock-us-east-1", ["dns:aws/us-east-1"])]
    west = [("claude@bedrock-us-west-2", ["dns:aws/us-west-2"])]
    assert registry.dns_fails(east, "bedrock-runtime.us-east-1.amazonaws.com", rng)
    assert not registry.dns_fails(west, "bedrock-runtime.us-west-2.amazonaws.com", rng)
    assert (
        registry.pick(
            "claude@bedrock-us-east-1", ["dns:aws/us-east-1"], "h", rng, exclude=frozenset({"dns"})
        )
        is None
    )
