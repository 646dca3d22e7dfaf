"""The engine's promises (DESIGN.md "Behaviour a user can rely on"), one scripted story each."""

from __future__ import annotations

import hashlib
import random

import pytest

from router.core import (
    UNRESUMABLE,
    AttemptFinished,
    BreakerState,
    CancelAttempt,
    CompleteRequest,
    Engine,
    FailRequest,
    Outcome,
    ProtocolViolation,
    Reason,
    RejectRequest,
    RequestArrived,
    RequestCancelled,
    SendAttempt,
)
from tests.router.core.harness import OK, Harness, Reply, always, by_deployment, make_policy

SERVER_ERROR = Reply(Outcome.SERVER, http_status=500)
OVERLOADED = Reply(Outcome.OVERLOADED, http_status=529)


def run_one(script, policy=None, **request) -> tuple[Harness, object]:
    harness = Harness(policy or make_policy(), script)
    harness.request(0.0, "r", **request)
    result = harness.run()
    return harness, result.of("r")


def test_one_server_error_then_healthy_is_one_retry_on_the_same_deployment() -> None:
    harness, end = run_one(by_deployment({"a@one": [SERVER_ERROR, OK]}))
    assert isinstance(end, CompleteRequest)
    assert end.served_by == "a@one" and end.attempts == 2
    assert harness.result.deployments("r") == ["a@one", "a@one"]
    assert harness.result.sends[1][1].reason is Reason.RETRY


def test_retry_after_is_waited_for_before_the_same_deployment_is_tried_again() -> None:
    limited = Reply(Outcome.RATE_LIMITED, http_status=429, retry_after_s=2.0)
    harness, end = run_one(by_deployment({"a@one": [limited, OK]}))
    assert isinstance(end, CompleteRequest) and end.served_by == "a@one"
    (first_at, _), (second_at, _) = harness.result.sends
    assert second_at - (first_at + limited.latency_s) >= 2.0


def test_retry_after_beyond_the_cap_fails_over_at_once() -> None:
    limited = Reply(Outcome.RATE_LIMITED, http_status=429, retry_after_s=600.0)
    harness, end = run_one(by_deployment({"a@one": limited}))
    assert isinstance(end, CompleteRequest) and end.served_by == "b@two"
    assert harness.result.waits == []
    assert harness.engine.reasons[Reason.RETRY_AFTER_TOO_LONG] == 1


def test_retry_after_cools_the_deployment_down_for_other_requests() -> None:
    limited = Reply(Outcome.RATE_LIMITED, http_status=429, retry_after_s=10.0, latency_s=0.1)
    harness = Harness(make_policy(), by_deployment({"a@one": [limited, OK]}))
    harness.request(0.0, "first")
    harness.request(1.0, "second")
    result = harness.run()
    assert result.deployments("second") == ["b@two"]
    (second,) = [s for _, s in result.sends if s.request_id == "second"]
    assert second.reason is Reason.COOLING_DOWN


def test_persistent_overload_is_bounded_then_fails_over() -> None:
    harness, end = run_one(by_deployment({"a@one": OVERLOADED}))
    assert isinstance(end, CompleteRequest) and end.served_by == "b@two"
    assert harness.result.deployments("r") == ["a@one"] * 3 + ["b@two"]
    delays = [w.until - at for at, w in harness.result.waits]
    assert len(delays) == 2 and all(0 <= d <= 1.0 for d in delays)


def test_when_nothing_is_left_the_original_error_surfaces() -> None:
    _, end = run_one(always(OVERLOADED))
    assert isinstance(end, FailRequest)
    assert end.outcome is Outcome.OVERLOADED
    assert end.http_status == 503  # the vendor's 529, as a status every client knows
    assert end.reason is Reason.ATTEMPTS_EXHAUSTED


def test_connection_reset_is_retried_and_answered() -> None:
    reset = Reply(Outcome.CONNECT)
    _, end = run_one(by_deployment({"a@one": [reset, OK]}))
    assert isinstance(end, CompleteRequest) and end.served_by == "a@one"


def test_a_silent_provider_costs_one_timeout_then_fails_over() -> None:
    harness, end = run_one(by_deployment({"a@one": Reply(silent=True)}))
    assert isinstance(end, CompleteRequest) and end.served_by == "b@two"
    assert harness.result.deployments("r") == ["a@one", "b@two"]
    timeouts = harness.engine.policy.resilience.timeouts
    assert harness.now < timeouts.first_token_s + 1.0 < timeouts.total_s


