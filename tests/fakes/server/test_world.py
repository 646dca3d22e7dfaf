"""The whole fake world over real HTTP: control API, journal, edge, DNS, timeline, CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from fakes.server.dns import ControlledResolver
from fakes.server.world import FakeWorld, load_world
from tests.fakes.server.harness import running_world
from tests.fakes.server.world_files import write_policy, write_scenario


def control(ready: dict[str, Any], method: str, path: str, body: Any = None) -> Any:
    """Call the control API; returns (status, JSON)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(ready["control"] + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def openai_client(ready: dict[str, Any], timeout: float = 5.0) -> openai.OpenAI:
    url = ready["deployments"]["gpt-4o@openai"]["base_url"]
    return openai.OpenAI(base_url=url, api_key="k", max_retries=0, timeout=timeout)


def anthropic_client(ready: dict[str, Any]) -> anthropic.Anthropic:
    url = ready["deployments"]["claude@anthropic"]["base_url"]
    return anthropic.Anthropic(base_url=url, api_key="k", max_retries=0, timeout=5.0)


def ask_openai(client: openai.OpenAI, model: str = "gpt-4o") -> str:
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "ping"}]
    )
    return answer.choices[0].message.content or ""


def ask_anthropic(client: anthropic.Anthropic) -> str:
    answer = client.messages.create(
        model="claude-sonnet-4-5", max_tokens=32, messages=[{"role": "user", "content": "ping"}]
    )
    return "".join(block.text for block in answer.content if block.type == "text")


@pytest.fixture
def policy_world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    policy, _ = load_world(write_policy(tmp_path))
    with running_world(FakeWorld(policy, seed=3)) as ready:
        yield ready


def test_every_host_gets_a_listener_and_edge_hosts_are_reached_through_the_edge(
    policy_world: dict[str, Any],
) -> None:
    hosts = policy_world["hosts"]
    assert set(hosts) == {
        "api.openai.com",
        "api.anthropic.com",
        "bedrock-runtime.us-east-1.amazonaws.com",
        "generativelanguage.googleapis.com",
    }
    assert hosts["api.openai.com"]["edge"] == "edge:cloudflare"
    openai_url = policy_world["deployments"]["gpt-4o@openai"]["base_url"]
    assert openai_url == hosts["api.openai.com"]["edge_url"] + "/v1"
    assert hosts["generativelanguage.googleapis.com"]["edge"] is None
    assert ask_openai(openai_client(policy_world))
    assert ask_anthropic(anthropic_client(policy_world))


def test_control_api_adds_lists_and_removes_faults(policy_world: dict[str, Any]) -> None:
    client = openai_client(policy_world)
    status, rule = control(
        policy_world,
        "POST",
        "/faults",
        {"kind": "rate_limited", "retry_after_s": 7, "target": {"deployments": ["gpt-4o@openai"]}},
    )
    assert status == 201
    with pytest.raises(openai.RateLimitError) as raised:
        ask_openai(client)
    assert raised.value.response.headers["retry-after"] == "7"
    status, listing = control(policy_world, "GET", "/faults")
    assert [f["id"] for f in listing["faults"]] == [rule["id"]]
    assert listing["faults"][0]["hits"] == 1
    assert control(policy_world, "DELETE", f"/faults/{rule['id']}")[0] == 200
    assert ask_openai(client)
    assert control(policy_world, "DELETE", f"/faults/{rule['id']}")[0] == 404


def test_a_bad_rule_is_refused_with_the_field_named(policy_world: dict[str, Any]) -> None:
    status, body = control(policy_world, "POST", "/faults", {"kind": "melt", "probability": 3})
    assert status == 400
    assert any(p.startswith("kind:") for p in body["problems"])
    assert any(p.startswith("probability:") for p in body["problems"])


