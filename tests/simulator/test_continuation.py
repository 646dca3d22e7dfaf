"""`after_first_byte: continue` in virtual time: a continuation is the rest of the answer.

The gateway sends the fallback the text the client already has as a prefill, so the
fallback is billed that text as input and generates only what is missing; the simulator
must plan and bill a continuation the same way, or simulated and live costs of one
policy would disagree.
"""

from __future__ import annotations

from pathlib import Path

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


def test_a_continuation_is_billed_the_prefill_in_and_the_rest_out(tmp_path: Path) -> None:
    policy = (LIVE_FILES / "live-policy.yaml").read_text(encoding="utf-8")
    policy += "  streaming: {after_first_byte: continue}\n"
    (tmp_path / "policy.yaml").write_text(policy, encoding="utf-8")
    (tmp_path / "scenario.yaml").write_text(SCENARIO, encoding="utf-8")
    _, sim, _ = run_replications(RunRequest(scenario=tmp_path / "scenario.yaml"))
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
