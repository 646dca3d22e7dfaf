"""A stream that breaks mid-answer, in virtual time, as the gateway handles it live.

With `after_first_byte: continue` the gateway sends the fallback the text the client
already has as a prefill, so the fallback is billed that text as input and generates
only what is missing; the simulator must plan and bill a continuation the same way, or
simulated and live costs of one policy would disagree. With `hold_tokens`, a break
within the tokens held back reached no client, so it fails over invisibly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.driver import SimulationResult
from simulator.runner import RunRequest, run_replications

LIVE_FILES = Path(__file__).parent / "live_files"

SCENARIO = """
id: cut-and-carry-on
title: Streams cut mid-answer, carried on by the fallback
description: Every OpenAI stream breaks after three tokens.
sources: ["test"]
duration: 60s
policy: policy.yaml
recovery_window: 10s
traffic:
  arrivals: {kind: poisson, rate: 2}
  tasks:
    - name: chat
      input_tokens: {median: 50, p99: 200}
      output_tokens: {median: 40, p99: 80}
  client: {timeout: 15s}
world:
  defaults:
    ttft: {median: 0.02, p99: 0.08}
    per_token: {median: 0.002, p99: 0.005}
faults:
  - kind: stream_cut
    target: {domains: [vendor:openai]}
    after_tokens: 3
    start: 0s
"""


def simulate(tmp_path: Path, streaming: str) -> SimulationResult:
    """The scenario above under the live policy with `streaming` settings."""
    policy = (LIVE_FILES / "live-policy.yaml").read_text(encoding="utf-8")
    policy += f"  streaming: {streaming}\n"
    (tmp_path / "policy.yaml").write_text(policy, encoding="utf-8")
    (tmp_path / "scenario.yaml").write_text(SCENARIO, encoding="utf-8")
    _, sim, _ = run_replications(RunRequest(scenario=tmp_path / "scenario.yaml"))
    return sim


def test_a_continuation_is_billed_the_prefill_in_and_the_rest_out(tmp_path: Path) -> None:
    sim = simulate(tmp_path, "{after_first_byte: continue}")
    attempts = sim.attempts
    cut = attempts[attempts["outcome"] == "stream_cut"].set_index("request_id")
    carried = attempts[attempts["reason"] == "continuation"].set_index("request_id")
    assert len(carried) >= 10 and set(carried.index) <= set(cut.index)  # until the breaker opens
    assert (carried["outcome"] == "ok").all()
    assert (carried["deployment"] == "claude@anthropic").all()
    first = cut.loc[carried.index]
    assert (first["output_tokens"] == 3).all()
    assert (carried["input_tokens"] == first["input_tokens"] + 3).all()
    served = sim.requests.set_index("request_id").loc[carried.index]
    assert (served["final"] == "ok").all()
    # The rest of each answer, not the whole answer again: a median answer is 40 tokens.
    assert carried["output_tokens"].median() < 40 - 3 + 5


@pytest.mark.parametrize(
    ("hold", "final", "reason"),
    [
        (0, "error", "stream_interrupted"),  # three tokens reached the client
        (2, "error", "stream_interrupted"),
        (3, "ok", "failover"),  # all three were held back: nothing to see, a clean restart
    ],
)
def test_a_break_within_the_held_back_tokens_fails_over_invisibly(
    tmp_path: Path, hold: int, final: str, reason: str
) -> None:
    sim = simulate(tmp_path, f"{{after_first_byte: error, hold_tokens: {hold}}}")
    attempts, requests = sim.attempts, sim.requests.set_index("request_id")
    cut = attempts[attempts["outcome"] == "stream_cut"]
    assert len(cut) >= 10
    ended = requests.loc[cut["request_id"]]
    assert set(ended["final"]) == {final}
    if final == "error":
        assert set(ended["reason"]) == {reason}
    else:
        again = attempts[attempts["request_id"].isin(cut["request_id"])]
        assert reason in set(again["reason"])