def test_the_journal_records_what_each_provider_saw(policy_world: dict[str, Any]) -> None:
    client = openai_client(policy_world)
    ask_openai(client)
    with pytest.raises(openai.InternalServerError):
        ask_openai(client, "gpt-4o~server")
    _, body = control(policy_world, "GET", "/journal")
    attempts = body["attempts"]
    assert [(a["deployment"], a["outcome"], a["fault"]) for a in attempts] == [
        ("gpt-4o@openai", "ok", None),
        ("gpt-4o@openai", "server", "server"),
    ]
    assert attempts[0]["input_tokens"] > 0 and attempts[0]["output_tokens"] > 0
    assert "prompt" not in attempts[0] and "ping" not in json.dumps(attempts)
    _, later = control(policy_world, "GET", f"/journal?since={attempts[0]['seq']}")
    assert len(later["attempts"]) == 1


def test_requests_a_wire_refuses_before_serving_are_journaled_too(
    policy_world: dict[str, Any],
) -> None:
    """A vendor counts the requests it turned away: no key (401), a malformed body (400)."""
    url = policy_world["deployments"]["gpt-4o@openai"]["base_url"] + "/chat/completions"
    keyless = urllib.request.Request(url, data=b'{"model": "gpt-4o"}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(keyless, timeout=5)
    assert refused.value.code == 401
    refused.value.close()
    with pytest.raises(anthropic.BadRequestError):
        anthropic_client(policy_world).messages.create(
            model="claude-sonnet-4-5", max_tokens=0, messages=[{"role": "user", "content": "x"}]
        )
    client = openai_client(policy_world)
    assert client.models.list().data  # a GET is no attempt, refused or not
    _, body = control(policy_world, "GET", "/journal")
    attempts = body["attempts"]
    assert [(a["protocol"], a["outcome"], a["http_status"], a["deployment"]) for a in attempts] == [
        ("openai", "auth", 401, None),
        ("anthropic", "bad_request", 400, None),
    ]


def test_an_edge_fault_fails_both_vendors_behind_it_at_once(policy_world: dict[str, Any]) -> None:
    control(
        policy_world,
        "POST",
        "/faults",
        {"kind": "edge_5xx", "target": {"domains": ["edge:cloudflare"]}},
    )
    with pytest.raises(openai.InternalServerError) as from_openai:
        ask_openai(openai_client(policy_world))
    with pytest.raises(anthropic.InternalServerError) as from_anthropic:
        ask_anthropic(anthropic_client(policy_world))
    for error in (from_openai.value, from_anthropic.value):
        assert error.status_code == 502
        assert error.response.headers["content-type"].startswith("text/html")
    _, body = control(policy_world, "GET", "/journal")
    assert body["attempts"] == []  # the edge answered; no provider saw anything
    gemini = policy_world["deployments"]["gemini@google"]["base_url"]
    assert "edge" not in gemini and policy_world["hosts"]["generativelanguage.googleapis.com"]


def test_a_refused_host_refuses_connections_until_the_rule_goes(
    policy_world: dict[str, Any],
) -> None:
    client = openai_client(policy_world)
    direct = openai.OpenAI(
        base_url=policy_world["hosts"]["api.openai.com"]["url"] + "/v1",
        api_key="k",
        max_retries=0,
        timeout=5.0,
    )
    _, rule = control(
        policy_world, "POST", "/faults", {"kind": "refuse", "target": {"hosts": ["api.openai.com"]}}
    )
    with pytest.raises(openai.APIConnectionError):
        ask_openai(direct)
    with pytest.raises(openai.InternalServerError) as via_edge:
        ask_openai(client)  # the edge cannot reach its upstream: its own 502 page
    assert via_edge.value.status_code == 502
    control(policy_world, "DELETE", f"/faults/{rule['id']}")
    assert ask_openai(direct)


def test_a_silent_provider_costs_the_client_its_timeout(policy_world: dict[str, Any]) -> None:
    rule = {"kind": "silent", "target": {"deployments": ["gpt-4o@openai"]}}
    control(policy_world, "POST", "/faults", rule)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        ask_openai(openai_client(policy_world, timeout=0.5))
    assert 0.4 < time.monotonic() - started < 3.0


def test_a_cut_stream_has_no_terminator_and_no_usage(policy_world: dict[str, Any]) -> None:
    stream = openai_client(policy_world).chat.completions.create(
        model="gpt-4o~stream_cut-3",
        messages=[{"role": "user", "content": "ping"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            assert chunk.usage is None
            pieces.extend(c.delta.content or "" for c in chunk.choices)
    assert len("".join(pieces).split()) == 3


def _bedrock_converse(url: str) -> str:
    return url + "/model/anthropic.claude-sonnet-4-5-v1:0/converse"


_BEDROCK_BODY = {"messages": [{"role": "user", "content": [{"text": "ping"}]}]}
_SIGV4 = {"Authorization": "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/bedrock/aws4_request"}


def test_a_dns_fault_fails_new_connections_only(policy_world: dict[str, Any]) -> None:
    url = _bedrock_converse(policy_world["deployments"]["claude@bedrock-us-east-1"]["by_name"])
    assert url.startswith("http://bedrock-runtime.us-east-1.amazonaws.com:")

    async def scenario() -> None:
        resolver = ControlledResolver(policy_world["control"])
        pooled = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver))
        fresh = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
        )
        try:
            async with pooled.post(url, json=_BEDROCK_BODY, headers=_SIGV4) as response:
                assert response.status == 200
                await response.read()
            await asyncio.to_thread(
                control,
                policy_world,
                "POST",
                "/faults",
                {"kind": "dns", "target": {"domains": ["dns:aws/us-east-1"]}},
            )
            async with pooled.post(url, json=_BEDROCK_BODY, headers=_SIGV4) as response:
                assert response.status == 200  # a pooled keep-alive connection needs no lookup
            with pytest.raises(aiohttp.ClientConnectorDNSError):
                await fresh.post(url, json=_BEDROCK_BODY, headers=_SIGV4)
            other = policy_world["deployments"]["gemini@google"]["by_name"]
            async with fresh.get(other + "/v1beta/models", headers={"x-goog-api-key": "k"}) as r:
                assert r.status == 200  # other hosts still resolve
        finally:
            await pooled.close()
            await fresh.close()
            await resolver.close()

    asyncio.run(scenario())


def test_the_scenario_timeline_drives_the_fakes(tmp_path: Path) -> None:
    faults = """
faults:
  - kind: outage
    target: {domains: [vendor:openai]}
    start: 0s
    end: 1h
"""
    policy, scenario = load_world(write_scenario(tmp_path, faults))
    with running_world(FakeWorld(policy, scenario)) as ready:
        with pytest.raises(openai.InternalServerError) as raised:
            ask_openai(openai_client(ready))
        assert raised.value.status_code == 500
        assert ask_anthropic(anthropic_client(ready))
        _, body = control(ready, "GET", "/journal")
        assert body["attempts"][0]["source"] == "scenario"


def test_the_timeline_runs_faster_with_speedup(tmp_path: Path) -> None:
    faults = """
faults:
  - kind: outage
    target: {domains: [vendor:openai]}
    start: 30s
    end: 1h
"""
    policy, scenario = load_world(write_scenario(tmp_path, faults))
    with running_world(FakeWorld(policy, scenario, speedup=100.0)) as ready:
        assert ask_openai(openai_client(ready))
        time.sleep(0.4)  # 40 scenario seconds
        with pytest.raises(openai.InternalServerError):
            ask_openai(openai_client(ready))


def test_full_slots_and_queue_shed_load_with_the_vendors_overload_status(tmp_path: Path) -> None:
    faults = """
faults:
  - kind: degrade
    target: {domains: [vendor:anthropic, vendor:openai]}
    start: 0s
    end: 1h
    extra_ttft: 0.5
"""
    policy, scenario = load_world(write_scenario(tmp_path, faults, capacity=1, queue=0))
    with running_world(FakeWorld(policy, scenario)) as ready:
        client = anthropic_client(ready)

        def one(_: int) -> str:
            try:
                return ask_anthropic(client)
            except anthropic.APIStatusError as error:
                return str(error.status_code)

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(one, range(4)))
    assert results.count("529") >= 2 and any(r not in ("529",) for r in results)