def test_a_client_bad_request_fails_fast_and_is_never_failed_over() -> None:
    harness, end = run_one(by_deployment({"a@one": Reply(Outcome.BAD_REQUEST, http_status=400)}))
    assert isinstance(end, FailRequest)
    assert end.reason is Reason.CLIENT_ERROR and end.http_status == 400
    assert harness.result.deployments("r") == ["a@one"]


def test_context_length_goes_only_to_a_larger_context_deployment() -> None:
    too_long = Reply(Outcome.CONTEXT_LENGTH, http_status=400)
    harness, end = run_one(by_deployment({"a@one": too_long, "b@two": too_long}))
    assert isinstance(end, CompleteRequest)
    assert harness.result.deployments("r") == ["a@one", "c@three"]


def test_context_length_with_no_larger_deployment_fails_with_the_original_error() -> None:
    policy = make_policy(routes=[{"name": "default", "targets": ["a@one", "b@two"]}])
    too_long = Reply(Outcome.CONTEXT_LENGTH, http_status=400)
    harness, end = run_one(always(too_long), policy)
    assert isinstance(end, FailRequest)
    assert end.reason is Reason.NO_LARGER_CONTEXT and end.outcome is Outcome.CONTEXT_LENGTH
    assert harness.result.deployments("r") == ["a@one"]


@pytest.mark.parametrize(("failover", "expected"), [(False, ["a@one"]), (True, ["a@one", "b@two"])])
def test_content_filter_is_never_retried_and_fails_over_only_by_policy(failover, expected) -> None:
    policy = make_policy(resilience={"content_filter_failover": failover})
    filtered = Reply(Outcome.CONTENT_FILTER, http_status=400)
    harness, end = run_one(by_deployment({"a@one": filtered}), policy)
    assert harness.result.deployments("r") == expected
    if failover:
        assert isinstance(end, CompleteRequest)
    else:
        assert isinstance(end, FailRequest) and end.reason is Reason.CONTENT_FILTERED
        assert end.outcome is Outcome.CONTENT_FILTER


def test_a_withdrawn_model_opens_its_breaker_for_a_long_time() -> None:
    gone = Reply(Outcome.MODEL_GONE, http_status=404)
    harness = Harness(make_policy(), by_deployment({"a@one": gone}))
    harness.request(0.0, "first")
    harness.request(3600.0, "later")
    result = harness.run()
    assert result.deployments("first") == ["a@one", "b@two"]
    assert result.deployments("later") == ["b@two"]
    assert harness.engine.breaker_state("a@one") is BreakerState.OPEN


def test_stream_cut_before_any_byte_reached_the_client_fails_over_transparently() -> None:
    cut = Reply(Outcome.STREAM_CUT, delivered_tokens=0)
    harness, end = run_one(by_deployment({"a@one": cut}), stream=True)
    assert isinstance(end, CompleteRequest) and end.served_by == "b@two"
    assert harness.result.sends[1][1].resume_after_tokens == 0


def test_stream_cut_after_bytes_reached_the_client_ends_in_band_by_default() -> None:
    cut = Reply(Outcome.STREAM_CUT, delivered_tokens=12)
    harness, end = run_one(by_deployment({"a@one": cut}), stream=True)
    assert isinstance(end, FailRequest)
    assert end.in_band and end.reason is Reason.STREAM_INTERRUPTED
    assert end.outcome is Outcome.STREAM_CUT
    assert harness.result.deployments("r") == ["a@one"]


def test_stream_cut_can_continue_on_a_fallback_by_policy() -> None:
    policy = make_policy(resilience={"streaming": {"after_first_byte": "continue"}})
    cut = Reply(Outcome.STREAM_CUT, delivered_tokens=12)
    harness, end = run_one(by_deployment({"a@one": cut}), policy, stream=True)
    assert isinstance(end, CompleteRequest) and end.served_by == "b@two"
    assert harness.result.sends[1][1].resume_after_tokens == 12
    assert harness.result.sends[1][1].reason is Reason.CONTINUATION


