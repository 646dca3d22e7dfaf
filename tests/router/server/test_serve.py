"""Running the gateway as a process: graceful drain, and `blastradius serve` end to end."""

from __future__ import annotations

import asyncio
import gc
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, get_args

import openai
import pytest
import yaml
from aiohttp import web
from openai.types.chat import ChatCompletionMessageParam

from fakes.server.world import FakeWorld
from router.core.policy import Protocol
from router.server import create_app
from router.server.adapters import adapter_for
from router.server.serve import GC_YOUNG_THRESHOLD, event_loop, reload_policy, serve, tune_gc
from simulator.cli import main
from tests.fakes.server.harness import running_world
from tests.router.server.gateway import POLICY, call_json, load_policy
from tests.router.server.serving import policy_data, serve_process, write_policy

PING: list[ChatCompletionMessageParam] = [{"role": "user", "content": "ping"}]


def test_stop_drains_a_request_in_flight_then_closes_the_listener() -> None:
    policy = load_policy()
    with running_world(FakeWorld(policy, seed=5)) as ready:
        deployments = tuple(
            d.model_copy(update={"base_url": ready["deployments"][d.id]["base_url"]})
            for d in policy.deployments
        )
        slow = deployments[0].model_copy(update={"model": "gpt-4o~slow_tokens-0.05"})
        served = policy.model_copy(update={"deployments": (slow, *deployments[1:])})
        loop = asyncio.new_event_loop()
        box: dict[str, Any] = {}
        started = threading.Event()

        async def main() -> None:
            box["stop"] = asyncio.Event()

            def on_ready(url: str) -> None:
                box["url"] = url
                started.set()

            await serve(
                create_app(served), host="127.0.0.1", port=0, stop=box["stop"], on_ready=on_ready
            )

        thread = threading.Thread(target=lambda: loop.run_until_complete(main()))
        thread.start()
        try:
            assert started.wait(10)
            client = openai.OpenAI(base_url=box["url"] + "/v1", api_key="k", max_retries=0)
            stream = client.chat.completions.create(model="default", messages=PING, stream=True)
            first = next(iter(stream))
            loop.call_soon_threadsafe(box["stop"].set)
            rest = list(stream)
            text = "".join(c.choices[0].delta.content or "" for c in [first, *rest] if c.choices)
            assert len(text.split()) == 12
            assert rest[-1].choices[0].finish_reason == "stop"
        finally:
            loop.call_soon_threadsafe(lambda: box["stop"].set())
            thread.join(10)
            loop.close()
        try:
            call_json("GET", box["url"] + "/healthz")
        except OSError:
            pass
        else:
            raise AssertionError("the listener is still open after stop")


@pytest.mark.parametrize(("option", "loop"), [("auto", "uvloop"), ("asyncio", "asyncio")])
def test_blastradius_serve_answers_and_exits_cleanly_on_sigterm(
    tmp_path: Path, option: str, loop: str
) -> None:
    """On either event loop; by default (`auto`) on uvloop, a dependency wherever it builds."""
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY, encoding="utf-8")
    with running_world(FakeWorld(load_policy(), seed=5)) as ready:
        data = yaml.safe_load(POLICY)
        for deployment in data["deployments"]:
            deployment["base_url"] = ready["deployments"][deployment["id"]]["base_url"]
        policy_file.write_text(yaml.safe_dump(data), encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, "-m", "simulator.cli", "serve", "--policy", str(policy_file),
             "--port", "0", "--loop", option],
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert process.stderr is not None
            lines = []
            for line in process.stderr:
                lines.append(line)
                if "listening on" in line:
                    break
            assert any("anonymous tenant" in line for line in lines), lines
            assert f"serve: event loop {loop}\n" in lines, lines
            url = lines[-1].rsplit(" ", 1)[-1].strip()
            client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
            answer = client.chat.completions.create(model="default", messages=PING)
            assert answer.model == "gpt-4o"
            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)


def test_event_loop_auto_is_uvloop_where_installed_and_asyncio_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert event_loop("auto")[0] == "uvloop"
    assert event_loop("asyncio") == ("asyncio", asyncio.new_event_loop)
    with pytest.raises(ValueError, match="unknown event loop 'trio'"):
        event_loop("trio")
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as where it has no build
    assert event_loop("auto") == ("asyncio", asyncio.new_event_loop)
    with pytest.raises(ValueError, match=r"uvloop is not installed \(pip install uvloop\)"):
        event_loop("uvloop")


def test_asking_for_a_missing_uvloop_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert main(["serve", "--policy", "policy.yaml", "--loop", "uvloop"]) == 2
    err = capsys.readouterr().err
    assert "error: --loop uvloop: uvloop is not installed" in err and "Traceback" not in err


def test_every_protocol_a_policy_may_name_has_an_egress_adapter() -> None:
    for protocol in get_args(Protocol):
        assert adapter_for(protocol) is not None
    with pytest.raises(ValueError, match="no egress adapter for protocol 'carrier-pigeon'"):
        adapter_for("carrier-pigeon")


def test_sigterm_drains_a_slow_stream_in_flight_then_exits_0(tmp_path: Path) -> None:
    with running_world(FakeWorld(load_policy(), seed=5)) as ready:
        policy = write_policy(tmp_path / "policy.yaml", policy_data(ready, slow_token_s=0.1))
        with serve_process(policy) as served:
            client = openai.OpenAI(base_url=served.url + "/v1", api_key="k", max_retries=0)
            stream = client.chat.completions.create(model="slow", messages=PING, stream=True)
            first = next(iter(stream))
            served.process.send_signal(signal.SIGTERM)
            rest = list(stream)  # ~1 s more: the stop waits for it
            text = "".join(c.choices[0].delta.content or "" for c in [first, *rest] if c.choices)
            assert len(text.split()) == 12
            assert rest[-1].choices[0].finish_reason == "stop"
            assert served.process.wait(15) == 0
            client.close()


def test_tune_gc_freezes_start_up_and_a_reload_unfreezes_it(tmp_path: Path) -> None:
    before = gc.get_threshold()
    path = tmp_path / "policy.yaml"

    async def reloads() -> tuple[bool, int, bool, int]:
        runner = web.AppRunner(create_app(load_policy()))
        await runner.setup()
        try:
            path.write_text("name: [not, a, policy]\n", encoding="utf-8")
            refused = reload_policy(runner.app, path)
            frozen_after_refusal = gc.get_freeze_count()
            path.write_text(POLICY, encoding="utf-8")
            return (
                refused,
                frozen_after_refusal,
                reload_policy(runner.app, path),
                gc.get_freeze_count(),
            )
        finally:
            await runner.cleanup()

    try:
        tune_gc()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
        refused, frozen_after_refusal, reloaded, frozen_after_reload = asyncio.run(reloads())
        assert (refused, reloaded) == (False, True)
        assert frozen_after_refusal > 0, "a refused reload keeps the old policy frozen"
        assert frozen_after_reload == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