@pytest.mark.parametrize(("option", "loop"), [("auto", "uvloop"), ("asyncio", "asyncio")])
def test_blastradius_fakes_writes_a_ready_file_and_stops_cleanly_on_sigterm(
    tmp_path: Path, option: str, loop: str
) -> None:
    ready_file = tmp_path / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli", "fakes", "--world", str(write_policy(tmp_path)),
         "--ready-file", str(ready_file), "--loop", option],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not ready_file.exists() and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        ready = json.loads(ready_file.read_text())
        assert control(ready, "GET", "/healthz") == (200, {"ok": True})
        assert ask_openai(openai_client(ready))
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "control API at" in err and f"fakes: event loop {loop}\n" in err


def test_a_missing_world_file_is_a_usage_error(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "fakes", "--world", str(tmp_path / "nope.yaml")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert run.returncode == 2
    assert "nope.yaml" in run.stderr and "Traceback" not in run.stderr


def test_a_slow_first_token_and_a_stall_are_felt_in_real_time(
    policy_world: dict[str, Any],
) -> None:
    client = openai_client(policy_world)
    started = time.monotonic()
    assert ask_openai(client, "gpt-4o~slow_first_token-0.6")
    assert time.monotonic() - started >= 0.6
    rule = {
        "kind": "stream_stall",
        "after_tokens": 2,
        "stall_s": 0.5,
        "target": {"deployments": ["gpt-4o@openai"]},
    }
    control(policy_world, "POST", "/faults", rule)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "ping"}], stream=True
    )
    started = time.monotonic()
    with pytest.raises(openai.APIConnectionError):
        for _ in stream:
            pass
    assert time.monotonic() - started >= 0.5
    _, body = control(policy_world, "GET", "/journal")
    assert body["attempts"][-1]["outcome"] == "stream_stall"
    assert body["attempts"][-1]["output_tokens"] == 2