def test_a_fallback_refusing_the_continuation_does_not_mask_the_original_error() -> None:
    policy = make_policy(resilience={"streaming": {"after_first_byte": "continue"}})
    cut = Reply(Outcome.STREAM_STALL, delivered_tokens=5)
    refused = Reply(Outcome.BAD_REQUEST, http_status=400)
    harness, end = run_one(by_deployment({"a@one": cut, "b@two": refused}), policy, stream=True)
    assert isinstance(end, FailRequest) and end.in_band
    assert end.outcome is Outcome.STREAM_STALL
    assert end.reason is Reason.STREAM_INTERRUPTED  # not the client's error: it sent no 400
    assert harness.result.deployments("r") == ["a@one", "b@two"]


def test_an_unresumable_break_ends_in_band_even_where_the_policy_would_continue() -> None:
    """A tool call was under way: no provider can carry it on, so nothing is tried."""
    policy = make_policy(resilience={"streaming": {"after_first_byte": "continue"}})
    cut = Reply(Outcome.STREAM_CUT, delivered_tokens=3, signals=frozenset({UNRESUMABLE}))
    harness, end = run_one(by_deployment({"a@one": cut}), policy, stream=True)
    assert isinstance(end, FailRequest) and end.in_band
    assert end.outcome is Outcome.STREAM_CUT and end.reason is Reason.STREAM_INTERRUPTED
    assert harness.result.deployments("r") == ["a@one"]


def test_residency_fails_closed_even_when_every_eu_deployment_is_down() -> None:
    policy = make_policy(tenants={"bank": {"residency": ["eu"]}})
    harness = Harness(policy, by_deployment({"c@three": SERVER_ERROR, "d@four": SERVER_ERROR}))
    harness.request(0.0, "r", tenant="bank")
    result = harness.run()
    assert set(result.deployments("r")) == {"c@three", "d@four"}
    assert isinstance(result.of("r"), FailRequest)
    assert all(row.compliant for row in harness.trace.requests)


def test_no_compliant_deployment_is_a_residency_refusal() -> None:
    policy = make_policy(tenants={"bank": {"residency": ["eu"]}})
    _, end = run_one(always(OK), policy, tenant="bank", route="cheap")
    assert isinstance(end, RejectRequest)
    assert end.reason is Reason.RESIDENCY and end.http_status == 403


def test_breaker_opens_then_routes_away_and_returns_after_recovery() -> None:
    policy = make_policy(
        resilience={
            "breaker": {"consecutive_failures": 3, "open_s": 10, "half_open_probes": 1},
            "retries": {"max_attempts_per_deployment": 1},
        }
    )
    down_until = 5.0
    harness: Harness

    def script(send: SendAttempt) -> Reply:
        if send.deployment == "a@one" and harness.now < down_until:
            return SERVER_ERROR
        return OK

    harness = Harness(policy, script)
    for i in range(40):
        harness.request(i * 0.7, f"r{i}")
    result = harness.run()
    assert all(isinstance(d, CompleteRequest) for d in result.terminal.values())
    skipped = [s for _, s in result.sends if s.reason is Reason.BREAKER_OPEN]
    assert skipped and all(s.deployment == "b@two" for s in skipped)
    assert [s.deployment for _, s in result.sends][-1] == "a@one"
    assert harness.engine.breaker_state("a@one") is BreakerState.CLOSED
    a_attempts_while_down = sum(
        1 for at, s in result.sends if s.deployment == "a@one" and at < down_until
    )
    assert a_attempts_while_down == 3


def test_a_shared_domain_failing_together_is_skipped_as_a_whole() -> None:
    policy = make_policy(
        resilience={
            "breaker": {"enabled": False},
            "retries": {"max_attempts_per_deployment": 1},
            "domains": {"window_s": 30, "probe_interval_s": 60},
        }
    )
    edge_down = by_deployment({"a@one": SERVER_ERROR, "b@two": SERVER_ERROR})
    harness = Harness(policy, edge_down)
    harness.request(0.0, "first")
    harness.request(5.0, "second")
    result = harness.run()
    assert result.deployments("first") == ["a@one", "b@two", "c@three"]
    assert result.deployments("second") == ["c@three"]
    assert result.sends[-1][1].reason is Reason.DOMAIN_SUSPECT
    assert harness.engine.domains is not None
    assert harness.engine.domains.suspected() == ("edge:shared",)


def test_an_exhausted_retry_budget_turns_retries_into_failovers() -> None:
    policy = make_policy(resilience={"budget": {"ratio": 0.0, "min_retries_per_s": 0.0}})
    harness, end = run_one(by_deployment({"a@one": SERVER_ERROR}), policy)
    assert isinstance(end, CompleteRequest) and end.served_by == "b@two"
    assert harness.result.waits == []
    assert harness.engine.reasons[Reason.BUDGET_EXHAUSTED] == 1