def test_the_journal_file_keeps_every_attempt_as_json_lines(tmp_path: Path) -> None:
    policy, _ = load_world(write_policy(tmp_path))
    journal = tmp_path / "journal.jsonl"
    with running_world(FakeWorld(policy, journal_path=journal)) as ready:
        ask_openai(openai_client(ready))
        with pytest.raises(openai.RateLimitError):
            ask_openai(openai_client(ready), "gpt-4o~rate_limited")
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [(e["outcome"], e["http_status"]) for e in lines] == [("ok", 200), ("rate_limited", 429)]


def test_a_mistyped_directive_is_a_404_naming_the_known_faults(
    policy_world: dict[str, Any],
) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        ask_openai(openai_client(policy_world), "gpt-4o~stream_cutt")
    assert "stream_cutt" in raised.value.message and "stream_cut-5" in raised.value.message


def test_answers_carry_the_worlds_rate_limits_in_the_vendors_headers(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path)
    text = scenario.read_text().replace("    queue: 50\n", "    queue: 50\n    limits: {rpm: 60}\n")
    scenario.write_text(text)
    policy, loaded = load_world(scenario)
    with running_world(FakeWorld(policy, loaded)) as ready:
        client = openai_client(ready)
        first = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "ping"}]
        )
        second = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "ping"}]
        )
    assert first.headers["x-ratelimit-limit-requests"] == "60"
    assert (
        int(second.headers["x-ratelimit-remaining-requests"])
        < int(first.headers["x-ratelimit-remaining-requests"])
        or second.headers["x-ratelimit-remaining-requests"] == "58"
    )
    assert second.headers["x-ratelimit-reset-requests"].endswith("s")