def test_retries_never_start_after_the_request_deadline() -> None:
    policy = make_policy(
        resilience={
            "timeouts": {"total_s": 2.0},
            "retries": {"backoff": {"kind": "none", "base_s": 0.4, "cap_s": 5}},
        }
    )
    harness, end = run_one(always(Reply(Outcome.SERVER, latency_s=0.6)), policy)
    assert isinstance(end, FailRequest)
    assert all(at < s.deadline for at, s in harness.result.sends)
    assert harness.now <= 2.0 + 0.6


def test_hard_spend_cap_refuses_and_counts_failed_attempts() -> None:
    cost_of_one = 100 * 1e-6 + 50 * 2e-6
    policy = make_policy(tenants={"t": {"spend": {"hard_usd": cost_of_one * 2.5}}})
    harness = Harness(policy, always(OK))
    for i in range(4):
        harness.request(float(i), f"r{i}", tenant="t", route="cheap")
    result = harness.run()
    finals = [type(result.of(f"r{i}")).__name__ for i in range(4)]
    assert finals == ["CompleteRequest", "CompleteRequest", "RejectRequest", "RejectRequest"]
    assert harness.engine.ledger.by_tenant["t"] <= cost_of_one * 2.5


def test_soft_spend_cap_degrades_to_the_cheaper_route() -> None:
    policy = make_policy(tenants={"t": {"spend": {"soft_usd": 0.0001, "degrade_to": "cheap"}}})
    harness = Harness(policy, by_deployment({"a@one": SERVER_ERROR}))
    harness.request(0.0, "r0", tenant="t")
    harness.request(10.0, "r1", tenant="t")
    result = harness.run()
    assert result.deployments("r0")[-1] == "b@two"
    assert set(result.deployments("r1")) == {"a@one"}
    assert harness.engine.reasons[Reason.DEGRADED] == 1


def test_tenant_rate_limit_refuses_before_any_attempt() -> None:
    policy = make_policy(tenants={"t": {"limits": {"rpm": 2}}})
    harness = Harness(policy, always(OK))
    for i in range(3):
        harness.request(0.0, f"r{i}", tenant="t")
    result = harness.run()
    assert isinstance(result.of("r2"), RejectRequest)
    assert result.of("r2").reason is Reason.TENANT_RATE_LIMITED
    assert len(result.sends) == 2


def test_unknown_tenant_is_refused_when_tenants_are_configured() -> None:
    digest = hashlib.sha256(b"dev-key").hexdigest()
    policy = make_policy(tenants={"t": {"key_sha256": [digest]}})
    _, end = run_one(always(OK), policy, tenant="stranger")
    assert isinstance(end, RejectRequest)
    assert end.reason is Reason.UNKNOWN_TENANT and end.http_status == 401


def test_cascade_escalates_on_a_signal_and_keeps_the_cheap_answer_as_a_floor() -> None:
    policy = make_policy(
        routes=[
            {
                "name": "default",
                "strategy": "cascade",
                "targets": ["a@one", "d@four"],
                "cascade": {"escalate_on": ["low_confidence"]},
            }
        ]
    )
    unsure = Reply(signals=frozenset({"low_confidence"}))
    harness, end = run_one(by_deployment({"a@one": unsure}), policy)
    assert isinstance(end, CompleteRequest) and end.served_by == "d@four"
    assert harness.result.sends[1][1].reason is Reason.ESCALATED
    harness, end = run_one(by_deployment({"a@one": unsure, "d@four": SERVER_ERROR}), policy)
    assert isinstance(end, CompleteRequest) and end.served_by == "a@one"


def test_cancel_ends_the_request_and_still_bills_the_attempt() -> None:
    engine = Engine(make_policy(), rng=random.Random(1))
    (send,) = engine.handle(
        RequestArrived(at=0.0, request_id="r", route="default", input_tokens=10)
    )
    cancel, fail = engine.handle(RequestCancelled(at=1.0, request_id="r"))
    assert cancel == CancelAttempt(attempt_id=send.attempt_id)
    assert isinstance(fail, FailRequest) and fail.reason is Reason.CLIENT_CANCELLED
    late = AttemptFinished(
        at=2.0, attempt_id=send.attempt_id, outcome=Outcome.OK, input_tokens=10, output_tokens=5
    )
    assert engine.handle(late) == []
    assert engine.ledger.total_usd > 0
    assert engine.live_requests == 0 and engine.attempts_in_flight == 0


def test_time_never_goes_backwards() -> None:
    engine = Engine(make_policy(), rng=random.Random(1))
    engine.handle(RequestArrived(at=5.0, request_id="r", route="default", input_tokens=10))
    with pytest.raises(ProtocolViolation, match="backwards"):
        engine.handle(RequestArrived(at=4.0, request_id="s", route="default", input_tokens=10))


def test_results_for_unknown_attempts_are_a_driver_bug() -> None:
    engine = Engine(make_policy(), rng=random.Random(1))
    with pytest.raises(ProtocolViolation, match="unknown"):
        engine.handle(AttemptFinished(at=1.0, attempt_id=99, outcome=Outcome.OK))


def test_trace_rows_agree_with_the_ledger_and_the_decisions() -> None:
    flaky = by_deployment({"a@one": [SERVER_ERROR, OK, OVERLOADED, OVERLOADED, OVERLOADED]})
    harness = Harness(make_policy(), flaky)
    for i in range(10):
        harness.request(i * 2.0, f"r{i}")
    result = harness.run()
    trace = harness.trace
    assert len(trace.requests) == 10
    assert len(trace.attempts) == len(result.sends)
    total = sum(row.cost_usd for row in trace.attempts)
    assert total == pytest.approx(harness.engine.ledger.total_usd)
    by_request = {row.request_id: row for row in trace.requests}
    for request_id, decision in result.terminal.items():
        assert by_request[request_id].final == (
            "ok" if isinstance(decision, CompleteRequest) else "error"
        )
    assert {row.origin for row in trace.attempts if row.attempt == 1} == {"client"}
    assert {row.origin for row in trace.attempts if row.attempt > 1} == {"router"}


def test_a_vendor_outage_does_not_condemn_the_cloud_it_runs_on() -> None:
    """Two OpenAI-direct failures suspect vendor:openai, not cloud:azure (Azure OpenAI stays)."""
    from scenarios.policy_files import POLICY_DIR, load_policy

    engine = Engine(load_policy(POLICY_DIR / "domain-aware.yaml"), rng=random.Random(1))
    assert engine.domains is not None
    index = {c.id: c.index for c in engine.candidates}
    for at, deployment in enumerate(["gpt-4o@openai", "gpt-4.1-nano@openai"]):
        engine.domains.record(float(at), index[deployment], failure=True, probe=False)
    suspected = set(engine.domains.suspected())
    assert {"vendor:openai", "edge:cloudflare"} <= suspected
    assert "cloud:azure" not in suspected
    assert engine.domains.admit(2.0, index["gpt-4o@azure-eastus2"]) == 0


def test_rate_limits_from_two_vendors_do_not_condemn_the_edge_they_share() -> None:
    policy = make_policy(resilience={"retries": {"max_attempts_per_deployment": 1}})
    limited = Reply(Outcome.RATE_LIMITED, http_status=429)
    harness = Harness(policy, by_deployment({"a@one": limited, "b@two": limited}))
    harness.request(0.0, "r")
    harness.run()
    assert harness.engine.domains is not None
    assert harness.engine.domains.suspected() == ()


def test_a_suspect_domain_recovers_through_a_sibling_when_one_member_is_open() -> None:
    """A's breaker refuses the domain probe; the probe passes straight to B, which clears it."""
    policy = make_policy(
        resilience={
            "retries": {"max_attempts_per_deployment": 1},
            "domains": {"window_s": 30, "probe_interval_s": 10},
        }
    )
    edge_down_until = 5.0
    harness: Harness

    def script(send: SendAttempt) -> Reply:
        if send.deployment == "a@one":
            return Reply(Outcome.MODEL_GONE, http_status=404)
        if send.deployment == "b@two" and harness.now < edge_down_until:
            return SERVER_ERROR
        return OK

    harness = Harness(policy, script)
    harness.request(0.0, "down")
    harness.request(20.0, "after")
    result = harness.run()
    assert result.deployments("down") == ["a@one", "b@two", "c@three"]
    assert harness.engine.breaker_state("a@one") is BreakerState.OPEN
    assert result.deployments("after") == ["b@two"]
    assert harness.engine.domains is not None
    assert harness.engine.domains.suspected() == ()
